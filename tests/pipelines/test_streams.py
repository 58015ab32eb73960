"""A live stream's due frames come from keyframes while keyframes are frequent enough, else from decoding the GOP
up to them: each is on time or at most one GOP late, never out of order, and far fewer frames are decoded."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from pipelines.decode import Sampler
from pipelines.streams import DueDecoder
from streetwatch.demo import asset_image, encode_video, panned


def read_live(path: Path, every_s: float, **options: int) -> tuple[list[float], int]:
    """Packets of `path` pushed one by one as a live connection pushes them: the due frames' times and how many
    frames were decoded."""
    sampler, times, decoded = Sampler(every_s), [], 0

    def count() -> None:
        nonlocal decoded
        decoded += 1

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        start = float((stream.start_time or 0) * stream.time_base)
        decoder = DueDecoder(stream.codec_context, every_s=every_s, on_decoded=count, **options)
        for packet in container.demux(stream):
            if not packet.size:
                continue
            decoded_now = decoder.push(packet, lambda s: sampler.wants_until(0.0 if s is None else s - start))
            for frame in decoded_now.frames:
                assert frame.pts is not None
                t = float(frame.pts * stream.time_base) - start
                if sampler.due(t):
                    times.append(t)
    return times, decoded


STREAMS = [
    # (codec, keyframe every s, B-frames, sample every s, the due frames' times in 12 s, most frames decoded of 300)
    # Keyframes on the due times: each due frame is a keyframe, decoded alone (B-frames: the first GOP is fed
    # until its keyframe comes out, before the keyframe interval is known).
    ("libx264", 2.0, 0, 2.0, [0, 2, 4, 6, 8, 10], 6),
    # Keyframes every 1.6 s: the first keyframe at or after each due time, at most one GOP late.
    ("libx264", 1.6, 0, 2.0, [0, 3.2, 4.8, 6.4, 8.0, 11.2], 6),
    ("libx264", 1.6, 2, 2.0, [0, 3.2, 4.8, 6.4, 8.0, 11.2], 8),
    ("libx265", 1.6, 2, 2.0, [0, 3.2, 4.8, 6.4, 8.0, 11.2], 8),
    # Keyframes rarer than due frames: the GOP is decoded up to each due frame, which comes exactly when due (178
    # measured: each GOP's tail after its last due frame is never decoded).
    ("libx264", 5.0, 0, 2.0, [0, 2, 4, 6, 8, 10], 180),
    ("libx264", 5.0, 2, 2.0, [0, 2, 4, 6, 8, 10], 185),
]


@pytest.mark.parametrize(
    ("codec", "gop_s", "b_frames", "every_s", "expected", "most_decoded"),
    STREAMS,
    ids=[f"{c[0]}-gop{c[1]}-b{c[2]}-every{c[3]}" for c in STREAMS],
)
def test_due_frames_are_keyframes_while_they_are_frequent_and_exact_when_they_are_rare(
    tmp_path: Path,
    codec: str,
    gop_s: float,
    b_frames: int,
    every_s: float,
    expected: list[float],
    most_decoded: int,
) -> None:
    frames = panned(asset_image("bus.jpg"), (320, 240), seconds=12.0, fps=25)
    video = encode_video(tmp_path / "cam.mp4", frames, fps=25, codec=codec, keyframe_every_s=gop_s, b_frames=b_frames)
    times, decoded = read_live(video, every_s)
    assert times == pytest.approx(expected, abs=1e-6)
    assert decoded <= most_decoded, decoded


def test_a_stream_of_one_endless_gop_is_decoded_as_it_comes_not_held(tmp_path: Path) -> None:
    frames = panned(asset_image("bus.jpg"), (320, 240), seconds=6.0, fps=25)
    video = encode_video(tmp_path / "one-gop.mp4", frames, fps=25, keyframe_every_s=60.0)
    # Holding at most a few packets, the due frames still come exactly when due.
    times, decoded = read_live(video, 2.0, max_held_bytes=2000)
    assert times == pytest.approx([0.0, 2.0, 4.0], abs=1e-6)
    # Decoded as they came, frames past the last due one too (held, only those up to 4 s would be: 101).
    assert decoded > 140, decoded


@pytest.mark.parametrize("every_s", [2.0, 1.0])
def test_an_intra_refresh_stream_gives_every_due_frame_at_most_one_refresh_late(tmp_path: Path, every_s: float) -> None:
    # Its keyframes are recovery points: decoded alone they give nothing, and keyframes once a second "sufficed"
    # for a frame due every 1 or 2 s, so after the first frame none came at all (the connection then stalled).
    frames = panned(asset_image("bus.jpg"), (320, 240), seconds=12.0, fps=25)
    video = encode_video(tmp_path / "cam.mp4", frames, fps=25, keyframe_every_s=1.0, intra_refresh=True)
    times, _ = read_live(video, every_s)
    due = [k * every_s for k in range(round(12.0 / every_s))]
    assert len(times) == len(due), times
    # Each comes when its refresh sweep is done: on time (the stream's first frame) or within a second after.
    assert all(d - 1e-6 <= t <= d + 1.0 for d, t in zip(due, times, strict=True)), times

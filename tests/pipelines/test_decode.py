"""Decoding only what is due gives exactly the frames a full decode samples, for the GOPs cameras send."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from pipelines.decode import DueFrame, Sampler, due_frames
from streetwatch.demo import asset_image, encode_video, panned


def full_decode(path: Path, every_s: float) -> tuple[list[DueFrame], int]:
    """The reference: decode every frame, sample by stream time; and how many frames that decoded."""
    sampler, out, decoded = Sampler(every_s), [], 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        for frame in container.decode(stream):
            decoded += 1
            assert frame.pts is not None and stream.time_base is not None
            t = float((frame.pts - start) * stream.time_base)
            if sampler.due(t):
                out.append(DueFrame(t, np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)))
    return out, decoded


def skipping_decode(path: Path, every_s: float, **options: int | bool) -> tuple[list[DueFrame], int]:
    decoded = 0

    def count() -> None:
        nonlocal decoded
        decoded += 1

    return list(due_frames(path, every_s, threading.Event(), on_decoded=count, **options)), decoded


CAMERAS = [
    # (codec, keyframe every s, B-frames, sample every s, most frames decoded of the 200 in 8 s at 25 fps)
    ("libx264", 2.0, 0, 2.0, 5),  # keyframes exactly when due: one frame per GOP (4 measured)
    ("libx264", 1.0, 0, 2.0, 5),  # keyframes twice as often as due: every other GOP skipped whole (4)
    ("libx264", 2.0, 2, 2.0, 8),  # B-frames: still only the keyframe that opens each GOP is output (4)
    ("libx264", 4.0, 0, 2.0, 110),  # keyframes rarer than due: each GOP decoded up to its last due frame (102)
    ("libx264", 2.0, 0, 0.5, 160),  # due more often than keyframes: only each GOP's tail is skipped (156)
    ("libx265", 2.0, 2, 2.0, 8),  # HEVC, as most city cameras send (4)
]


@pytest.mark.parametrize(
    ("codec", "gop_s", "b_frames", "every_s", "most_decoded"),
    CAMERAS,
    ids=[f"{c[0]}-gop{c[1]}-b{c[2]}-every{c[3]}" for c in CAMERAS],
)
def test_skipping_gops_yields_the_frames_a_full_decode_samples(
    tmp_path: Path, codec: str, gop_s: float, b_frames: int, every_s: float, most_decoded: int
) -> None:
    frames = panned(asset_image("bus.jpg"), (320, 240), seconds=8.0, fps=25)
    video = encode_video(tmp_path / "cam.mp4", frames, fps=25, codec=codec, keyframe_every_s=gop_s, b_frames=b_frames)
    expected, all_decoded = full_decode(video, every_s)
    got, decoded = skipping_decode(video, every_s)

    assert [f.timestamp_s for f in got] == [f.timestamp_s for f in expected]
    assert len(got) == pytest.approx(8.0 / every_s, abs=1)
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(a.image, b.image), a.timestamp_s
    assert all_decoded == 200 and decoded <= most_decoded, decoded


def test_a_file_of_one_long_gop_is_decoded_as_it_comes_not_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = panned(asset_image("bus.jpg"), (320, 240), seconds=6.0, fps=25)
    video = encode_video(tmp_path / "one-gop.mp4", frames, fps=25, keyframe_every_s=60.0)
    # Hold at most a few packets: the GOP is decoded in parts, and the result stays that of a full decode.
    expected, _ = full_decode(video, 2.0)
    got, _ = skipping_decode(video, 2.0, max_held_bytes=2000)
    assert [f.timestamp_s for f in got] == [f.timestamp_s for f in expected] == pytest.approx([0.0, 2.0, 4.0])
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, expected, strict=True))


@pytest.mark.parametrize("every_s", [2.0, 0.5])
def test_an_intra_refresh_file_gives_exactly_the_frames_a_full_decode_samples(
    tmp_path: Path, every_s: float, caplog: pytest.LogCaptureFixture
) -> None:
    # No keyframe after the first decodes on its own: skipping to one showed nothing until its refresh sweep was
    # done, a second later, and a frame due every 2 s came a second late. The file is decoded whole instead.
    frames = panned(asset_image("bus.jpg"), (320, 240), seconds=8.0, fps=25)
    video = encode_video(tmp_path / "cam.mp4", frames, fps=25, keyframe_every_s=1.0, intra_refresh=True)
    expected, _ = full_decode(video, every_s)
    with caplog.at_level(logging.INFO, logger="pipelines.decode"):
        got, decoded = skipping_decode(video, every_s)
    assert [f.timestamp_s for f in got] == [f.timestamp_s for f in expected]
    assert len(got) == pytest.approx(8.0 / every_s, abs=1)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, expected, strict=True))
    assert "keyframes do not decode on their own" in caplog.text
    assert decoded <= 200 + 25  # a full decode, and at most the GOPs skipped before it showed


def test_stop_ends_decoding(tmp_path: Path) -> None:
    video = encode_video(tmp_path / "cam.mp4", panned(asset_image("bus.jpg"), (320, 240), 6.0, 25), fps=25)
    stop = threading.Event()
    seen = []
    for frame in due_frames(video, 1.0, stop):
        seen.append(frame.timestamp_s)
        stop.set()
    assert seen == [0.0]


def test_without_gop_skipping_every_frame_is_decoded_and_the_same_ones_come_out(tmp_path: Path) -> None:
    frames = panned(asset_image("bus.jpg"), (320, 240), seconds=8.0, fps=25)
    video = encode_video(tmp_path / "cam.mp4", frames, fps=25, keyframe_every_s=2.0, b_frames=2)
    expected, _ = full_decode(video, 2.0)
    got, decoded = skipping_decode(video, 2.0, skip_gops=False)
    assert [f.timestamp_s for f in got] == [f.timestamp_s for f in expected] == pytest.approx([0, 2, 4, 6])
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, expected, strict=True))
    assert decoded == 200

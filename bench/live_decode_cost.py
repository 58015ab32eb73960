"""What reading a live RTSP camera costs per analysed frame: every frame decoded (OpenCV grab, the live reader
until 2026-12-02) against today's LiveSource (PyAV, keyframes only or GOPs up to the due frame).

Each stream is served in real time by GStreamer's RTSP server (tests/pipelines/rtsp_server.py, run by Debian's
/usr/bin/python3; `bash .ci/install-rtsp.sh` installs it) from the same generated 1080p files as
bench/decode_cost.py, and each reader reads it for the same wall-clock window, one reader at a time. CPU time of
this process (all its threads; the server is another process) is compared, not wall time.

Run: python bench/live_decode_cost.py [--seconds 15] [--length 20] [--every 2] [--videos /tmp/decodebench]
"""

from __future__ import annotations

import argparse
import resource
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import cv2

from pipelines.decode import Sampler
from pipelines.metrics import PipelineMetrics
from pipelines.sources import LiveSource
from streetwatch.config import CameraConfig, PipelineConfig
from streetwatch.demo import asset_image, encode_video, panned

SERVER = Path(__file__).parents[1] / "tests" / "pipelines" / "rtsp_server.py"
#: (label, codec, the server's name for it, keyframe every s, B-frames)
STREAMS = [
    ("H.264, keyframe every 1 s", "libx264", "h264", 1.0, 0),
    ("H.264, keyframe every 2 s", "libx264", "h264", 2.0, 0),
    ("H.264, keyframe every 2 s, B-frames", "libx264", "h264", 2.0, 2),
    ("H.264, keyframe every 4 s", "libx264", "h264", 4.0, 0),
    ("HEVC, keyframe every 2 s, B-frames", "libx265", "hevc", 2.0, 2),
]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(video: Path, codec: str) -> Iterator[str]:
    """The RTSP URL of `video` served in real time for as long as the block runs."""
    port = free_port()
    server = subprocess.Popen(
        ["/usr/bin/python3", str(SERVER), "--codec", codec, str(port), "/camera", str(video)],
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the RTSP server did not start (run: bash .ci/install-rtsp.sh): {video}")
            time.sleep(0.05)
        yield f"rtsp://127.0.0.1:{port}/camera"
    finally:
        server.kill()
        server.wait()


def every_frame(url: str, every_s: float, stop: threading.Event) -> tuple[int, int]:
    """The old LiveSource: grab (decode) every frame, retrieve (convert) the due ones."""
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    sampler, analysed, decoded = Sampler(every_s), 0, 0
    while not stop.is_set() and cap.grab():
        decoded += 1
        if sampler.due(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0):
            ok, _ = cap.retrieve()
            analysed += ok
    cap.release()
    return analysed, decoded


def live_source(url: str, every_s: float, stop: threading.Event) -> tuple[int, int]:
    metrics = PipelineMetrics()
    camera = CameraConfig(id="bench", source=url, sample_every_s=every_s)
    source = LiveSource(camera, PipelineConfig(), clock=lambda: datetime.now(UTC), metrics=metrics)
    analysed = sum(1 for _ in source.frames(stop))
    decoded = metrics.registry.get_sample_value("streetwatch_frames_decoded_total", {"camera": "bench"}) or 0.0
    return analysed, int(decoded)


def measure(
    read: Callable[[str, float, threading.Event], tuple[int, int]], url: str, every_s: float, seconds: float
) -> tuple[int, int, float]:
    """(analysed, decoded, CPU s) of reading `url` for `seconds` of wall time."""
    stop = threading.Event()
    result: list[tuple[int, int]] = []
    cpu = cpu_s()
    thread = threading.Thread(target=lambda: result.append(read(url, every_s, stop)))
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    return (*result[0], cpu_s() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="Wall seconds each reader reads each stream.")
    parser.add_argument("--length", type=float, default=20.0, help="Seconds of video served (the files' length).")
    parser.add_argument("--every", type=float, default=2.0, help="Analyse one frame every N stream seconds.")
    parser.add_argument("--videos", type=Path, default=Path("/tmp/decodebench"), help="Where the 1080p files are.")
    args = parser.parse_args()
    if args.seconds > args.length - 3:
        parser.error("--seconds must leave the stream 3 s more than the window (connecting takes a second or two)")

    print(f"One analysed frame every {args.every:g} s, {args.seconds:g} s of live RTSP per reader.\n")
    print("| stream | analysed: every / LiveSource | decoded: every / LiveSource | CPU ms per analysed | ratio |")
    print("|---|---:|---:|---:|---:|")
    for label, codec, server_codec, gop_s, b_frames in STREAMS:
        # The same names as bench/decode_cost.py's, so that its files serve here too.
        path = args.videos / f"{codec}-gop{gop_s:g}-b{b_frames}-1920x1080-{args.length:g}s.mp4"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            frames = panned(asset_image("bus.jpg"), (1920, 1080), args.length, 25)
            encode_video(path, frames, fps=25, codec=codec, keyframe_every_s=gop_s, b_frames=b_frames)
        with serving(path, server_codec) as url:
            a_old, d_old, cpu_old = measure(every_frame, url, args.every, args.seconds)
        with serving(path, server_codec) as url:
            a_new, d_new, cpu_new = measure(live_source, url, args.every, args.seconds)
        per_old, per_new = 1000 * cpu_old / max(a_old, 1), 1000 * cpu_new / max(a_new, 1)
        print(
            f"| {label} | {a_old} / {a_new} | {d_old} / {d_new} | {per_old:.0f} / {per_new:.0f} "
            f"| {per_old / max(per_new, 1e-9):.1f}x |"
        )


if __name__ == "__main__":
    main()

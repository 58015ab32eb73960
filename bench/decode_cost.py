"""What decoding a camera file costs per analysed frame: every frame (OpenCV grab, the old FileSource) against
GOP skipping (pipelines.decode, today's FileSource), on generated camera streams and ../shared/data's videos.

The generated streams are street content that changes every frame (bus.jpg panned, a box driving across),
encoded as cameras send it: H.264 or HEVC, a keyframe every 1, 2 or 4 s, B-frames on or off. Both readers
sample one frame every --every seconds of stream time and convert only those frames to BGR.

Run: python bench/decode_cost.py [--seconds 20] [--size 1920x1080] [--every 2] [--out /tmp/decodebench]
"""

from __future__ import annotations

import argparse
import functools
import resource
import threading
from collections.abc import Callable
from pathlib import Path

import cv2

from pipelines.decode import Sampler, due_frames
from streetwatch.demo import asset_image, encode_video, panned

SHARED_VIDEOS = Path("../shared/data/videos")
#: (label, codec, keyframe every s, B-frames)
STREAMS = [
    ("H.264 gop 1 s", "libx264", 1.0, 0),
    ("H.264 gop 2 s", "libx264", 2.0, 0),
    ("H.264 gop 2 s B-frames", "libx264", 2.0, 2),
    ("H.264 gop 4 s", "libx264", 4.0, 0),
    ("HEVC gop 2 s B-frames", "libx265", 2.0, 2),
    ("HEVC gop 4 s", "libx265", 4.0, 0),
]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(read: Callable[[], tuple[int, int]]) -> tuple[int, int, float]:
    """(analysed, decoded, CPU s) of one read: CPU time, not wall time, which other work on the machine skews."""
    cpu = cpu_s()
    analysed, decoded = read()
    return analysed, decoded, cpu_s() - cpu


def every_frame(path: Path, every_s: float) -> tuple[int, int]:
    """The old FileSource: grab (decode) every frame, retrieve (convert) the due ones."""
    cap = cv2.VideoCapture(str(path))
    sampler, analysed, decoded = Sampler(every_s), 0, 0
    while cap.grab():
        decoded += 1
        if sampler.due(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0):
            ok, _ = cap.retrieve()
            analysed += ok
    cap.release()
    return analysed, decoded


def gop_skipping(path: Path, every_s: float) -> tuple[int, int]:
    decoded = 0

    def count() -> None:
        nonlocal decoded
        decoded += 1

    analysed = sum(1 for _ in due_frames(path, every_s, threading.Event(), on_decoded=count))
    return analysed, decoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--every", type=float, default=2.0, help="Analyse one frame every N stream seconds.")
    parser.add_argument("--out", type=Path, default=Path("/tmp/decodebench"))
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    videos = []
    for label, codec, gop_s, b_frames in STREAMS:
        path = args.out / f"{codec}-gop{gop_s:g}-b{b_frames}-{w}x{h}-{args.seconds:g}s.mp4"
        if not path.is_file():
            frames = panned(asset_image("bus.jpg"), (w, h), args.seconds, args.fps)
            encode_video(path, frames, fps=args.fps, codec=codec, keyframe_every_s=gop_s, b_frames=b_frames)
        videos.append((f"{label}, {w}x{h} {args.fps} fps", path))
    videos += [(f"shared: {p.name}", p) for p in sorted(SHARED_VIDEOS.glob("*.mp4"))]

    print(f"One analysed frame every {args.every:g} s; CPU ms per analysed frame, every frame vs GOP skipping.\n")
    print("| stream | analysed | decoded: every frame / skipping | CPU ms per analysed: every / skipping | ratio |")
    print("|---|---:|---:|---:|---:|")
    for label, path in videos:
        a_old, d_old, cpu_old = measure(functools.partial(every_frame, path, args.every))
        a_new, d_new, cpu_new = measure(functools.partial(gop_skipping, path, args.every))
        per_old, per_new = 1000 * cpu_old / max(a_old, 1), 1000 * cpu_new / max(a_new, 1)
        print(
            f"| {label} | {a_new} (every frame: {a_old}) | {d_old} / {d_new} | {per_old:.0f} / {per_new:.0f} "
            f"| {per_old / max(per_new, 1e-9):.1f}x |"
        )


if __name__ == "__main__":
    main()

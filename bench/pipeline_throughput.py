"""Throughput of the whole pipeline on this machine against the loop a user would write, on camera-like streams.

Each camera is the same generated stream: --size at --fps, H.264 or HEVC with a keyframe every --gop seconds,
--seconds long; its content is a real photo (ultralytics' bus.jpg) panned slowly with a box driving across
(`--still` uses the photo unmoving, where skipping unchanged views pays). streetwatch runs N such cameras at
one analysed frame every --every seconds (decode only what is due, skip unchanged views, batch across
cameras, track, a no-parking rule); the naive loop is ultralytics' own
`for r in YOLO(weights).track(video, stream=True, persist=True)` over every frame of one camera, at the same
imgsz, twice: with the .pt (as a user writes it) and with the pipeline's own model (the OpenVINO export on CPU).
Prints one Markdown row: analysed frames/s, decoded frames/s, CPU s per analysed frame, real-time factor (seconds
of each camera's video per wall second: at 1.0 or more the machine keeps up with all N cameras live), peak RSS and
the share of analysed frames whose unchanged view skipped the model (all measured by pipelines.throughput, as
`streetwatch bench` measures), and the ratios of analysed frames/s to the naive loops'.

Run: python bench/pipeline_throughput.py --cameras 8 [--seconds 60] [--size 1920x1080] [--codec libx264]
     [--gop 2] [--every 2] [--still] [--naive-seconds 10] [--state-dir streetwatch-data]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from detector.model import Detector, shipped_model
from pipelines.throughput import measure_throughput
from streetwatch.config import StreetwatchConfig
from streetwatch.demo import BUS_KERB_ZONE, asset_image, encode_video, panned


def naive_fps(video: Path, weights: Path, imgsz: int, seconds: float, fps: int) -> float:
    """Frames per wall second of ultralytics' own tracking loop over every frame (the first `seconds` of it)."""
    from ultralytics import YOLO

    model = YOLO(str(weights))
    frames, start = 0, time.perf_counter()
    for _ in model.track(str(video), stream=True, persist=True, imgsz=imgsz, verbose=False):
        frames += 1
        if frames >= seconds * fps:
            break
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--codec", default="libx264", choices=["libx264", "libx265"])
    parser.add_argument("--gop", type=float, default=2.0, help="Seconds between keyframes.")
    parser.add_argument("--every", type=float, default=2.0, help="Analyse one frame every N stream seconds.")
    parser.add_argument("--still", action="store_true", help="An unmoving photo instead of panned content.")
    parser.add_argument("--naive-seconds", type=float, default=10.0, help="How much of the clip the naive loop runs.")
    parser.add_argument("--state-dir", type=Path, default=Path("streetwatch-data"))
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    content = "still" if args.still else "panned"
    video = (
        args.state_dir / "bench" / f"{args.codec}-{w}x{h}-{args.fps}fps-gop{args.gop:g}-{args.seconds:g}s-{content}.mp4"
    )
    if not video.is_file():
        photo = asset_image("bus.jpg")
        frames: Iterator[npt.NDArray[np.uint8]]
        if args.still:
            still = np.ascontiguousarray(next(panned(photo, (w, h), 1.0, 1)))
            frames = iter([still] * round(args.seconds * args.fps))
        else:
            frames = panned(photo, (w, h), args.seconds, args.fps)
        encode_video(video, frames, fps=args.fps, codec=args.codec, keyframe_every_s=args.gop)

    detector = Detector(state_dir=args.state_dir)
    zone = {"id": "kerb", "kind": "no_parking", "polygon": BUS_KERB_ZONE, "dwell_s": 30}
    cameras = [
        {"id": f"cam-{i}", "source": str(video), "sample_every_s": args.every, "zones": [zone]}
        for i in range(args.cameras)
    ]
    run = measure_throughput(StreetwatchConfig.model_validate({"cameras": cameras}), detector)
    # The naive loop as a user writes it (the .pt) and on the pipeline's own model (the OpenVINO export on CPU).
    naive_pt = naive_fps(video, shipped_model(), detector.imgsz, args.naive_seconds, args.fps)
    naive_same = naive_fps(video, detector.info.path, detector.imgsz, args.naive_seconds, args.fps)

    print(
        f"{args.cameras} cameras of {w}x{h} {args.fps} fps {args.codec}, keyframe every {args.gop:g} s, {content}, "
        f"{args.seconds:g} s each; one analysed frame every {args.every:g} s\n"
    )
    print(
        "| analysed frames/s | decoded frames/s | CPU s per analysed frame | real-time factor | peak RSS MiB "
        f"| unchanged | naive loop frames/s: .pt / {detector.info.format} | ratio: .pt / {detector.info.format} |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {run.analysed_per_s:.1f} | {run.decoded_per_s:.0f} | {run.cpu_s_per_frame or 0:.3f} "
        f"| {run.real_time_factor:.2f} | {run.peak_rss_mib:.0f} | {100 * run.unchanged_share:.0f} % "
        f"| {naive_pt:.1f} / {naive_same:.1f} | {run.analysed_per_s / naive_pt:.1f}x / "
        f"{run.analysed_per_s / naive_same:.1f}x |"
    )
    print(f"\nstreetwatch bench's estimate: about {run.cameras_kept_up_with} cameras like these")


if __name__ == "__main__":
    main()

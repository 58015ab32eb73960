"""Per-frame latency of the shipped model on this CPU as .pt, ONNX and OpenVINO, at batch 1, 4 and 16.

The frames are what the pipeline feeds the model: 1920x1080 camera frames (bus.jpg and zidane.jpg scaled to it),
letterboxed to --imgsz. OpenVINO is the export that ships (the CPU default); ONNX is exported by the script under
the state dir. The formats take turns over --rounds rounds, so that a machine that slows down part-way does not
favour one of them; each round's median is kept and the table shows the lowest and highest of them.

Run: python bench/model_latency.py [--state-dir streetwatch-data] [--repeats 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import psutil

from detector.export import export_model
from detector.model import Detector, default_model, shipped_model
from streetwatch.demo import asset_image

BATCHES = (1, 4, 16)


def median_ms(detector: Detector, images: list[npt.NDArray[np.uint8]], repeats: int) -> float:
    """Median milliseconds per frame of `repeats` calls on `images` (after one warm-up call)."""
    detector.detect(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector.detect(images)
        times.append((time.perf_counter() - start) * 1000 / len(images))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", type=Path, default=Path("streetwatch-data"))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--imgsz", type=int, default=512)
    args = parser.parse_args()
    onnx = export_model(
        None, fmt="onnx", imgsz=args.imgsz, output=args.state_dir / "bench" / "m.onnx", state_dir=args.state_dir
    )
    detectors = {
        "PyTorch `.pt`": Detector(shipped_model(), state_dir=args.state_dir, imgsz=args.imgsz),
        "ONNX Runtime": Detector(onnx, state_dir=args.state_dir, imgsz=args.imgsz),
        "OpenVINO (shipped export)": Detector(default_model("cpu"), state_dir=args.state_dir, imgsz=args.imgsz),
    }
    frames = [
        np.ascontiguousarray(cv2.resize(asset_image(name), (1920, 1080))) for name in ("bus.jpg", "zidane.jpg")
    ] * (max(BATCHES) // 2)
    medians: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for name, detector in detectors.items():
            for batch in BATCHES:
                medians.setdefault((name, batch), []).append(median_ms(detector, frames[:batch], args.repeats))
    rss = psutil.Process().memory_info().rss / 2**20
    print(f"ms per 1080p frame at imgsz {args.imgsz} (lowest-highest of {args.rounds} round medians)\n")
    print("| format | " + " | ".join(f"batch {b}" for b in BATCHES) + " |")
    print("|---|" + "---:|" * len(BATCHES))
    for name in detectors:
        cells = [f"{min(medians[name, b]):.0f}-{max(medians[name, b]):.0f}" for b in BATCHES]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nRSS with all three loaded: {rss:.0f} MiB")


if __name__ == "__main__":
    main()

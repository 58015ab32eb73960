"""Per-frame latency of the shipped model on this CPU, as .pt, ONNX and OpenVINO, at batch 1 and 4.

Run: python bench/model_latency.py [--state-dir streetwatch-data] [--repeats 20]
Exports are written under the state dir. Prints a Markdown table (milliseconds per frame, median).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import psutil

from detector.export import export_model
from detector.model import Detector
from streetwatch.demo import asset_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=Path("streetwatch-data"))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--imgsz", type=int, default=512)
    args = parser.parse_args()
    out = args.state_dir / "bench"
    models = {
        "pt": None,
        "onnx": export_model(None, fmt="onnx", imgsz=args.imgsz, output=out / "m.onnx", state_dir=args.state_dir),
        "openvino": export_model(
            None, fmt="openvino", imgsz=args.imgsz, output=out / "m_openvino_model", state_dir=args.state_dir
        ),
    }
    frames = [asset_image("bus.jpg"), asset_image("zidane.jpg")] * 2
    rows = []
    for fmt, path in models.items():
        det = Detector(path, state_dir=args.state_dir, imgsz=args.imgsz)
        for batch in (1, 4):
            images = frames[:batch]
            det.detect(images)  # warm-up
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                det.detect(images)
                times.append((time.perf_counter() - start) * 1000 / batch)
            rows.append((fmt, batch, statistics.median(times)))
    rss = psutil.Process().memory_info().rss / 2**20
    print(f"| format | batch | ms per frame (median of {args.repeats}) |")
    print("|---|---:|---:|")
    for fmt, batch, ms in rows:
        print(f"| {fmt} | {batch} | {ms:.1f} |")
    print(f"\npeak-ish RSS after all three: {rss:.0f} MiB")


if __name__ == "__main__":
    main()

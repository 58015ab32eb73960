"""How many cars of the parked row at the top kerb of ../shared/data's intersection video each model boxes.

The middle frame (frame 454 of 909) shows seven cars standing in the row at the top right; this counts the
vehicle boxes (conf >= 0.25 at the pipeline's imgsz) whose centre lies in that row, and draws every model's
boxes on the frame, one panel per model, into STATE_DIR/bench/kerb_row.jpg.

Run: python bench/kerb_row.py --model models/streetwatch-n.pt --model OTHER.pt [--state-dir streetwatch-data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from detector.model import Detector
from detector.taxonomy import VEHICLES

VIDEO = Path("../shared/data/videos/intersection_cctv_640x480.mp4")
#: The parked row (x1, y1, x2, y2, normalised): seven cars at the middle frame, counted by eye.
ROW = (0.617, 0.0, 0.92, 0.156)
CARS_IN_ROW = 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--state-dir", type=Path, default=Path("streetwatch-data"))
    parser.add_argument("--imgsz", type=int, default=512)
    args = parser.parse_args()
    cap = cv2.VideoCapture(str(VIDEO))
    if not cap.isOpened():
        raise SystemExit(f"{VIDEO} is not here (it is part of ../shared/data)")
    cap.set(cv2.CAP_PROP_POS_FRAMES, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) // 2)
    ok, frame = cap.read()
    if not ok:
        raise SystemExit(f"could not read the middle frame of {VIDEO}")
    h, w = frame.shape[:2]
    panels = []
    print(f"| model | vehicles boxed in the row (of {CARS_IN_ROW}) | vehicles boxed in the frame |")
    print("|---|---:|---:|")
    for path in args.model:
        (dets,) = Detector(path, state_dir=args.state_dir, imgsz=args.imgsz).detect([frame])
        panel = frame.copy()
        x1, y1, x2, y2 = (int(v * s) for v, s in zip(ROW, (w, h, w, h), strict=True))
        cv2.rectangle(panel, (x1, y1), (x2, y2), (255, 255, 0), 1)
        in_row = vehicles = 0
        for box, name, conf in zip(dets.xyxy, dets.names, dets.confidence, strict=True):
            if name not in VEHICLES:
                continue
            vehicles += 1
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            in_row += ROW[0] <= cx <= ROW[2] and ROW[1] <= cy <= ROW[3]
            bx1, by1, bx2, by2 = (int(v * s) for v, s in zip(box, (w, h, w, h), strict=True))
            cv2.rectangle(panel, (bx1, by1), (bx2, by2), (0, 0, 255), 2)
            cv2.putText(panel, f"{name} {conf:.2f}", (bx1, max(by1 - 3, 10)), 0, 0.4, (0, 0, 255), 1)
        cv2.putText(panel, f"{path.name}: {in_row}/{CARS_IN_ROW} in the row", (10, h - 10), 0, 0.6, (0, 255, 255), 2)
        panels.append(panel)
        print(f"| {path} | {in_row} | {vehicles} |")
    out = args.state_dir / "bench" / "kerb_row.jpg"
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack(panels))
    print(f"picture: {out}")


if __name__ == "__main__":
    main()

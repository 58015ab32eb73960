"""The demo: a still camera built from a real street photo that ships with ultralytics, watched for parking."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import yaml


def asset_image(name: str) -> npt.NDArray[np.uint8]:
    """A photo from the installed ultralytics wheel's assets (bus.jpg, zidane.jpg)."""
    import ultralytics

    path = Path(ultralytics.__file__).parent / "assets" / name
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path} is missing from the ultralytics install")
    return np.asarray(image, dtype=np.uint8)


def write_video(path: Path, segments: Sequence[tuple[npt.NDArray[np.uint8] | None, float]], fps: float = 5.0) -> Path:
    """Write an MP4 of still segments: (image, seconds) each; None stands for an empty grey street.

    All images must share one size; the grey frames take the size of the first image.
    """
    first = next(img for img, _ in segments if img is not None)
    h, w = first.shape[:2]
    blank = np.full((h, w, 3), 128, np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"could not open a video writer for {path}")
    try:
        for img, seconds in segments:
            frame = blank if img is None else img
            for _ in range(round(seconds * fps)):
                writer.write(frame)
    finally:
        writer.release()
    return path


#: The kerb in bus.jpg where the bus stands, as a no-parking zone (normalised to the photo).
BUS_KERB_ZONE = [[0.0, 0.55], [1.0, 0.55], [1.0, 0.95], [0.0, 0.95]]


def write_demo(state_dir: Path, *, dwell_s: float = 10.0, stay_s: float = 20.0) -> Path:
    """Write the demo video and its config under `state_dir/demo`; returns the config path.

    The bus stands in the no-parking zone for `stay_s` (longer than `dwell_s`: one case), the street is
    empty for a while, then the bus stands again for less than `dwell_s` (no case).
    """
    demo = state_dir / "demo"
    bus = asset_image("bus.jpg")
    write_video(demo / "bus-stop.mp4", [(bus, stay_s), (None, 20.0), (bus, dwell_s / 2)])
    config = {
        "cameras": [
            {
                "id": "demo-bus-stop",
                "source": "bus-stop.mp4",
                "sample_every_s": 1.0,
                "zones": [{"id": "kerb", "kind": "no_parking", "polygon": BUS_KERB_ZONE, "dwell_s": dwell_s}],
            }
        ]
    }
    path = demo / "streetwatch.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path

"""A model whose answers are known: solid coloured boxes on a grey street, found again in decoded frames.

Used where the model is not the point (delivery, faults, batching); the agent process of the fault tests
imports only this, so it starts without the service's dependencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from detector.model import ModelInfo
from detector.taxonomy import TAXONOMY
from streetwatch.core import Detections

Image = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]

W, H = 320, 240
#: Pure BGR colours the ColourDetector reads as classes.
COLOURS: dict[str, tuple[int, int, int]] = {"car": (0, 0, 255), "street_stall": (0, 255, 0), "garbage": (255, 0, 0)}
#: Hue (OpenCV's 0..180) of each colour, for a detector that survives video compression.
_HUES = {"car": 0, "street_stall": 60, "garbage": 120}


def scene(*objects: tuple[str, Box], size: tuple[int, int] = (W, H)) -> Image:
    """A grey street with solid coloured boxes: ('car', (x1, y1, x2, y2)) in normalised coordinates."""
    w, h = size
    image = np.full((h, w, 3), 110, np.uint8)
    for name, (x1, y1, x2, y2) in objects:
        cv2.rectangle(image, (round(x1 * w), round(y1 * h)), (round(x2 * w), round(y2 * h)), COLOURS[name], -1)
    return image


class ColourDetector:
    """Finds the solid coloured boxes of `scene()` in real decoded frames: a model whose answers are known."""

    def __init__(self) -> None:
        self.info = ModelInfo(path=Path("colour-blobs"), format="scripted", names=TAXONOMY, version="colour-blobs-1")
        self.batches: list[list[tuple[int, ...]]] = []
        """The image shapes of each batch it was given."""

    def detect(self, images: Sequence[Image]) -> list[Detections]:
        self.batches.append([image.shape for image in images])
        return [self._one(image) for image in images]

    def _one(self, image: Image) -> Detections:
        h, w = image.shape[:2]
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        boxes, classes = [], []
        for name, hue in _HUES.items():
            near = np.minimum(np.abs(hsv[..., 0].astype(int) - hue), 180 - np.abs(hsv[..., 0].astype(int) - hue))
            mask = ((near <= 10) & (hsv[..., 1] > 150) & (hsv[..., 2] > 100)).astype(np.uint8)
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            for x, y, bw, bh, area in stats[1:n]:
                if area >= 40:
                    boxes.append((x / w, y / h, (x + bw) / w, (y + bh) / h))
                    classes.append(TAXONOMY.index(name))
        k = len(boxes)
        return Detections(
            xyxy=np.array(boxes, np.float32).reshape(k, 4),
            confidence=np.full(k, 0.9, np.float32),
            class_id=np.array(classes, np.int64),
            tracker_id=np.full(k, -1, np.int64),
            class_names=TAXONOMY,
        )

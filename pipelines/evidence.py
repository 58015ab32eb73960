"""Evidence images for a case: the scene with the zone and the object drawn, the same scene clean, a crop, and the
first sighting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from service.schemas import Box
from streetwatch.core import EvidenceImage, Violation

_ZONE = (0, 200, 255)
_BOX = (0, 0, 255)
#: The first-sighting frame is held in memory for as long as its stay lasts, so it is kept small.
SNAPSHOT_MAX_WIDTH: Final = 960


def _jpeg(image: npt.NDArray[np.uint8], quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode evidence as JPEG")
    return bytes(buf.tobytes())


def _pixels(box: Box, w: int, h: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (round(v * s) for v, s in zip(box, (w, h, w, h), strict=True))
    return x1, y1, x2, y2


def _draw(image: npt.NDArray[np.uint8], box: Box, polygon: Sequence[tuple[float, float]]) -> npt.NDArray[np.uint8]:
    """A copy of the image with the zone outlined and the box drawn."""
    h, w = image.shape[:2]
    out = image.copy()
    pts = np.round(np.asarray(polygon, np.float64) * [w, h]).astype(np.int32)
    cv2.polylines(out, [pts], isClosed=True, color=_ZONE, thickness=max(1, w // 320))
    x1, y1, x2, y2 = _pixels(box, w, h)
    cv2.rectangle(out, (x1, y1), (x2, y2), _BOX, max(2, w // 240))
    return out


def render_snapshot(image: npt.NDArray[np.uint8], box: Box, polygon: Sequence[tuple[float, float]]) -> bytes:
    """The frame an object was first seen in, zone and box drawn, at most SNAPSHOT_MAX_WIDTH wide (JPEG)."""
    drawn = _draw(image, box, polygon)
    w = drawn.shape[1]
    if w > SNAPSHOT_MAX_WIDTH:
        scale = SNAPSHOT_MAX_WIDTH / w
        drawn = np.asarray(cv2.resize(drawn, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8)
    return _jpeg(drawn, quality=80)


def render_after(image: npt.NDArray[np.uint8], box: Box, polygon: Sequence[tuple[float, float]]) -> EvidenceImage:
    """The camera's look at a handled case's spot: the frame with the zone and the case's box drawn, to be shown
    beside the case's scene as its "after"."""
    return EvidenceImage("after.jpg", "image/jpeg", _jpeg(_draw(image, box, polygon)))


def render_evidence(
    image: npt.NDArray[np.uint8],
    violation: Violation,
    polygon: Sequence[tuple[float, float]],
    first_frame: bytes | None = None,
) -> tuple[EvidenceImage, ...]:
    """The scene (zone, object box and label), the scene as the camera saw it (nothing drawn: reviewed cases become
    training images, see `streetwatch export-reviewed`), a crop of the object with some context, and the first
    sighting."""
    h, w = image.shape[:2]
    scene = _draw(image, violation.xyxy, polygon)
    x1, y1, x2, y2 = _pixels(violation.xyxy, w, h)
    label = f"{violation.type.value}: {violation.class_name} {violation.confidence:.2f}"
    cv2.putText(scene, label, (x1, max(15, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, max(0.5, w / 1280), _BOX, 2)
    mx, my = (x2 - x1) // 4, (y2 - y1) // 4
    crop = image[max(0, y1 - my) : min(h, y2 + my), max(0, x1 - mx) : min(w, x2 + mx)]
    out = [
        EvidenceImage("scene.jpg", "image/jpeg", _jpeg(scene)),
        EvidenceImage("scene-clean.jpg", "image/jpeg", _jpeg(image, quality=90)),
    ]
    if crop.size:
        out.append(EvidenceImage("crop.jpg", "image/jpeg", _jpeg(np.ascontiguousarray(crop))))
    if first_frame is not None:
        out.append(EvidenceImage("first-seen.jpg", "image/jpeg", first_frame))
    return tuple(out)

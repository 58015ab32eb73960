"""Evidence images for a case: the scene with the zone and the object drawn, and a crop of the object."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from streetwatch.core import EvidenceImage, Violation

_ZONE = (0, 200, 255)
_BOX = (0, 0, 255)


def _jpeg(image: npt.NDArray[np.uint8], quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode evidence as JPEG")
    return bytes(buf.tobytes())


def render_evidence(
    image: npt.NDArray[np.uint8], violation: Violation, polygon: Sequence[tuple[float, float]]
) -> tuple[EvidenceImage, ...]:
    """The scene (zone outline, object box and label) and a crop of the object with some context."""
    h, w = image.shape[:2]
    scene = image.copy()
    pts = np.round(np.asarray(polygon, np.float64) * [w, h]).astype(np.int32)
    cv2.polylines(scene, [pts], isClosed=True, color=_ZONE, thickness=max(1, w // 320))
    x1, y1, x2, y2 = (round(v * s) for v, s in zip(violation.xyxy, (w, h, w, h), strict=True))
    cv2.rectangle(scene, (x1, y1), (x2, y2), _BOX, max(2, w // 240))
    label = f"{violation.type.value}: {violation.class_name} {violation.confidence:.2f}"
    cv2.putText(scene, label, (x1, max(15, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, max(0.5, w / 1280), _BOX, 2)
    mx, my = (x2 - x1) // 4, (y2 - y1) // 4
    crop = image[max(0, y1 - my) : min(h, y2 + my), max(0, x1 - mx) : min(w, x2 + mx)]
    out = [EvidenceImage("scene.jpg", "image/jpeg", _jpeg(scene))]
    if crop.size:
        out.append(EvidenceImage("crop.jpg", "image/jpeg", _jpeg(np.ascontiguousarray(crop))))
    return tuple(out)

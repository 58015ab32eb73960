"""Zone geometry: normalised polygons and which object anchors fall inside them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from service.schemas import Box


class Polygon:
    """A closed polygon in normalised image coordinates."""

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        self.points = np.asarray(points, dtype=np.float64).reshape(-1, 2)

    def contains(self, xy: npt.NDArray[np.floating]) -> npt.NDArray[np.bool_]:
        """Which of the (N, 2) points lie inside (even-odd rule; points on an edge may go either way)."""
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        x, y = pts[:, 0:1], pts[:, 1:2]
        x1, y1 = self.points[:, 0], self.points[:, 1]
        x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside = crosses & (x < x_at)
        return np.asarray(inside.sum(axis=1) % 2 == 1)


def bottom_centre(xyxy: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """The ground contact point of each [x1, y1, x2, y2] box: where a parked vehicle stands."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1)


def centre(xyxy: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """The centre of each [x1, y1, x2, y2] box."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


def box_area(box: Box) -> float:
    """Area of an [x1, y1, x2, y2] box (0 for a degenerate one)."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def intersection(a: Box, b: Box) -> float:
    """Area shared by two [x1, y1, x2, y2] boxes."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def containment(inner: Box, outer: Box) -> float:
    """The share of `inner`'s area that lies inside `outer` (0..1)."""
    area = box_area(inner)
    return intersection(inner, outer) / area if area > 0 else 0.0


def overlap_share(a: Box, b: Box) -> float:
    """The area two boxes share, as a share of the smaller one (0..1): 1 when one lies inside the other."""
    smaller = min(box_area(a), box_area(b))
    return intersection(a, b) / smaller if smaller > 0 else 0.0


def expand(box: Box, dx: float, dy: float) -> Box:
    """The box grown by `dx` on the left and right and `dy` on the top and bottom."""
    return (box[0] - dx, box[1] - dy, box[2] + dx, box[3] + dy)

"""Zone geometry: normalised polygons and which object anchors fall inside them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


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

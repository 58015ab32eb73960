"""Per-camera multi-object tracking with ultralytics' ByteTrack, on the analysed (sampled) frames."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from streetwatch.core import Detections


class _Boxes:
    """The slice of ultralytics' `Boxes` interface that ByteTrack reads, over pixel-space arrays."""

    def __init__(self, xywh: npt.NDArray[np.float32], conf: npt.NDArray[np.float32], cls: npt.NDArray[np.float32]):
        self.xywh = xywh
        self.conf = conf
        self.cls = cls

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, mask: Any) -> _Boxes:
        return _Boxes(self.xywh[mask], self.conf[mask], self.cls[mask])


class CameraTracker:
    """Gives each detection of one camera a track id that persists between analysed frames.

    Lost tracks are kept for `lost_track_s` of stream time, converted to ByteTrack's frame count with the
    camera's sampling interval, so the timeout does not depend on the stream's fps.
    """

    def __init__(self, *, sample_every_s: float, lost_track_s: float = 60.0) -> None:
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import IterableSimpleNamespace

        args = IterableSimpleNamespace(
            tracker_type="bytetrack",
            track_high_thresh=0.25,
            track_low_thresh=0.1,
            new_track_thresh=0.25,
            track_buffer=max(1, math.ceil(lost_track_s / sample_every_s)),
            match_thresh=0.8,
            fuse_score=True,
        )
        self._tracker = BYTETracker(args)

    @property
    def tracks(self) -> int:
        """How many tracks the tracker follows or still looks for (its per-track state).

        ByteTrack also keeps a history of removed tracks, which ultralytics caps at 1000 per tracker.
        """
        return len(self._tracker.tracked_stracks) + len(self._tracker.lost_stracks)

    def update(self, detections: Detections, size: tuple[int, int]) -> Detections:
        """Track one frame's detections (normalised boxes, frame `size` = (w, h)); returns the tracked ones."""
        w, h = size
        scale = np.array([w, h, w, h], np.float32)
        px = detections.xyxy * scale
        xywh = np.concatenate([(px[:, :2] + px[:, 2:]) / 2, px[:, 2:] - px[:, :2]], axis=1).astype(np.float32)
        out = self._tracker.update(
            _Boxes(xywh.reshape(-1, 4), detections.confidence, detections.class_id.astype(np.float32))
        )
        if len(out) == 0:
            return Detections.empty(detections.class_names)
        out = np.asarray(out)
        idx = out[:, 7].astype(np.int64)
        xyxy = np.clip(out[:, :4] / scale, 0.0, 1.0).astype(np.float32)
        return Detections(
            xyxy=xyxy,
            confidence=detections.confidence[idx],
            class_id=detections.class_id[idx],
            tracker_id=out[:, 4].astype(np.int64),
            class_names=detections.class_names,
        )

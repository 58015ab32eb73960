"""Camera sources: decode a file or stream and yield the frames due for analysis, stamped with stream time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import cv2

from streetwatch.config import CameraConfig
from streetwatch.core import Frame

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """A camera source could not be opened or read."""


class Sampler:
    """Decides which frames are due: one every `every_s` seconds of stream time, without drift."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._next: float | None = None

    def due(self, timestamp_s: float) -> bool:
        """Whether the frame at `timestamp_s` should be analysed (the first frame always is)."""
        if self._next is not None and timestamp_s < self._next - 1e-6:
            return False
        self._next = (self._next if self._next is not None else timestamp_s) + self.every_s
        while self._next <= timestamp_s + 1e-6:
            self._next += self.every_s
        return True


def is_file_source(source: str | int) -> bool:
    """A local file (ends when the file ends), as opposed to a stream or device (runs until stopped)."""
    return isinstance(source, str) and "://" not in source


def _open(source: str | int) -> cv2.VideoCapture:
    if is_file_source(source) and not Path(str(source)).is_file():
        raise SourceError(f"video file {source} does not exist")
    cap = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    if not cap.isOpened():
        raise SourceError(f"could not open {source}")
    return cap


class VideoSource:
    """Decodes one camera's source and yields its due frames.

    Frames are grabbed (cheap) and only the due ones are decoded. The stream timestamp comes from the
    container (`CAP_PROP_POS_MSEC`); where a backend gives none, the frame index over the reported fps.
    `captured_at` is the wall time the source was opened plus the stream time.
    """

    def __init__(self, camera: CameraConfig, *, clock: Callable[[], datetime]) -> None:
        self.camera = camera
        self._clock = clock

    def frames(self) -> Iterator[Frame]:
        """Due frames until the source ends; raises SourceError if it cannot be opened."""
        cap = _open(self.camera.source)
        try:
            fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
            opened_at = self._clock()
            sampler = Sampler(self.camera.sample_every_s)
            index = -1
            while cap.grab():
                index += 1
                msec = cap.get(cv2.CAP_PROP_POS_MSEC)
                ts = msec / 1000.0 if msec > 0 or index == 0 else (index / fps if fps > 0 else 0.0)
                if not sampler.due(ts):
                    continue
                ok, image = cap.retrieve()
                if not ok or image is None:
                    log.warning("camera %s: frame %d could not be decoded; skipped", self.camera.id, index)
                    continue
                yield Frame(self.camera.id, ts, opened_at + timedelta(seconds=ts), image)
        finally:
            cap.release()

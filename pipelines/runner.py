"""The frame pipeline: read every camera, batch due frames through the model, apply zone rules, deliver cases."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from detector.model import ModelInfo
from pipelines.camera import CameraPipeline
from pipelines.metrics import PipelineMetrics
from pipelines.sources import FileSource, LiveSource, SourceError, open_source
from streetwatch.config import StreetwatchConfig
from streetwatch.core import Detections, DraftCase, Frame

log = logging.getLogger(__name__)

#: Frames buffered per camera between its reader and the model: only the next due one, so a camera costs one
#: decoded frame of memory however far the model falls behind. A file's reader waits for room; a live camera's
#: reader replaces the waiting frame instead, so the model always sees the latest.
QUEUE_FRAMES: Final = 1
#: Most frames in one model batch; cameras beyond it wait for the next batch, in turn.
MAX_BATCH: Final = 16
_END: Final = None


class BatchDetector(Protocol):
    """What the pipeline needs from a model (detector.model.Detector, or a stand-in in tests)."""

    @property
    def info(self) -> ModelInfo:
        """The loaded model; its `version` goes into every case."""
        ...

    def detect(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        """One `Detections` per image, in order."""
        ...


def utc_now() -> datetime:
    """The default wall clock."""
    return datetime.now(UTC)


@dataclass
class RunStats:
    """What a run did, per camera."""

    frames_analysed: dict[str, int] = field(default_factory=dict)
    cases_raised: dict[str, int] = field(default_factory=dict)
    failed_cameras: dict[str, str] = field(default_factory=dict)
    reconnects: dict[str, int] = field(default_factory=dict)


class _Reader:
    """One camera's source on its own thread, feeding a small queue."""

    def __init__(
        self, source: FileSource | LiveSource, wake: threading.Event, stop: threading.Event, metrics: PipelineMetrics
    ) -> None:
        self.source = source
        self.queue: queue.Queue[Frame | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self.error: str | None = None
        self._dropped = metrics.frames_dropped.labels(source.camera.id)
        self._wake = wake
        self._stop = stop
        self.thread = threading.Thread(target=self._run, name=f"src-{source.camera.id}", daemon=True)

    def _put(self, item: Frame | None) -> None:
        if self.source.live:
            while True:
                try:
                    self.queue.put_nowait(item)
                    break
                except queue.Full:
                    try:
                        self.queue.get_nowait()
                        self._dropped.inc()
                    except queue.Empty:
                        pass
        else:
            while not self._stop.is_set():
                try:
                    self.queue.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue
        self._wake.set()

    def _run(self) -> None:
        cam = self.source.camera.id
        try:
            for frame in self.source.frames(self._stop):
                self._put(frame)
        except SourceError as exc:
            self.error = str(exc)
            log.error("camera %s: %s", cam, exc)
        except Exception as exc:
            # One camera's unexpected failure must not take the other cameras down.
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("camera %s: the source failed", cam)
        finally:
            self._put(_END)


class Pipeline:
    """All cameras of a config: one reader thread each, one batching loop, one CameraPipeline per running camera.

    A camera's pipeline (tracker, rule state) and reader are dropped as soon as its source ends.
    """

    def __init__(
        self,
        config: StreetwatchConfig,
        *,
        detector: BatchDetector,
        deliver: Callable[[DraftCase], object],
        metrics: PipelineMetrics,
        clock: Callable[[], datetime] = utc_now,
        on_frame: Callable[[Frame], object] | None = None,
        on_detections: Callable[[Frame, Detections | None], object] | None = None,
    ) -> None:
        self.config = config
        self.detector = detector
        self.deliver = deliver
        self.metrics = metrics
        self.clock = clock
        self.on_frame = on_frame
        self.on_detections = on_detections
        """Called with each analysed frame and the model's answer (None: view unchanged, the model skipped)."""
        self.stats = RunStats()
        self.cameras: dict[str, CameraPipeline] = {}
        self._readers: dict[str, _Reader] = {}
        self._wake = threading.Event()

    def run(self, stop: threading.Event) -> RunStats:
        """Run until every source has ended (files) or `stop` is set; the batch in progress is finished."""
        tz = ZoneInfo(self.config.pipeline.timezone)
        for cam in self.config.cameras:
            source = open_source(cam, self.config.pipeline, clock=self.clock, metrics=self.metrics)
            self.cameras[cam.id] = CameraPipeline(
                cam,
                model_version=self.detector.info.version,
                stream_id=source.stream_id,
                tz=tz,
                skip_unchanged_s=self.config.pipeline.skip_unchanged_s,
            )
            self._readers[cam.id] = _Reader(source, self._wake, stop, self.metrics)
            self.stats.frames_analysed[cam.id] = 0
            self.stats.cases_raised[cam.id] = 0
        for reader in self._readers.values():
            reader.thread.start()
        readers = list(self._readers.values())
        try:
            turn = 0
            while self._readers and not stop.is_set():
                self._wake.clear()
                batch = self._collect(turn)
                turn += 1
                if batch:
                    self._analyse(batch)
                else:
                    self._wake.wait(0.2)
        finally:
            stop.set()
            for reader in readers:
                reader.thread.join(timeout=5)
            for cam_id in list(self._readers):
                self._release(cam_id, ended=False)
        return self.stats

    def _collect(self, turn: int) -> list[Frame]:
        """One frame from each camera that has one ready, up to MAX_BATCH, starting at a rotating camera."""
        ids = list(self._readers)
        batch: list[Frame] = []
        for i in range(len(ids)):
            cam_id = ids[(turn + i) % len(ids)]
            try:
                item = self._readers[cam_id].queue.get_nowait()
            except queue.Empty:
                continue
            if item is _END:
                self._release(cam_id, ended=True)
            elif item is not None:
                batch.append(item)
                if len(batch) == MAX_BATCH:
                    break
        return batch

    def _release(self, cam_id: str, *, ended: bool) -> None:
        """Drop a camera's reader and pipeline (tracker, rule state), keeping only its stats."""
        reader = self._readers.pop(cam_id)
        del self.cameras[cam_id]
        if reader.error is not None:
            self.stats.failed_cameras[cam_id] = reader.error
        elif ended:
            log.info("camera %s: source ended", cam_id)
        if isinstance(reader.source, LiveSource):
            self.stats.reconnects[cam_id] = reader.source.reconnects

    def _analyse(self, batch: list[Frame]) -> None:
        # One model call per frame size: ultralytics letterboxes a batch of mixed sizes to full squares, which
        # changes what it finds in each frame; frames of one size get exactly what they would get alone.
        by_size: dict[tuple[int, ...], list[Frame]] = {}
        for frame in batch:
            if self.cameras[frame.camera_id].needs_model(frame):
                by_size.setdefault(frame.image.shape, []).append(frame)
            else:
                self.metrics.frames_unchanged.labels(frame.camera_id).inc()
                self._process(frame, None)
        for frames in by_size.values():
            started = time.perf_counter()
            detections = self.detector.detect([f.image for f in frames])
            self.metrics.model_latency.observe(time.perf_counter() - started)
            self.metrics.batch_size.observe(len(frames))
            for frame, dets in zip(frames, detections, strict=True):
                self._process(frame, dets)

    def _process(self, frame: Frame, dets: Detections | None) -> None:
        """Track and apply the rules to one frame's detections; None carries the camera's last tracks forward."""
        cam_id = frame.camera_id
        self.stats.frames_analysed[cam_id] += 1
        self.metrics.frames_analysed.labels(cam_id).inc()
        if dets is None:
            log.debug("camera %s at %.1f s: view unchanged, tracks carried forward", cam_id, frame.timestamp_s)
        elif log.isEnabledFor(logging.DEBUG):
            counts = Counter(dets.names)
            seen = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "nothing"
            log.debug("camera %s at %.1f s: %s", cam_id, frame.timestamp_s, seen)
        for draft in self.cameras[cam_id].process(frame, dets):
            self.deliver(draft)
            v = draft.violation
            self.stats.cases_raised[cam_id] += 1
            self.metrics.cases_raised.labels(cam_id, v.type.value).inc()
            log.info("camera %s: %s in zone %s (%s)", cam_id, v.type.value, v.zone_id, v.key)
        if self.on_detections is not None:
            self.on_detections(frame, dets)
        if self.on_frame is not None:
            self.on_frame(frame)

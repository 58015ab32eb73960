"""The camera verifies (docs/closed-loop.md): once a department has handled a case, the camera that found it looks at
the case's spot again and reports whether the violating object is gone.

Sampling follows the camera's analysed frames (stream time); the deadline is the case service's, in wall time,
read from the injected clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from pipelines.delivery import AgentRefusedError, DeliveryError, OutgoingVerification
from pipelines.evidence import render_after
from pipelines.rules import RULE_SPECS, RuleSpec
from pipelines.zones import overlap_share
from service.schemas import Box, VerificationOutcome, VerificationTask
from streetwatch.config import StreetwatchConfig, ZoneConfig
from streetwatch.core import Detections, Frame

log = logging.getLogger(__name__)

#: A detection of the case type's classes that shares at least this much of the smaller of its box and the case's
#: box is the violating object still there. The share of the smaller box, not IoU: a partly hidden object's box
#: shrinks, and one seen from a little further along grows, so their IoU with the case's box falls while the object
#: stands where it stood. Erring towards "present" is the safe side: a false "absent" proposes closing a case that
#: is not fixed, a false "present" only keeps it open for a reviewer to look at.
PRESENT_SHARE: Final = 0.5


def verification_key(task: VerificationTask) -> str:
    """The Idempotency-Key of the camera's look at one handling of a case (a case handled again after a failed
    check is looked at again, under a new key)."""
    return f"verify-{task.case_id}-{task.handled_at.isoformat()}"


@dataclass(slots=True)
class _Watch:
    """One handled case whose spot the camera is watching."""

    task: VerificationTask
    zone: ZoneConfig
    spec: RuleSpec
    needed: int
    absent_run: int = 0


class VerificationWatcher:
    """Watches the spots of the handled cases of one agent's cameras, fed every analysed frame by `observe`.

    A sample in which no detection of the case type's watched classes overlaps the case's box (PRESENT_SHARE)
    counts towards `absent`; `pipeline.verify_absent_samples` of them in a row make the case absent, so a single
    missed detection is not taken for the object leaving. A sample with the object there resets the count, and
    once the case's deadline has passed, posts it `present`. Either way the watch ends.

    State is kept only per watched case (and the model's last answer for the cameras that have one), and dropped
    as soon as the service stops listing the case: its verification arrived, or a person decided without it.
    """

    def __init__(self, config: StreetwatchConfig, *, clock: Callable[[], datetime]) -> None:
        self._zones = {(cam.id, zone.id): zone for cam in config.cameras for zone in cam.zones}
        self._settings = config.pipeline
        self._clock = clock
        self._lock = threading.Lock()  # the poller assigns, the pipeline's thread observes
        self._watches: dict[str, _Watch] = {}
        self._done: set[str] = set()  # looked at (or not watchable here), while the service still lists them
        self._last: dict[str, Detections] = {}

    @property
    def watching(self) -> int:
        """How many cases' spots are being watched."""
        return len(self._watches)

    @property
    def remembered(self) -> int:
        """Everything the watcher holds: watches, finished keys still listed, and cameras' last detections."""
        return len(self._watches) + len(self._done) + len(self._last)

    def assign(self, tasks: Sequence[VerificationTask]) -> None:
        """The handled cases the service lists now: watch the new ones, forget those it no longer lists."""
        listed = {verification_key(task): task for task in tasks}
        with self._lock:
            for key in [k for k in self._watches if k not in listed]:
                log.info("case %d: no longer awaits the camera's look", self._watches.pop(key).task.case_id)
            self._done &= listed.keys()
            for key, task in listed.items():
                if key in self._watches or key in self._done:
                    continue
                zone = self._zones.get((task.camera_id, task.zone_id))
                if zone is None:
                    log.warning(
                        "case %d: camera %s has no zone %s in this config; its spot is not looked at again",
                        task.case_id,
                        task.camera_id,
                        task.zone_id,
                    )
                    self._done.add(key)
                    continue
                needed = self._settings.absent_samples(task.type)
                self._watches[key] = _Watch(task, zone, RULE_SPECS[zone.kind], needed)
                log.info(
                    "camera %s: watching the spot of handled case %d (zone %s): absent after %d samples without it",
                    task.camera_id,
                    task.case_id,
                    task.zone_id,
                    needed,
                )
            cameras = {w.task.camera_id for w in self._watches.values()}
            self._last = {cam: dets for cam, dets in self._last.items() if cam in cameras}

    def observe(self, frame: Frame, detections: Detections | None) -> list[OutgoingVerification]:
        """Feed one analysed frame's detections (None: the view is unchanged since the model's last answer);
        returns the verifications this sample settles."""
        with self._lock:
            watches = [(k, w) for k, w in self._watches.items() if w.task.camera_id == frame.camera_id]
            if not watches:
                return []
            if detections is None:
                detections = self._last.get(frame.camera_id)
                if detections is None:  # the model has not looked since the watch began: no sample yet
                    return []
            else:
                self._last[frame.camera_id] = detections
            names = detections.names
            boxes: list[Box] = [(float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in detections.xyxy.tolist()]
            settled = []
            for key, watch in watches:
                outcome = self._sample(watch, names, boxes)
                if outcome is None:
                    continue
                del self._watches[key]
                self._done.add(key)
                task = watch.task
                log.info("camera %s: handled case %d is %s at its spot", task.camera_id, task.case_id, outcome.value)
                after = render_after(frame.image, task.bbox, watch.zone.polygon)
                settled.append(
                    OutgoingVerification(key, task.case_id, task.camera_id, outcome, frame.captured_at, after)
                )
            if not self._watches:
                self._last.clear()
            return settled

    def _sample(self, watch: _Watch, names: list[str], boxes: list[Box]) -> VerificationOutcome | None:
        """Count one sample; the outcome when it settles the case."""
        task = watch.task
        watched = watch.spec.watched(names, boxes)
        if any(w and overlap_share(box, task.bbox) >= PRESENT_SHARE for w, box in zip(watched, boxes, strict=True)):
            watch.absent_run = 0
            if task.deadline_at is not None and self._clock() >= task.deadline_at:
                return VerificationOutcome.PRESENT
            return None
        watch.absent_run += 1
        log.debug("case %d: not at its spot, %d of %d samples", task.case_id, watch.absent_run, watch.needed)
        return VerificationOutcome.ABSENT if watch.absent_run >= watch.needed else None


class VerificationSource(Protocol):
    """Where the poller asks for handled cases (the case service's client)."""

    def verifications(self, camera_ids: Sequence[str]) -> list[VerificationTask]:
        """The handled cases of these cameras; raise DeliveryError when the service cannot say now."""
        ...


class VerificationPoller:
    """A thread that asks the case service every `pipeline.verify_poll_s` for the handled cases of the agent's
    cameras and hands them to the watcher; a service that does not answer is asked again next time."""

    def __init__(
        self, source: VerificationSource, watcher: VerificationWatcher, camera_ids: Sequence[str], period_s: float
    ) -> None:
        self._source = source
        self._watcher = watcher
        self._camera_ids = list(camera_ids)
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="verify-poller", daemon=True)

    def start(self) -> None:
        """Start asking, at once and then every period."""
        self._thread.start()

    def close(self) -> None:
        """Stop asking; a request in flight finishes first."""
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._watcher.assign(self._source.verifications(self._camera_ids))
            except AgentRefusedError as exc:
                log.error("handled cases to verify: %s", exc)
            except DeliveryError as exc:
                log.warning("handled cases to verify: not listed this time (%s)", exc)
            self._stop.wait(self._period_s)

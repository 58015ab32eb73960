"""The camera's second look at a handled case: absent after N samples in a row, present once the deadline has passed,
durable in the outbox until the service has it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from colour_model import scene
from pipeline_helpers import ServiceThread, draft, free_port, wait_until
from rule_helpers import LOWER_HALF, PARKED, dets, shifted
from sqlalchemy import select

from pipelines.delivery import CaseClient, OutgoingCase, OutgoingVerification
from pipelines.metrics import PipelineMetrics
from pipelines.outbox import Outbox, OutboxSender
from pipelines.verify import VerificationWatcher, verification_key
from service import crud, grids, loop
from service.admin import open_database
from service.auth import Principal
from service.models import Case
from service.schemas import (
    CaseType,
    Decision,
    LoopAction,
    Role,
    VerificationOutcome,
    VerificationProposal,
    VerificationTask,
)
from streetwatch.config import StreetwatchConfig
from streetwatch.core import Detections, Frame

HANDLED_AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
DEADLINE = HANDLED_AT + timedelta(hours=2)
CAR = (1, "car", PARKED)


class Clock:
    """Wall time the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def config(**pipeline: Any) -> StreetwatchConfig:
    zone = {"id": "kerb", "kind": "no_parking", "polygon": LOWER_HALF}
    vending = {"id": "market", "kind": "no_vending", "polygon": LOWER_HALF}
    return StreetwatchConfig.model_validate(
        {
            "cameras": [
                {"id": "cam-1", "source": "cam-1.mp4", "zones": [zone]},
                {"id": "cam-2", "source": "cam-2.mp4", "zones": [vending]},
            ],
            "pipeline": pipeline,
        }
    )


def task(case_id: int = 7, *, camera_id: str = "cam-1", zone_id: str = "kerb", **overrides: Any) -> VerificationTask:
    fields: dict[str, Any] = {
        "case_id": case_id,
        "camera_id": camera_id,
        "zone_id": zone_id,
        "type": CaseType.ILLEGAL_PARKING,
        "bbox": PARKED,
        "handled_at": HANDLED_AT,
        "deadline_at": DEADLINE,
    }
    return VerificationTask(**(fields | overrides))


def frame(n: int, camera_id: str = "cam-1") -> Frame:
    """The n-th analysed frame, two seconds apart, of a real image (the after image is rendered from it)."""
    return Frame(camera_id, 2.0 * n, HANDLED_AT + timedelta(seconds=2 * n), scene(size=(160, 120)))


def watching(*tasks: VerificationTask, clock: Clock | None = None, **pipeline: Any) -> VerificationWatcher:
    watcher = VerificationWatcher(config(**pipeline), clock=clock or Clock(HANDLED_AT))
    watcher.assign(list(tasks) or [task()])
    return watcher


def feed(watcher: VerificationWatcher, samples: list[Detections | None], camera_id: str = "cam-1") -> list[list[Any]]:
    """The outcomes each sample settles, sample by sample."""
    return [[v.outcome for v in watcher.observe(frame(n, camera_id), d)] for n, d in enumerate(samples)]


ABSENT, PRESENT = VerificationOutcome.ABSENT, VerificationOutcome.PRESENT


@pytest.mark.parametrize(
    ("pipeline", "case_type", "needed"),
    [
        ({}, CaseType.ILLEGAL_PARKING, 3),
        ({"verify_absent_samples": {"illegal_parking": 5}}, CaseType.ILLEGAL_PARKING, 5),
        ({"verify_absent_samples": {"piled_litter": 1}}, CaseType.ILLEGAL_PARKING, 3),
    ],
)
def test_a_case_is_absent_after_n_samples_in_a_row_without_its_object(
    pipeline: dict[str, Any], case_type: CaseType, needed: int
) -> None:
    watcher = watching(task(type=case_type), **pipeline)

    outcomes = feed(watcher, [dets(CAR)] + [dets()] * needed)

    assert outcomes == [[]] * needed + [[ABSENT]]
    assert watcher.watching == 0


def test_a_single_missed_detection_is_not_the_object_gone() -> None:
    watcher = watching()

    outcomes = feed(watcher, [dets(), dets(), dets(CAR), dets(), dets(CAR), dets(), dets(), dets()])

    assert outcomes == [[], [], [], [], [], [], [], [ABSENT]]


def test_an_object_still_there_is_posted_present_only_once_the_deadline_has_passed() -> None:
    clock = Clock(HANDLED_AT)
    watcher = watching(clock=clock)

    before = feed(watcher, [dets(CAR)] * 5)
    clock.now = DEADLINE
    at_deadline = feed(watcher, [dets(CAR)])

    assert before == [[]] * 5 and at_deadline == [[PRESENT]]


def test_a_case_without_a_deadline_is_never_posted_present() -> None:
    clock = Clock(DEADLINE + timedelta(days=1))
    watcher = watching(task(deadline_at=None), clock=clock)

    assert feed(watcher, [dets(CAR)] * 5) == [[]] * 5 and watcher.watching == 1


@pytest.mark.parametrize(
    ("seen", "present"),
    [
        (dets(CAR), True),
        (dets((9, "truck", PARKED)), True),  # another vehicle class of the rule: the spot is still parked on
        (dets((1, "car", shifted(PARKED, 0.08))), True),  # 60 % of the box still covered
        (dets((1, "car", (0.45, 0.65, 0.55, 0.75))), True),  # a smaller box, partly hidden: all inside
        (dets((1, "car", shifted(PARKED, 0.12))), False),  # 40 %: another car beside the spot
        (dets((1, "person", PARKED)), False),  # not a class the no_parking rule watches
        (dets(), False),
    ],
)
def test_what_counts_as_the_object_still_there(seen: Detections, present: bool) -> None:
    clock = Clock(DEADLINE)  # past the deadline: present settles at once
    watcher = watching(clock=clock, verify_absent_samples={"illegal_parking": 1})

    (outcomes,) = feed(watcher, [seen])

    assert outcomes == [PRESENT if present else ABSENT]


def test_a_vending_spot_counts_a_person_only_beside_goods() -> None:
    spot = (0.40, 0.55, 0.50, 0.90)
    goods = (0.52, 0.80, 0.62, 0.90)
    vending = task(camera_id="cam-2", zone_id="market", type=CaseType.STREET_VENDING, bbox=spot)
    watcher = watching(vending, clock=Clock(DEADLINE), verify_absent_samples={"street_vending": 2})

    outcomes = feed(
        watcher,
        [dets((1, "person", spot)), dets((1, "person", spot), (2, "sidewalk_clutter", goods))],
        camera_id="cam-2",
    )

    assert outcomes == [[], [PRESENT]]


def test_an_unchanged_view_repeats_the_models_last_answer() -> None:
    watcher = watching()

    outcomes = feed(watcher, [None, dets(), None, None])

    assert outcomes == [[], [], [], [ABSENT]]  # the first None is before any answer: no sample yet


def test_the_post_carries_the_frame_as_after_image_and_one_key_per_handling() -> None:
    watcher = watching(verify_absent_samples={"illegal_parking": 1})

    (posted,) = watcher.observe(frame(4), dets())

    assert posted.key == verification_key(task()) == f"verify-7-{HANDLED_AT.isoformat()}"
    assert (posted.case_id, posted.camera_id, posted.observed_at) == (7, "cam-1", frame(4).captured_at)
    assert posted.after.name == "after.jpg" and posted.after.content_type == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(posted.after.data, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (120, 160, 3)
    again = task(handled_at=HANDLED_AT + timedelta(hours=3))  # handled again after a failed check
    assert verification_key(again) != posted.key


def test_watches_follow_the_services_listing_and_other_cameras_frames_count_for_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watcher = watching(task(7), task(8, zone_id="gone"))
    assert watcher.watching == 1
    assert "camera cam-1 has no zone gone in this config" in caplog.text

    assert feed(watcher, [dets()] * 3, camera_id="cam-2") == [[]] * 3  # another camera's view: not a sample
    assert feed(watcher, [dets()] * 2) == [[], []]
    watcher.assign([task(7), task(8, zone_id="gone")])  # listed again: the count goes on
    assert feed(watcher, [dets()]) == [[ABSENT]]

    watcher.assign([task(7), task(8, zone_id="gone")])  # still listed until the post arrives: not watched again
    assert watcher.watching == 0
    watcher.assign([])  # a reviewer decided, or the post arrived: nothing is kept
    assert watcher.remembered == 0


def test_a_verification_waits_in_the_outbox_across_a_restart(tmp_path: Path) -> None:
    watcher = watching(verify_absent_samples={"illegal_parking": 1})
    (posted,) = watcher.observe(frame(0), dets())
    outbox = Outbox(tmp_path / "outbox.db")
    assert outbox.put_verification(posted) and not outbox.put_verification(posted)
    outbox.close()

    reopened = Outbox(tmp_path / "outbox.db")

    assert reopened.pending_count() == 1
    waiting = reopened.next_pending()
    assert isinstance(waiting, OutgoingVerification) and waiting == posted
    reopened.acknowledge(posted.key)
    assert reopened.pending_count() == 0 and reopened.next_pending() is None


def test_a_verification_waits_out_an_outage_and_one_the_case_no_longer_awaits_is_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pipelines.outbox")
    service = ServiceThread(tmp_path / "service", free_port(), "sw_test-agent-key")
    service.start()
    client = CaseClient(service.url, "sw_test-agent-key", timeout_s=5)
    handled = client.send(OutgoingCase.of(draft("k1", box=PARKED))).id
    draft_only = client.send(OutgoingCase.of(draft("k2", box=(0.05, 0.55, 0.15, 0.65)))).id
    admin = Principal(key_id=None, name="admin", role=Role.ADMIN)
    with open_database(service.settings) as sessions:
        with sessions() as session:
            grids.create_department(session=session, department_id="east", name="East")
        with sessions() as session:
            crud.review_case(
                session=session, case_id=handled, decision=Decision.CONFIRM, reason=None, reviewer=admin, now=HANDLED_AT
            )
        for action, inputs in [
            (LoopAction.FILE, {}),
            (LoopAction.DISPATCH, {"department_id": "east"}),
            (LoopAction.HANDLE, {"note": "moved"}),
        ]:
            with sessions() as session:
                loop.act(session=session, case_id=handled, action=action, actor=admin, now=HANDLED_AT, **inputs)
    service.stop()
    outbox = Outbox(tmp_path / "outbox.db")
    sender = OutboxSender(outbox, client, metrics=PipelineMetrics(), backoff_initial_s=0.05, backoff_max_s=0.4)
    watcher = watching(task(handled), task(draft_only), verify_absent_samples={"illegal_parking": 1})
    sender.start()
    try:
        for verification in watcher.observe(frame(0), dets()):
            sender.submit_verification(verification)
        wait_until(lambda: caplog.text.count("case service does not answer yet") >= 2, 10, "retries while down")
        assert outbox.pending_count() == 2
        service.start()
        wait_until(lambda: outbox.pending_count() == 0, 15, "the outbox to drain once the service is up")
    finally:
        assert sender.close(flush_timeout_s=5) == 0
        client.close()
        outbox.close()
    with open_database(service.settings) as sessions, sessions() as session:
        proposals = {c.id: c.verification_proposal for c in session.scalars(select(Case))}
    service.stop()
    assert proposals == {handled: VerificationProposal.PASSED, draft_only: None}
    assert f"case {draft_only} no longer awaits the camera's look; verification dropped" in caplog.text

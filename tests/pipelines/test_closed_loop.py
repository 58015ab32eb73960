"""The closed loop on real processes: a live camera sees a car parked in a no-parking zone, the case service
(`streetwatch serve`) gets the case, it is confirmed, filed and dispatched by the grid map, the department handles
it, the car is towed away, the agent's camera sees the spot empty and posts the verification with its after image,
and the reviewer's check closes the case.

The transition API is being built beside this (docs/closed-loop.md); until it lands, the loop's actions are taken
in-process by `service.loop` on the service's own database, as its routes will take them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from colour_model import scene
from pipeline_helpers import MjpegCamera, free_port, wait_until
from processes import AgentProcess, ServiceProcess
from sqlalchemy import select

from service import grids, loop
from service.admin import issue_key, open_database
from service.auth import Principal
from service.evidence import LocalEvidenceStore
from service.models import Case, CaseEventRow
from service.schemas import CaseStatus, CaseType, EventKind, LoopAction, Role, VerificationProposal
from service.settings import ServiceSettings

pytestmark = pytest.mark.slow

CAR = (0.30, 0.55, 0.55, 0.80)
ZONE = {"id": "kerb", "kind": "no_parking", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "dwell_s": 2}
GRID, DEPARTMENT = "GZ-TH-001", "traffic-east"
CREW = Principal(key_id=None, name="east crew", role=Role.DEPARTMENT, department_id=DEPARTMENT)
DISPATCHER = Principal(key_id=None, name="dispatcher", role=Role.DISPATCHER)


@pytest.fixture
def street() -> Iterator[MjpegCamera]:
    cam = MjpegCamera(scene(("car", CAR)), fps=10)
    yield cam
    cam.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(tmp_path / "service", free_port())
    yield svc
    svc.stop()


class Loop:
    """The service's database, as the loop's actions and the grid map reach it in-process."""

    def __init__(self, state_dir: Path) -> None:
        self.settings = ServiceSettings(state_dir=state_dir)

    def grid_map(self) -> None:
        with open_database(self.settings) as sessions, sessions() as session:
            grids.create_department(session=session, department_id=DEPARTMENT, name="Traffic East")
            grids.create_grid(session=session, grid_id=GRID, name="Tianhe 001")
            grids.add_grid_zone(session=session, camera_id="cam-live", zone_id="kerb", grid_id=GRID)
            grids.set_grid_duty(
                session=session, grid_id=GRID, case_type=CaseType.ILLEGAL_PARKING, department_id=DEPARTMENT
            )

    def act(self, case_id: int, action: LoopAction, actor: Principal, **inputs: Any) -> Case:
        with open_database(self.settings) as sessions, sessions() as session:
            now = datetime.now(UTC)  # the service's clock is wall time too
            return loop.act(session=session, case_id=case_id, action=action, actor=actor, now=now, **inputs)

    def case(self, case_id: int) -> Case:
        with open_database(self.settings) as sessions, sessions() as session:
            case = session.get_one(Case, case_id)
            session.expunge(case)
            return case

    def events(self, case_id: int) -> list[EventKind]:
        with open_database(self.settings) as sessions, sessions() as session:
            rows = select(CaseEventRow.kind).where(CaseEventRow.case_id == case_id).order_by(CaseEventRow.id)
            return list(session.scalars(rows))

    def image(self, case: Case, role: str) -> np.ndarray[Any, Any]:
        (item,) = [e for e in case.evidence if e.role == role]
        data = LocalEvidenceStore(self.settings.resolved_evidence_dir).get(item.sha256)
        return np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))


def red_share(image: np.ndarray[Any, Any], box: tuple[float, float, float, float]) -> float:
    """How much of the box (shrunk a little, clear of drawn outlines) is the colour-blob model's red car."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    inner = image[round((y1 + 0.05) * h) : round((y2 - 0.05) * h), round((x1 + 0.05) * w) : round((x2 - 0.05) * w)]
    b, g, r = (inner[..., i].astype(int) for i in range(3))
    return float(np.mean((r > 180) & (g < 80) & (b < 80)))


def test_the_camera_sees_the_towed_car_gone_and_the_case_closes(
    tmp_path: Path, street: MjpegCamera, service: ServiceProcess
) -> None:
    # The grid map and the keys first, on the service's database: a case takes its grid when it is made.
    service.state_dir.mkdir()
    db = Loop(service.state_dir)
    db.grid_map()
    reviewer = issue_key(db.settings, role=Role.REVIEWER, name="day shift").key
    agent_key = issue_key(db.settings, role=Role.AGENT, name="cam-live agent").key
    config = {
        "cameras": [{"id": "cam-live", "source": street.url, "sample_every_s": 0.5, "zones": [ZONE]}],
        "pipeline": {"verify_poll_s": 0.5, "delivery_backoff_max_s": 0.5, "flush_timeout_s": 10},
    }
    agent = AgentProcess(tmp_path, config, api=service.url, api_key=agent_key, metrics_port=free_port())
    # Both processes start at once (the agent waits for the service): most of this test's time is their start.
    starting = threading.Thread(target=service.start)
    starting.start()
    agent.start()
    starting.join()
    try:
        wait_until(lambda: len(service.cases()) == 1, 30, "the parked car's case")
        (raised,) = service.cases()
        case_id = raised.id

        # 审核 → 立案 → 派遣 (by the grid map) → 处置.
        confirmed = httpx.post(
            f"{service.url}/api/v1/cases/{case_id}/review",
            json={"decision": "confirm"},
            headers={"Authorization": f"Bearer {reviewer}"},
        )
        assert confirmed.status_code == 200, confirmed.text
        filed = db.act(case_id, LoopAction.FILE, Principal(key_id=None, name="day shift", role=Role.REVIEWER))
        assert filed.status is CaseStatus.DISPATCHED and filed.department_id == DEPARTMENT
        db.act(case_id, LoopAction.HANDLE, CREW, note="owner told to move it")

        # The agent watches the spot; the car is still there, so nothing is proposed.
        wait_until(lambda: f"watching the spot of handled case {case_id}" in agent.log(), 15, "the agent to watch")
        analysed = agent.metric("streetwatch_frames_analysed_total")
        wait_until(lambda: agent.metric("streetwatch_frames_analysed_total") >= analysed + 4, 15, "four samples")
        assert db.case(case_id).verification_proposal is None

        street.show(scene())  # towed away
        wait_until(lambda: db.case(case_id).verification_proposal is not None, 20, "the camera's verification")
        handled = db.case(case_id)
        assert handled.verification_proposal is VerificationProposal.PASSED

        # 核查 (the reviewer agrees with the camera) → 结案.
        db.act(case_id, LoopAction.VERIFY_PASS, Principal(key_id=None, name="day shift", role=Role.REVIEWER))
        closed = db.act(case_id, LoopAction.CLOSE, DISPATCHER)
    finally:
        code, outcome = agent.terminate()

    assert closed.status is CaseStatus.CLOSED
    assert db.events(case_id) == [
        EventKind.CONFIRMED,
        EventKind.FILED,
        EventKind.DISPATCHED,
        EventKind.HANDLED,
        EventKind.VERIFICATION_PROPOSED,
        EventKind.VERIFIED,
        EventKind.CLOSED,
    ]
    # The before / after pair: the car in the case's scene, the empty kerb in the camera's after image.
    assert red_share(db.image(handled, "scene"), raised.bbox) > 0.9
    assert red_share(db.image(handled, "after"), raised.bbox) == 0.0
    assert code == 0 and outcome["left"] == 0

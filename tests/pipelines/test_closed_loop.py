"""The closed loop on real processes: a live camera sees a car parked in a no-parking zone, the case service
(`streetwatch serve`) gets the case, it is confirmed, filed and dispatched by the grid map, the department handles
it, the car is towed away, the agent's camera sees the spot empty and posts the verification with its after image,
the reviewer's check and the dispatcher close the case, a city platform's webhook receiver gets every step, and the
KPIs report the times the case's own timestamps give.

Every person acts over the HTTP API with a key of their role, as they would in a bureau; only the first admin key
comes from the shell (`streetwatch keys create`), as it must.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from colour_model import scene
from pipeline_helpers import MjpegCamera, free_port, wait_until
from processes import AgentProcess, ServiceProcess

from service.signing import verify_signature
from tests.service.webhook_helpers import Receiver

pytestmark = pytest.mark.slow

CAR = (0.30, 0.55, 0.55, 0.80)
DWELL_S = 2
ZONE = {"id": "kerb", "kind": "no_parking", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "dwell_s": DWELL_S}
GRID, DEPARTMENT = "GZ-TH-001", "traffic-east"
SECRET = "city-platform-secret-0123"
#: The default deadline of a normal illegal-parking case (docs/closed-loop.md).
PARKING_HOURS = 2


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


@pytest.fixture
def platform() -> Iterator[Receiver]:
    """The city platform's webhook receiver, on a loopback port."""
    receiver = Receiver()
    yield receiver
    receiver.stop()


class User:
    """Someone calling the case API with their own key."""

    def __init__(self, service: ServiceProcess, key: str) -> None:
        self.http = httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)

    def call(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        """The JSON answer of a request that must answer `status`."""
        answer = self.http.request(method, path, **kwargs)
        assert answer.status_code == status, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def act(self, case_id: int, action: str, **body: Any) -> dict[str, Any]:
        case: dict[str, Any] = self.call("POST", f"/api/v1/cases/{case_id}/actions/{action}", json=body)
        return case

    def case(self, case_id: int) -> dict[str, Any]:
        case: dict[str, Any] = self.call("GET", f"/api/v1/cases/{case_id}")
        return case

    def image(self, case: dict[str, Any], role: str) -> np.ndarray[Any, Any]:
        (item,) = [e for e in case["evidence"] if e["role"] == role]
        data = self.http.get(item["url"])
        assert data.status_code == 200, data.text
        return np.asarray(cv2.imdecode(np.frombuffer(data.content, np.uint8), cv2.IMREAD_COLOR))

    def kpis(self, group_by: str) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.call("GET", "/api/v1/kpis", params={"group_by": group_by})["groups"]
        return groups


def new_key(admin: User, service: ServiceProcess, role: str, name: str, **extra: str) -> User:
    """A user with a new key of `role`, which the admin makes over the API."""
    made = admin.call("POST", "/api/v1/keys", 201, json={"role": role, "name": name, **extra})
    return User(service, made["key"])


def red_share(image: np.ndarray[Any, Any], box: tuple[float, float, float, float]) -> float:
    """How much of the box (shrunk a little, clear of drawn outlines) is the colour-blob model's red car."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    inner = image[round((y1 + 0.05) * h) : round((y2 - 0.05) * h), round((x1 + 0.05) * w) : round((x2 - 0.05) * w)]
    b, g, r = (inner[..., i].astype(int) for i in range(3))
    return float(np.mean((r > 180) & (g < 80) & (b < 80)))


def test_the_camera_sees_the_towed_car_gone_the_case_closes_and_the_kpis_tell_its_times(
    tmp_path: Path, street: MjpegCamera, service: ServiceProcess, platform: Receiver
) -> None:
    # The operator's first key from the shell; then the admin sets up the grid map (a case takes its grid when it
    # is made, so before the agent runs), the city platform's webhook and everyone's keys over the API.
    admin = User(service, service.admin_key())
    service.start()
    admin.call("POST", "/api/v1/departments", 201, json={"id": DEPARTMENT, "name": "Traffic East"})
    admin.call("POST", "/api/v1/grids", 201, json={"id": GRID, "name": "Tianhe 001"})
    admin.call("POST", "/api/v1/grid-zones", 201, json={"camera_id": "cam-live", "zone_id": "kerb", "grid_id": GRID})
    admin.call(
        "PUT", "/api/v1/grid-duties", json={"grid_id": GRID, "type": "illegal_parking", "department_id": DEPARTMENT}
    )
    admin.call("POST", "/api/v1/webhooks", 201, json={"url": platform.url, "secret": SECRET})
    agent_key = admin.call("POST", "/api/v1/keys", 201, json={"role": "agent", "name": "cam-live agent"})["key"]
    reviewer = new_key(admin, service, "reviewer", "day shift")
    dispatcher = new_key(admin, service, "dispatcher", "dispatcher")
    crew = new_key(admin, service, "department", "east crew", department_id=DEPARTMENT)
    config = {
        "cameras": [{"id": "cam-live", "source": street.url, "sample_every_s": 0.5, "zones": [ZONE]}],
        "pipeline": {"verify_poll_s": 0.5, "delivery_backoff_max_s": 0.5, "flush_timeout_s": 10},
    }
    agent = AgentProcess(tmp_path, config, api=service.url, api_key=agent_key, metrics_port=free_port())
    agent.start()
    try:
        wait_until(lambda: len(reviewer.call("GET", "/api/v1/cases")["items"]) == 1, 30, "the parked car's case")
        (raised,) = reviewer.call("GET", "/api/v1/cases")["items"]
        case_id = raised["id"]
        assert raised["grid_id"] == GRID

        # 审核 → 立案 → 派遣 (by the grid map) → 处置 (the crew finds it in its own list).
        reviewer.call("POST", f"/api/v1/cases/{case_id}/review", json={"decision": "confirm"})
        filed = dispatcher.act(case_id, "file")
        assert (filed["status"], filed["department_id"]) == ("dispatched", DEPARTMENT)
        assert [c["id"] for c in crew.call("GET", "/api/v1/cases")["items"]] == [case_id]
        ticket = bytes(cv2.imencode(".jpg", scene(("car", CAR)))[1].tobytes())
        handled = crew.call(
            "POST",
            f"/api/v1/cases/{case_id}/actions/handle",
            data={"note": "owner told to move it"},
            files={"photo": ("ticket.jpg", ticket, "image/jpeg")},
        )
        assert (handled["status"], handled["handling_note"]) == ("handled", "owner told to move it")
        (photo,) = [e for e in handled["evidence"] if e["role"] == "handled"]
        assert crew.http.get(photo["url"]).content == ticket

        # The agent watches the spot; the car is still there, so nothing is proposed.
        wait_until(lambda: f"watching the spot of handled case {case_id}" in agent.log(), 15, "the agent to watch")
        analysed = agent.metric("streetwatch_frames_analysed_total")
        wait_until(lambda: agent.metric("streetwatch_frames_analysed_total") >= analysed + 4, 15, "four samples")
        assert reviewer.case(case_id)["verification_proposal"] is None

        street.show(scene())  # towed away
        wait_until(lambda: reviewer.case(case_id)["verification_proposal"] is not None, 20, "the camera's check")
        proposed = reviewer.case(case_id)
        assert proposed["verification_proposal"] == "passed"

        # 核查 (the reviewer agrees with the camera) → 结案.
        reviewer.act(case_id, "verify_pass", note="kerb clear, as the camera shows")
        closed = dispatcher.act(case_id, "close")
    finally:
        code, outcome = agent.terminate()

    assert closed["status"] == "closed"
    assert [(t["action"], t["actor"]) for t in closed["transitions"]] == [
        ("file", "dispatcher"),
        ("dispatch", "system"),
        ("handle", "east crew"),
        ("verify_pass", "day shift"),
        ("close", "dispatcher"),
    ]
    # The before / after pair: the car in the case's scene, the empty kerb in the camera's after image.
    assert red_share(reviewer.image(proposed, "scene"), raised["bbox"]) > 0.9
    assert red_share(reviewer.image(proposed, "after"), raised["bbox"]) == 0.0
    assert code == 0 and outcome["left"] == 0

    # The city platform got every step of the case, in order, each signed with its secret.
    kinds = ["confirmed", "filed", "dispatched", "handled", "verification_proposed", "verified", "closed"]
    wait_until(lambda: len(set(platform.event_ids())) == len(kinds), 15, "every event at the platform")
    events = {r.event_id: r for r in platform.received}  # at least once: a repeat is the same event
    for got in events.values():
        assert verify_signature(SECRET, got.body, got.headers["x-streetwatch-signature"])
    bodies = [json.loads(events[i].body) for i in dict.fromkeys(platform.event_ids())]
    assert [(b["kind"], b["case"]["id"]) for b in bodies] == [(f"case.{k}", case_id) for k in kinds]
    assert [events[b["event_id"]].headers["x-streetwatch-event"] for b in bodies] == [b["kind"] for b in bodies]
    assert bodies[-1]["transition"]["at"] == closed["closed_at"]

    # 考核评价: the KPIs are the times worked out by hand from the case's own timestamps.
    case = reviewer.case(case_id)
    times = ("first_seen_at", "detected_at", "dispatched_at", "deadline_at", "handled_at", "closed_at")
    at = {k: datetime.fromisoformat(case[k]) for k in times}
    # Discovery is the first sighting, the dwell before detection: the median must not start at detection.
    assert at["detected_at"] - at["first_seen_at"] >= timedelta(seconds=DWELL_S)
    assert at["deadline_at"] == at["dispatched_at"] + timedelta(hours=PARKING_HOURS)
    on_time = int(at["handled_at"] <= at["deadline_at"])
    by_hand = {
        "found": 1,
        "reviewed": 1,
        "confirmed": 1,
        "confirmed_rate": 1.0,  # the one case reviewed, and confirmed
        "filed": 1,
        "closed": 1,
        "median_closure_s": (at["closed_at"] - at["first_seen_at"]).total_seconds(),
        "handled": 1,
        "handled_on_time": on_time,
        "on_time_rate": float(on_time),
        "overdue": 0,
        "hot_spots": [],
    }
    assert on_time == 1
    assert dispatcher.kpis("none") == [{"key": None, "name": None, **by_hand}]
    assert dispatcher.kpis("grid") == [{"key": GRID, "name": "Tianhe 001", **by_hand}]

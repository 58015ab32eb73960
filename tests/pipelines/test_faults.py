"""Faults with real processes: the case service stopped and started again, the agent killed with SIGKILL and
restarted, and a camera pointing at nothing. Every case arrives once, none is lost, the other cameras go on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from colour_model import scene
from pipeline_helpers import MjpegCamera, free_port, wait_until
from processes import AgentProcess, ServiceProcess

from streetwatch.demo import write_video

pytestmark = pytest.mark.slow

A = ("car", (0.05, 0.55, 0.25, 0.80))
B = ("car", (0.40, 0.55, 0.60, 0.80))
C = ("car", (0.75, 0.55, 0.95, 0.80))
ZONE = {"id": "kerb", "kind": "no_parking", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "dwell_s": 2}
FAST = {
    "stall_timeout_s": 2,
    "reconnect_initial_s": 0.2,
    "reconnect_max_s": 1,
    "delivery_backoff_max_s": 0.5,
    "flush_timeout_s": 15,
}


def agent_config(*cameras: dict[str, Any]) -> dict[str, Any]:
    return {"cameras": list(cameras), "pipeline": FAST}


def camera(cam_id: str, source: str, every_s: float = 0.5) -> dict[str, Any]:
    return {"id": cam_id, "source": source, "sample_every_s": every_s, "zones": [{**ZONE, "grace_s": 3}]}


@pytest.fixture
def street() -> Iterator[MjpegCamera]:
    cam = MjpegCamera(scene(), fps=10)
    yield cam
    cam.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(tmp_path / "service", free_port())
    yield svc
    svc.stop()


def assert_cases_at(service: ServiceProcess, *expected: tuple[str, tuple[float, float, float, float]]) -> None:
    """One case per expected car, at its box (give or take the tracker's smoothing), left to right."""
    found = sorted(c.bbox for c in service.cases())
    assert len(found) == len(expected), found
    for box, (_, want) in zip(found, sorted(expected, key=lambda o: o[1]), strict=True):
        assert box == pytest.approx(want, abs=0.02)


def test_cases_raised_while_the_service_is_down_arrive_once_when_it_is_back(
    tmp_path: Path, street: MjpegCamera, service: ServiceProcess
) -> None:
    service.start()
    agent = AgentProcess(
        tmp_path,
        agent_config(camera("cam-live", street.url)),
        api=service.url,
        api_key=service.agent_key(),
        metrics_port=free_port(),
    )
    agent.start()
    try:
        street.show(scene(A))
        wait_until(lambda: len(service.cases()) == 1, 30, "the first case")
        service.stop()
        street.show(scene(A, B))
        wait_until(lambda: agent.metric("streetwatch_outbox_depth") == 1, 30, "B waiting in the outbox")
        street.show(scene(A, B, C))
        wait_until(lambda: agent.metric("streetwatch_outbox_depth") == 2, 30, "B and C waiting in the outbox")
        service.start()
        wait_until(lambda: len(service.cases()) == 3, 30, "B and C delivered once the service is back")
    finally:
        code, outcome = agent.terminate()
    assert code == 0, agent.log()
    assert outcome["left"] == 0 and outcome["cases_raised"] == {"cam-live": 3}
    assert_cases_at(service, A, B, C)
    assert [c.sightings for c in service.cases()] == [1, 1, 1]
    assert "not delivered yet" in agent.log() and "SIGTERM: finishing the current batch" in agent.log()


def test_an_agent_killed_with_sigkill_loses_no_case_and_sends_none_twice(
    tmp_path: Path, street: MjpegCamera, service: ServiceProcess
) -> None:
    service.start()
    key = service.agent_key()
    agent = AgentProcess(
        tmp_path, agent_config(camera("cam-live", street.url)), api=service.url, api_key=key, metrics_port=free_port()
    )
    agent.start()
    street.show(scene(A))
    wait_until(lambda: len(service.cases()) == 1, 30, "A delivered")
    service.stop()
    street.show(scene(A, B))
    wait_until(lambda: agent.metric("streetwatch_outbox_depth") == 1, 30, "B stored in the outbox")
    agent.kill()  # B exists only in the outbox now

    service.start()
    agent.start()  # the cars are still parked: the new run sees them again, under new violation keys
    try:
        wait_until(lambda: len(service.cases()) == 2, 30, "B replayed from the outbox")
        wait_until(lambda: agent.metric("streetwatch_cases_raised_total") == 2, 30, "A and B seen again")
        wait_until(lambda: agent.metric("streetwatch_outbox_depth") == 0, 30, "the outbox drained")
    finally:
        code, outcome = agent.terminate()
    assert code == 0, agent.log()
    assert outcome["left"] == 0
    # Two cases: the restarted run's sightings of A and B were merged into them by the service, not duplicated.
    assert_cases_at(service, A, B)
    assert sorted(c.sightings for c in service.cases()) == [2, 2]
    assert "cases from an earlier run will be sent again" in agent.log()


def test_a_camera_pointing_at_nothing_does_not_stop_the_others(tmp_path: Path, service: ServiceProcess) -> None:
    service.start()
    videos = {
        name: str(write_video(tmp_path / f"{name}.mp4", [(scene(box), 8.0), (scene(), 2.0)], fps=5))
        for name, box in (("north", A), ("south", C))
    }
    config = agent_config(
        camera("cam-dead", f"rtsp://127.0.0.1:{free_port()}/nothing"),
        camera("cam-north", videos["north"]),
        camera("cam-south", videos["south"]),
    )
    agent = AgentProcess(tmp_path, config, api=service.url, api_key=service.agent_key(), metrics_port=free_port())
    agent.start()
    try:
        wait_until(lambda: len(service.cases()) == 2, 60, "a case from each working camera")
        wait_until(lambda: agent.metric("streetwatch_source_reconnects_total", camera="cam-dead") >= 2, 30, "retries")
    finally:
        code, outcome = agent.terminate()
    assert code == 0, agent.log()
    assert sorted(c.camera_id for c in service.cases()) == ["cam-north", "cam-south"]
    assert outcome["cases_raised"] == {"cam-dead": 0, "cam-north": 1, "cam-south": 1}
    assert outcome["reconnects"]["cam-dead"] >= 2
    assert "camera cam-dead: could not open rtsp://127.0.0.1" in agent.log()

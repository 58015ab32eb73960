"""`streetwatch run` and `streetwatch outbox --flush` as an operator meets them, as real processes: a wrong key, a
dead service or cameras that all fail end the run at once with exit status 1 and one line that says why, and the
cases that could not be sent stay in the outbox until a flush delivers them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from colour_model import scene
from pipeline_helpers import MjpegCamera, draft, free_port
from processes import STREETWATCH, ServiceProcess, clean_env

from pipelines.delivery import OutgoingCase
from pipelines.outbox import Outbox
from streetwatch.demo import write_video

pytestmark = pytest.mark.slow

ZONE = {"id": "kerb", "kind": "no_parking", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "dwell_s": 2}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(tmp_path / "service", free_port())
    yield svc
    svc.stop()


@pytest.fixture
def street() -> Iterator[MjpegCamera]:
    """A live camera: a run on it never ends by itself, so only a failure can end it."""
    cam = MjpegCamera(scene(), fps=5)
    yield cam
    cam.close()


def streetwatch(*args: str, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STREETWATCH, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**clean_env(), "COLUMNS": "400"},
        check=False,
    )


def write_config(tmp_path: Path, cameras: list[dict[str, Any]], **pipeline: float) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"cameras": cameras, "pipeline": pipeline}), encoding="utf-8")
    return path


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def left_in_outbox(state: Path) -> int:
    box = Outbox(state / "outbox.db")
    try:
        return box.pending_count()
    finally:
        box.close()


def test_a_wrong_key_ends_the_run_and_a_flush_with_the_right_one_delivers(
    tmp_path: Path, service: ServiceProcess, street: MjpegCamera
) -> None:
    service.start()
    state = tmp_path / "agent"
    box = Outbox(state / "outbox.db")  # a case an earlier run could not deliver
    box.put(OutgoingCase.of(draft("earlier-case")))
    box.close()
    config = write_config(tmp_path, [{"id": "cam-live", "source": street.url, "zones": [ZONE]}])

    run = streetwatch(
        "run", str(config), "--api", service.url, "--api-key", "sw_wrong", "--state-dir", str(state), "--no-progress"
    )

    assert run.returncode == 1, run.stderr
    line = last_line(run.stderr)
    assert line.startswith("error: the case service refused the API key (401")
    assert "1 undelivered cases are kept in the outbox, none is lost" in line
    assert f"streetwatch outbox --flush --state-dir {state} --api {service.url} --api-key KEY" in line
    assert left_in_outbox(state) == 1 and service.cases() == []

    flushed = streetwatch(
        "outbox", "--flush", "--state-dir", str(state), "--api", service.url, "--api-key", service.agent_key()
    )
    assert flushed.returncode == 0, flushed.stderr
    assert "delivered 1 cases" in flushed.stdout and "0 cases wait for delivery" in flushed.stdout
    assert [c.camera_id for c in service.cases()] == ["cam-1"]


@pytest.mark.parametrize("where", ["dead port", "wrong path"])
def test_a_service_that_never_answers_ends_the_run_after_the_configured_bound(
    tmp_path: Path, street: MjpegCamera, service: ServiceProcess, where: str
) -> None:
    if where == "dead port":
        api, why = f"http://127.0.0.1:{free_port()}", "ConnectError"
    else:  # something answers there, but not the case service
        service.start()
        api, why = f"{service.url}/cases", f"GET {service.url}/cases/healthz answered 404"
    config = write_config(tmp_path, [{"id": "cam-live", "source": street.url}], service_timeout_s=3)

    run = streetwatch("run", str(config), "--api", api, "--api-key", "sw_x", "--state-dir", str(tmp_path / "s"))

    assert run.returncode == 1, run.stderr
    line = last_line(run.stderr)
    assert line.startswith(f"error: the case service at {api} never answered ({why}")
    assert "a run waits pipeline.service_timeout_s = 3 s for it" in line


def test_a_flush_to_a_service_that_never_answers_fails_and_keeps_the_cases(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    box.put(OutgoingCase.of(draft("k1")))
    box.close()
    dead = f"http://127.0.0.1:{free_port()}"

    flushed = streetwatch(
        "outbox", "--flush", "--state-dir", str(tmp_path), "--api", dead, "--api-key", "sw_x", "--timeout", "2"
    )

    assert flushed.returncode == 1, flushed.stderr
    assert last_line(flushed.stderr).startswith(f"error: the case service at {dead} never answered within --timeout")
    assert left_in_outbox(tmp_path) == 1


def test_every_camera_failing_fails_the_run_and_one_failing_does_not(tmp_path: Path) -> None:
    good = str(write_video(tmp_path / "street.mp4", [(scene(), 3.0)], fps=5))
    gone = {"id": "cam-gone", "source": str(tmp_path / "nowhere.mp4")}
    lost = {"id": "cam-lost", "source": str(tmp_path / "lost.mp4")}

    run = streetwatch("run", str(write_config(tmp_path, [gone, lost])), "--state-dir", str(tmp_path / "s"))

    assert run.returncode == 1, run.stderr
    assert f"camera cam-gone failed: video file {tmp_path / 'nowhere.mp4'} does not exist" in run.stderr
    assert f"camera cam-lost failed: video file {tmp_path / 'lost.mp4'} does not exist" in run.stderr
    assert last_line(run.stderr) == "error: every camera failed (2 of 2, reasons above); nothing was watched"

    one = streetwatch(
        "run", str(write_config(tmp_path, [gone, {"id": "cam-ok", "source": good}])), "--state-dir", str(tmp_path / "s")
    )

    assert one.returncode == 0, one.stderr
    assert "camera cam-gone failed" in one.stderr and "1 of 2 cameras failed (reasons above); the others ran" in (
        one.stderr
    )

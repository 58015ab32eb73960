"""Real processes for the fault tests: the case service (`streetwatch serve`) and a camera agent (agent_main.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from pipeline_helpers import wait_until
from prometheus_client.parser import text_string_to_metric_families

from service.admin import stored_cases
from service.schemas import CaseOut
from service.settings import ServiceSettings

STREETWATCH = str(Path(sys.executable).parent / "streetwatch")
AGENT = str(Path(__file__).with_name("agent_main.py"))


def clean_env() -> dict[str, str]:
    # The service reads STREETWATCH_* settings; none from the test's own environment may leak in.
    return {k: v for k, v in os.environ.items() if not k.startswith("STREETWATCH_")}


class ServiceProcess:
    """`streetwatch serve` on a fixed port; stop() and start() again keep its state dir and port."""

    def __init__(self, state_dir: Path, port: int) -> None:
        self.state_dir = state_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def agent_key(self) -> str:
        """A new agent key, as `streetwatch keys create` prints it (the last line)."""
        return self._new_key("agent")

    def admin_key(self) -> str:
        """A new admin key from the shell: how an operator starts, before any key exists to call the API with."""
        return self._new_key("admin")

    def _new_key(self, role: str) -> str:
        out = subprocess.run(
            [STREETWATCH, "keys", "create", "--role", role, "--state-dir", str(self.state_dir)],
            capture_output=True,
            text=True,
            check=True,
            env=clean_env(),
        )
        return out.stdout.strip().splitlines()[-1]

    def start(self) -> None:
        log = (self.state_dir.parent / "service.log").open("ab")
        self._proc = subprocess.Popen(
            [STREETWATCH, "serve", "--state-dir", str(self.state_dir), "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_env(),
        )
        wait_until(self._healthy, 60, "the case service to answer /healthz")

    def _healthy(self) -> bool:
        assert self._proc is not None and self._proc.poll() is None, "the case service exited"
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=30)
        self._proc = None

    def cases(self) -> list[CaseOut]:
        """Every stored case, read straight from its database."""
        return stored_cases(ServiceSettings(state_dir=self.state_dir), limit=1000)


class AgentProcess:
    """A camera agent process on a config; its log is kept next to its state dir."""

    def __init__(self, tmp_path: Path, config: dict[str, Any], *, api: str, api_key: str, metrics_port: int) -> None:
        self.state_dir = tmp_path / "agent"
        self.config_path = tmp_path / "agent.yaml"
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log_path = tmp_path / "agent.log"
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self._args = [
            sys.executable,
            AGENT,
            str(self.config_path),
            "--api",
            api,
            "--api-key",
            api_key,
            "--state-dir",
            str(self.state_dir),
            "--metrics-port",
            str(metrics_port),
        ]
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        log = self.log_path.open("a", encoding="utf-8")
        self._proc = subprocess.Popen(self._args, stdout=subprocess.PIPE, stderr=log, text=True, env=clean_env())
        wait_until(self._serving_metrics, 60, "the agent's metrics endpoint")

    def _serving_metrics(self) -> bool:
        assert self._proc is not None and self._proc.poll() is None, f"the agent exited:\n{self.log()}"
        try:
            return httpx.get(self.metrics_url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples matching `labels` (0 where there are none)."""
        text = httpx.get(self.metrics_url, timeout=5).text
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def kill(self) -> None:
        """SIGKILL: no batch finished, no outbox flushed, nothing cleaned up."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(timeout=30)
        self._proc = None

    def terminate(self) -> tuple[int, dict[str, Any]]:
        """SIGTERM, then wait for the graceful end; returns the exit code and the agent's outcome."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        out, _ = self._proc.communicate(timeout=60)
        code = self._proc.returncode
        self._proc = None
        # The outcome is the last line; ultralytics may print its own lines before it.
        return code, json.loads(out.strip().splitlines()[-1]) if out.strip() else {}

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""

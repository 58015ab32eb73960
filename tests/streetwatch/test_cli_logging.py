"""What an operator reads from the CLI when its output goes to a file or a log shipper: real processes, piped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from streetwatch.demo import asset_image, write_video

pytestmark = pytest.mark.slow

STREETWATCH = str(Path(sys.executable).parent / "streetwatch")
#: One log record per line: time, level, logger, message (what grep and log shippers expect).
PLAIN = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) [a-z_.]+: \S")


def streetwatch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETWATCH_")}
    return subprocess.run([STREETWATCH, *args], capture_output=True, text=True, env=env, timeout=600, check=False)


def test_verbose_run_logs_the_pipeline_s_decisions_in_plain_lines_and_nothing_else(tmp_path: Path) -> None:
    video = write_video(tmp_path / "bus.mp4", [(asset_image("bus.jpg"), 4.0)], fps=5)
    zone = {"id": "pavement", "kind": "no_vending", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "dwell_s": 60}
    camera = {"id": "bus-stop", "source": str(video), "sample_every_s": 1.0, "zones": [zone]}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({"cameras": [camera]}), encoding="utf-8")
    state = str(tmp_path / "state")

    first = streetwatch("-v", "run", str(tmp_path / "cfg.yaml"), "--state-dir", state, "--no-progress")
    assert first.returncode == 0, first.stderr
    # stdout is the run's own summary: ultralytics announced its new settings file and each OpenVINO load there
    # (and loaded the model twice).
    assert first.stdout.splitlines() == ["cases raised: 0 bus-stop=0"], first.stdout
    lines = first.stderr.splitlines()
    assert lines and all(PLAIN.match(line) for line in lines), first.stderr
    messages = [line.split(": ", 1)[1] for line in lines]
    # The model's findings per analysed frame, by class (bus.jpg has people in it whatever the model).
    seen = [m for m in messages if m.startswith("camera bus-stop at 0.0 s: ")]
    assert len(seen) == 1 and "person" in seen[0], messages
    assert any(m.startswith("migrating ") for m in messages)  # a new database: its schema is created
    # No third-party debug chatter (matplotlib's font search, httpx's request lines).
    assert not [
        line
        for line in lines
        if not line.split(" ", 3)[3].startswith(("streetwatch", "pipelines", "detector", "service"))
    ]

    again = streetwatch("run", str(tmp_path / "cfg.yaml"), "--state-dir", state, "--no-progress")
    assert again.returncode == 0, again.stderr
    assert "migrating" not in again.stderr and "HTTP Request" not in again.stderr
    assert " DEBUG " not in again.stderr

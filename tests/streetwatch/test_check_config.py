"""`streetwatch check-config` opens what `run` would open: every camera's source and the model. A config it passes
does not fail `run` over a missing video, a dead stream or a missing model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from streetwatch.demo import write_video

pytestmark = pytest.mark.slow

STREETWATCH = str(Path(sys.executable).parent / "streetwatch")


def check_config(config: dict[str, Any], tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return subprocess.run(
        [STREETWATCH, "check-config", str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("STREETWATCH_")}, "COLUMNS": "400"},
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def street(tmp_path: Path) -> str:
    return str(write_video(tmp_path / "street.mp4", [(np.full((120, 160, 3), 90, np.uint8), 1.0)], fps=5))


def test_a_config_whose_cameras_and_model_open_passes(tmp_path: Path, street: str) -> None:
    result = check_config({"cameras": [{"id": "cam-1", "source": street}]}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{tmp_path / 'cfg.yaml'}: OK (1 cameras opened, 0 zones, model loaded)"


def test_each_source_and_the_model_that_do_not_open_are_named_by_field(tmp_path: Path, street: str) -> None:
    (tmp_path / "notes.mp4").write_text("not a video", encoding="utf-8")
    dead = f"rtsp://127.0.0.1:{free_port()}/camera"
    config = {
        "cameras": [
            {"id": "cam-ok", "source": street},
            {"id": "cam-gone", "source": "nowhere.mp4"},
            {"id": "cam-dead", "source": dead},
            {"id": "cam-text", "source": "notes.mp4"},
        ],
        "detector": {"model": "models/missing.pt"},
        "pipeline": {"stall_timeout_s": 3},
    }

    result = check_config(config, tmp_path)

    assert result.returncode == 2, result.stdout
    # FFmpeg may say what it tried first, on its own lines.
    lines = [line.strip() for line in result.stderr.strip().splitlines()]
    lines = lines[lines.index(f"config {tmp_path / 'cfg.yaml'}: 4 of its cameras and model do not work") :]
    assert lines[1] == f"cameras[1].source: video file {tmp_path / 'nowhere.mp4'} does not exist"
    assert lines[2].startswith(f"cameras[2].source: could not open {dead}: "), lines[2]  # then FFmpeg's reason
    assert lines[3].startswith("cameras[3].source: ")
    assert lines[4] == f"detector.model: model file {tmp_path / 'models' / 'missing.pt'} does not exist"

    shallow = check_config(config, tmp_path, "--shallow")
    assert shallow.returncode == 0, shallow.stderr
    assert "valid (4 cameras, 0 zones; not opened: --shallow)" in shallow.stdout

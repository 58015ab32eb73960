"""Command-line options that a user gets wrong, or reads about in --help."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from streetwatch.cli import app


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})
    return result.exit_code, result.output


@pytest.mark.parametrize("env", [{}, {"STREETWATCH_API_KEY": "sw_x"}], ids=["option", "environment"])
def test_an_api_key_without_an_api_is_refused(tmp_path: Path, env: dict[str, str]) -> None:
    config = tmp_path / "cfg.yaml"
    config.write_text("cameras: []\n")
    args = ["run", str(config), "--state-dir", str(tmp_path / "s")] + ([] if env else ["--api-key", "sw_x"])
    code, output = invoke(*args, env=env)
    assert code == 2
    assert "--api-key (or STREETWATCH_API_KEY) is used only with --api" in output
    assert not (tmp_path / "s").exists()  # refused before anything was created


def test_export_names_its_formats() -> None:
    code, output = invoke("export", "--format", "tflite")
    assert code == 2 and "'tflite' is not one of 'onnx', 'openvino'" in output


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("train", ["Passes over the train list.", "Images per optimiser step.", "[default: coco]"]),
        ("eval", ["Image size to predict at", "P and R at this confidence threshold"]),
    ],
)
def test_help_describes_every_option(command: str, expected: list[str]) -> None:
    code, output = invoke(command, "--help")
    assert code == 0
    for text in expected:
        assert text in output

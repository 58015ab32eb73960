"""Command-line options that a user gets wrong, or reads about in --help."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from streetwatch.cli import app

STREETWATCH = str(Path(sys.executable).parent / "streetwatch")


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


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["export", "--format", "tflite"], "'tflite' is not one of 'onnx', 'openvino'"),
        (["build-dataset", "recipe.yaml", "--format", "png"], "'png' is not one of 'jpg', 'webp'"),
    ],
)
def test_a_format_option_names_its_choices(args: list[str], expected: str) -> None:
    code, output = invoke(*args)
    assert code == 2 and expected in output


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


def streetwatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command line, in its own process, with no STREETWATCH_* setting from the test's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETWATCH_")}
    return subprocess.run(
        [STREETWATCH, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env={**env, "COLUMNS": "400"}
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", [["cases"], ["keys", "list"], ["keys", "revoke", "1"]], ids=["cases", "keys list", "keys revoke"]
)
def test_a_mistyped_state_dir_is_refused_not_created(tmp_path: Path, command: list[str]) -> None:
    typo = tmp_path / "streetwatch-dta"
    result = streetwatch(*command, "--state-dir", str(typo), cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert result.stderr.strip() == (
        f"--state-dir: {typo} does not exist; give the folder that `streetwatch serve` or `streetwatch run` uses"
    )
    assert not typo.exists()
    typo.mkdir()  # a folder, but not one the service ever used
    empty = streetwatch(*command, "--state-dir", str(typo), cwd=tmp_path)
    assert empty.returncode == 2 and f"{typo} holds no case database (streetwatch.db)" in empty.stderr
    assert list(typo.iterdir()) == []


@pytest.mark.slow
def test_the_outbox_of_a_mistyped_state_dir_names_the_option(tmp_path: Path) -> None:
    result = streetwatch("outbox", "--state-dir", "streetwatch-dta", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "--state-dir: streetwatch-dta/outbox.db does not exist (no run has used it yet)"


@pytest.mark.slow
def test_creating_the_first_key_of_a_new_state_dir_says_so(tmp_path: Path) -> None:
    created = streetwatch("keys", "create", "--role", "admin", "--state-dir", "new", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "--state-dir: created a new case database in new" in created.stderr
    again = streetwatch("keys", "create", "--role", "agent", "--state-dir", "new", cwd=tmp_path)
    assert again.returncode == 0 and "created a new case database" not in again.stderr
    listed = streetwatch("keys", "list", "--state-dir", "new", cwd=tmp_path)
    assert listed.returncode == 0 and "admin-key" in listed.stdout and "agent-key" in listed.stdout


def commands(group: TyperGroup, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            yield from commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


root = typer.main.get_command(app)
assert isinstance(root, TyperGroup)
COMMANDS = dict(commands(root))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_is_described_and_flags_show_no_value(tmp_path: Path, name: str) -> None:
    undescribed = [p.name for p in COMMANDS[name].params if isinstance(p, TyperOption) and not p.help]
    assert undescribed == []
    shown = streetwatch(*name.split(), "--help", cwd=tmp_path)
    assert shown.returncode == 0 and "--help" in shown.stdout
    assert "<bool>" not in shown.stdout


@pytest.mark.slow
def test_help_shows_the_defaults_of_run_outbox_and_keys(tmp_path: Path) -> None:
    run = streetwatch("run", "--help", cwd=tmp_path).stdout
    assert "[default: (STATE_DIR/outbox.db)]" in run and "[default: (on a terminal)]" in run
    outbox = streetwatch("outbox", "--help", cwd=tmp_path).stdout
    assert "[default: 60.0]" in outbox and "[default: streetwatch-data]" in outbox
    keys = streetwatch("keys", "create", "--help", cwd=tmp_path).stdout
    assert "[default: (ROLE-key)]" in keys and "[default: (./streetwatch-data)]" in keys

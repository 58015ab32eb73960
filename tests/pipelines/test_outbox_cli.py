"""`streetwatch outbox`: what waits, what the service refused, and sending refused cases again."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline_helpers import draft
from typer.testing import CliRunner

from pipelines.delivery import OutgoingCase
from pipelines.outbox import Outbox
from streetwatch.cli import app


def outbox_with(path: Path, pending: list[str], refused: list[str]) -> None:
    box = Outbox(path)
    for key in pending + refused:
        box.put(OutgoingCase.of(draft(key)))
    for key in refused:
        box.reject(key, f"422 from the service for {key}")
    box.close()


def test_lists_pending_and_refused_cases(tmp_path: Path) -> None:
    outbox_with(tmp_path / "outbox.db", ["p1", "p2"], ["r1"])
    result = CliRunner().invoke(app, ["outbox", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "2 cases wait for delivery" in result.output and "1 were refused" in result.output
    assert "r1" in result.output and "422 from the service for r1" in result.output
    listed = CliRunner().invoke(app, ["outbox", "--state-dir", str(tmp_path), "--json"])
    assert [r["key"] for r in json.loads(listed.stdout)] == ["r1"]


def test_requeue_sends_refused_cases_again(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox_with(path, [], ["r1", "r2", "r3"])
    one = CliRunner().invoke(app, ["outbox", "--outbox", str(path), "--requeue", "r2"])
    assert one.exit_code == 0 and "requeued 1 refused cases" in one.output
    rest = CliRunner().invoke(app, ["outbox", "--outbox", str(path), "--requeue-all"])
    assert rest.exit_code == 0 and "requeued 2 refused cases" in rest.output
    box = Outbox(path)
    assert box.pending_count() == 3 and box.rejected() == []
    box.close()


def test_unknown_key_and_missing_outbox_are_named(tmp_path: Path) -> None:
    outbox_with(tmp_path / "outbox.db", ["p1"], [])
    unknown = CliRunner().invoke(app, ["outbox", "--state-dir", str(tmp_path), "--requeue", "p1"])
    assert unknown.exit_code == 2 and "no refused case with key p1" in unknown.output
    missing = CliRunner().invoke(app, ["outbox", "--state-dir", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "outbox.db does not exist" in missing.output

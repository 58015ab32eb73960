"""The service's CLI commands, driven through a Typer app that `register()` fills, as streetwatch's CLI does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from case_helpers import bearer, case_body, post_case
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from service import grids
from service.admin import open_database
from service.app import create_app
from service.cli import register
from service.settings import ServiceSettings


@pytest.fixture
def invoke() -> typer.Typer:
    """A Typer app holding just the service's commands."""
    app = typer.Typer()
    register(app)
    return app


def run(app: typer.Typer, *args: str) -> Result:
    # A wide terminal, so Rich tables are not cut to CliRunner's default 80 columns.
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def where(tmp_path: Path, database_url: str) -> list[str]:
    """The options that point a command at the test database."""
    return ["--state-dir", str(tmp_path / "state"), "--database-url", database_url]


def test_keys_create_prints_a_working_key_last(
    invoke: typer.Typer, where: list[str], settings: ServiceSettings
) -> None:
    made = {}
    for role in ("agent", "reviewer"):
        result = run(invoke, "keys", "create", "--role", role, "--name", f"{role} one", *where)
        assert result.exit_code == 0, result.output
        made[role] = result.stdout.strip().splitlines()[-1]
        assert made[role].startswith("sw_")
        assert f"Created {role} key" in result.stderr
    with TestClient(create_app(settings)) as client:
        assert post_case(client, made["agent"]).status_code == 201
        assert client.get("/api/v1/cases", headers=bearer(made["reviewer"])).status_code == 200

    listed = run(invoke, "keys", "list", *where)
    assert listed.exit_code == 0
    assert "agent one" in listed.stdout and "reviewer one" in listed.stdout
    assert made["agent"] not in listed.stdout

    revoked = run(invoke, "keys", "revoke", "1", *where)
    assert revoked.exit_code == 0, revoked.output
    with TestClient(create_app(settings)) as client:
        assert post_case(client, made["agent"], idempotency_key="after").status_code == 401


def test_a_department_key_is_made_for_an_existing_department(
    invoke: typer.Typer, where: list[str], settings: ServiceSettings
) -> None:
    missing = run(invoke, "keys", "create", "--role", "department", *where)
    assert missing.exit_code == 2
    assert "--department: a department key needs a department_id" in missing.stderr
    unknown = run(invoke, "keys", "create", "--role", "department", "--department", "sanitation-east", *where)
    assert unknown.exit_code == 2
    assert "--department: no department 'sanitation-east'" in unknown.stderr
    with open_database(settings) as sessions, sessions() as session:
        grids.create_department(session=session, department_id="sanitation-east", name="Sanitation East")
    made = run(invoke, "keys", "create", "--role", "department", "--department", "sanitation-east", *where)
    assert made.exit_code == 0, made.output
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/cases", headers=bearer(made.stdout.strip().splitlines()[-1])).json()["items"] == []
    listed = run(invoke, "keys", "list", *where)
    assert "sanitation-east" in listed.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["keys", "create", "--role", "boss"], "--role"),
        (["keys", "create"], "--role"),
        (["keys", "create", "--role", "agent", "--name", "x" * 129], "--name"),
        (["keys", "revoke", "42"], "no API key 42"),
        (["keys", "revoke", "first"], "KEY_ID"),
        (["cases", "--status", "open"], "--status"),
        (["cases", "--type", "graffiti"], "--type"),
        (["cases", "--limit", "0"], "--limit"),
        (["serve", "--port", "70000"], "--port"),
    ],
)
def test_bad_options_exit_non_zero_naming_them(
    invoke: typer.Typer, where: list[str], args: list[str], named: str
) -> None:
    result = run(invoke, *args, *where)
    assert result.exit_code != 0
    assert named in result.output


def test_keys_revoke_keeps_the_last_admin_key(invoke: typer.Typer, where: list[str]) -> None:
    assert run(invoke, "keys", "create", "--role", "admin", "--name", "ops", *where).exit_code == 0
    refused = run(invoke, "keys", "revoke", "1", *where)
    assert refused.exit_code == 1
    assert "KEY_ID: key 1 is the last admin key: create another admin key before revoking it" in refused.output
    assert run(invoke, "keys", "create", "--role", "admin", "--name", "ops 2", *where).exit_code == 0
    assert run(invoke, "keys", "revoke", "1", *where).exit_code == 0


def test_environment_points_commands_at_the_database(
    invoke: typer.Typer, database_url: str, client: TestClient, agent: str
) -> None:
    post_case(client, agent)
    result = CliRunner().invoke(invoke, ["cases", "--json"], env={"STREETWATCH_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 1


def test_unusable_database_url_is_named(invoke: typer.Typer, tmp_path: Path) -> None:
    bad = run(invoke, "cases", "--database-url", "nonsense://x")
    assert bad.exit_code == 2
    assert "--database-url" in bad.output
    down = run(invoke, "keys", "list", "--database-url", "postgresql+psycopg://u:hunter2@127.0.0.1:1/db")
    assert down.exit_code == 1
    assert "cannot use the case database at postgresql+psycopg://u:***@127.0.0.1:1/db" in down.output
    assert "hunter2" not in down.output


def test_cases_piped_keeps_every_value_whole(where: list[str], client: TestClient, agent: str) -> None:
    camera, zone = "district-7.huaihai-road.north-kerb.pole-0042.camera-3", "kerb-by-the-shopping-centre-entrance"
    post_case(client, agent, body=case_body(camera_id=camera, zone_id=zone))
    # A real process writing to a pipe, as `streetwatch cases > file` or `| grep` runs it: no terminal width.
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETWATCH_") and k != "COLUMNS"}
    streetwatch = str(Path(sys.executable).parent / "streetwatch")
    listed = subprocess.run([streetwatch, "cases", *where], capture_output=True, text=True, env=env, check=False)
    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if camera in line]
    assert zone in row and "…" not in row


def test_cases_lists_as_table_and_json(invoke: typer.Typer, where: list[str], client: TestClient, agent: str) -> None:
    assert run(invoke, "cases", *where).stdout.strip() == "No cases."
    post_case(client, agent, idempotency_key="a")
    post_case(client, agent, idempotency_key="b", body=case_body(type="piled_litter", zone_id="corner"))

    table = run(invoke, "cases", *where)
    assert table.exit_code == 0, table.output
    assert "illegal_parking" in table.stdout and "piled_litter" in table.stdout

    as_json = run(invoke, "cases", "--json", *where)
    assert as_json.exit_code == 0
    cases = json.loads(as_json.stdout)
    assert [(c["type"], c["status"], c["evidence_count"]) for c in cases] == [
        ("piled_litter", "draft", 1),
        ("illegal_parking", "draft", 1),
    ]
    only = json.loads(run(invoke, "cases", "--json", "--type", "piled_litter", "--status", "draft", *where).stdout)
    assert [c["zone_id"] for c in only] == ["corner"]
    assert json.loads(run(invoke, "cases", "--json", "--limit", "1", *where).stdout)[0]["type"] == "piled_litter"
    assert json.loads(run(invoke, "cases", "--json", "--status", "confirmed", *where).stdout) == []

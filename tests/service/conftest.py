"""Fixtures of the service tests: every test runs on SQLite and, when a server is given, on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from case_helpers import T0, Clock
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from service import crud, grids
from service.admin import open_database
from service.app import create_app
from service.db import sqlite_url
from service.schemas import Role
from service.settings import ServiceSettings

POSTGRES_ENV = "STREETWATCH_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file in tmp_path, or a schema of its own on the PostgreSQL server."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "cases.db")
        return
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(f'{POSTGRES_ENV} is not set (run: eval "$(bash .ci/start-postgres.sh)")')
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(server).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def clock() -> Clock:
    """The app's clock, starting an hour after the test cases' detections."""
    return Clock(T0 + timedelta(hours=1))


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> Callable[..., ServiceSettings]:
    """Settings on the test database and a state dir in tmp_path, with overrides."""

    def make(**overrides: Any) -> ServiceSettings:
        return ServiceSettings(state_dir=tmp_path / "state", database_url=database_url, **overrides)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., ServiceSettings]) -> ServiceSettings:
    """Default settings on the test database."""
    return make_settings()


@pytest.fixture
def make_client(clock: Clock, database_url: str) -> Iterator[Callable[[ServiceSettings], TestClient]]:
    """Start `TestClient(create_app(settings))` clients that are closed after the test.

    It asks for `database_url` so that its clients stop before that database goes: pytest tears fixtures down
    in the reverse order of setup, and an app still running would poll its webhooks against a schema being
    dropped (a deadlock on PostgreSQL).
    """
    with ExitStack() as stack:
        yield lambda settings: stack.enter_context(TestClient(create_app(settings, clock=clock)))


@pytest.fixture
def client(make_client: Callable[[ServiceSettings], TestClient], settings: ServiceSettings) -> TestClient:
    """The app on the test database."""
    return make_client(settings)


#: The department the test `department` key acts for (made by `make_keys`).
TEST_DEPARTMENT = "test-department"


@pytest.fixture
def make_keys(clock: Clock) -> Callable[[ServiceSettings], dict[Role, str]]:
    """Store one key per role (named test-ROLE) in the settings' database; the department key's department is
    TEST_DEPARTMENT."""

    def make(settings: ServiceSettings) -> dict[Role, str]:
        with open_database(settings) as sessions, sessions() as session:
            grids.create_department(session=session, department_id=TEST_DEPARTMENT, name="Test department")
            return {
                role: crud.create_api_key(
                    session=session,
                    role=role,
                    name=f"test-{role.value}",
                    now=clock(),
                    department_id=TEST_DEPARTMENT if role is Role.DEPARTMENT else None,
                )[1]
                for role in Role
            }

    return make


@pytest.fixture
def keys(
    client: TestClient, settings: ServiceSettings, make_keys: Callable[[ServiceSettings], dict[Role, str]]
) -> dict[Role, str]:
    """Keys of every role for `client`'s database."""
    return make_keys(settings)


@pytest.fixture
def agent(keys: dict[Role, str]) -> str:
    """An agent key."""
    return keys[Role.AGENT]


@pytest.fixture
def reviewer(keys: dict[Role, str]) -> str:
    """A reviewer key."""
    return keys[Role.REVIEWER]

"""Migrations take an empty database to head (and back), and head matches the ORM models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from service.db import make_engine
from service.migrations import current_revision, downgrade_engine, head_revision, upgrade, upgrade_engine
from service.models import Base

TABLES = {"alembic_version", "api_keys", "cases", "sightings", "evidence", "reviews", "console_sessions"}


def test_empty_database_migrates_to_head_and_back(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) is None
        assert inspect(engine).get_table_names() == []

        upgrade(database_url)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) == TABLES
        upgrade(database_url)  # already at head: nothing to do, nothing fails
        assert current_revision(engine) == head_revision()

        downgrade_engine(engine)
        assert current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

        upgrade_engine(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_head_matches_the_models(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()

"""Migrations take an empty database to head (and back), head matches the ORM models, and an upgrade keeps the
rows already stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from service import loop
from service.auth import Principal
from service.db import make_engine, make_sessions
from service.migrations import current_revision, downgrade_engine, head_revision, upgrade, upgrade_engine
from service.models import ApiKey, Base, Case, DeadlinePolicy
from service.schemas import CaseStatus, LoopAction, Priority, Role

TABLES = {"alembic_version", "api_keys", "cases", "sightings", "evidence", "reviews", "console_sessions"}
TABLES |= {"departments", "grids", "grid_zones", "grid_duties", "deadline_policies", "case_transitions", "case_events"}
TABLES |= {"webhooks", "verifications"}


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


def test_upgrade_from_0003_keeps_cases_and_seeds_the_deadlines(database_url: str) -> None:
    engine = make_engine(database_url)
    at = "2025-05-01 10:00:00+00"
    try:
        upgrade_engine(engine, "0003")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO api_keys (id, name, role, key_hash, created_at) "
                    f"VALUES (1, 'rev', 'reviewer', 'h1', '{at}')"
                )
            )
            for case_id, status in ((1, "draft"), (2, "confirmed"), (3, "rejected")):
                conn.execute(
                    text(
                        "INSERT INTO cases (id, status, camera_id, zone_id, type, first_seen_at, detected_at, "
                        "last_seen_at, x1, y1, x2, y2, confidence, labels, model_version, sightings, created_at) "
                        f"VALUES ({case_id}, '{status}', 'cam-1', 'curb', 'illegal_parking', '{at}', '{at}', "
                        f"'{at}', 0.1, 0.1, 0.5, 0.5, 0.9, '[\"car\"]', 'm1', 1, '{at}')"
                    )
                )
                conn.execute(
                    text(
                        "INSERT INTO sightings (id, case_id, key_scope, idempotency_key, first_seen_at, detected_at, "
                        "x1, y1, x2, y2, confidence, merged, posted_by, created_at) "
                        f"VALUES ({case_id}, {case_id}, 'key-1', 'v{case_id}', '{at}', '{at}', "
                        f"0.1, 0.1, 0.5, 0.5, 0.9, false, 'agent', '{at}')"
                    )
                )
                conn.execute(
                    text(
                        "INSERT INTO evidence (case_id, sighting_id, sha256, content_type, size, created_at, role) "
                        f"VALUES ({case_id}, {case_id}, 'ab', 'image/jpeg', 10, '{at}', 'scene')"
                    )
                )
            conn.execute(
                text(
                    "INSERT INTO reviews (case_id, decision, reviewer, reviewer_key_id, decided_at) "
                    f"VALUES (2, 'confirm', 'rev', 1, '{at}')"
                )
            )

        upgrade_engine(engine)

        with make_sessions(engine)() as session:
            cases = session.scalars(select(Case).order_by(Case.id)).all()
            assert [(c.id, c.status, c.priority, c.grid_id, c.department_id) for c in cases] == [
                (1, CaseStatus.DRAFT, Priority.NORMAL, None, None),
                (2, CaseStatus.CONFIRMED, Priority.NORMAL, None, None),
                (3, CaseStatus.REJECTED, Priority.NORMAL, None, None),
            ]
            assert [len(c.evidence) for c in cases] == [1, 1, 1]  # the rebuilt table cascaded nothing away
            assert [r.reviewer_key_id for r in cases[1].reviews] == [1]
            assert session.scalars(select(ApiKey.department_id)).all() == [None]
            hours = {(p.type.value, p.priority.value): p.hours for p in session.scalars(select(DeadlinePolicy))}
            assert hours == {
                ("illegal_parking", "normal"): 2,
                ("illegal_parking", "urgent"): 1,
                ("street_vending", "normal"): 4,
                ("street_vending", "urgent"): 2,
                ("piled_litter", "normal"): 24,
                ("piled_litter", "urgent"): 12,
                ("unpermitted_ad", "normal"): 72,
                ("unpermitted_ad", "urgent"): 36,
            }
        with make_sessions(engine)() as session:  # the migrated confirmed case goes on through the loop
            case = loop.act(
                session=session,
                case_id=2,
                action=LoopAction.FILE,
                actor=Principal(key_id=1, name="rev", role=Role.REVIEWER),
                now=datetime(2025, 5, 2, tzinfo=UTC),
            )
            assert case.status is CaseStatus.FILED

        # Back to 0003 only while no case is in the loop.
        with pytest.raises(RuntimeError, match="1 case"):
            downgrade_engine(engine, "0003")
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()

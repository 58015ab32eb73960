"""Alembic migrations of the case service, run programmatically: `upgrade(database_url)` brings any database to head."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, func, select

from service.db import WRITE_OPTION, advisory_lock_id, make_engine, url_for_display

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
_LOCK_KEY = "streetwatch:migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {_HERE}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _run(engine: Engine, revision: str, *, up: bool) -> None:
    # One transaction holding the writer lock (SQLite) or an advisory lock (PostgreSQL): service processes that
    # start together migrate once, and the others find the database already at head.
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # A batch migration rebuilds a SQLite table (copy, drop, rename); with foreign keys on, dropping the
            # old table would cascade-delete every row that refers to it. The pragma does nothing inside a
            # transaction, so it is set before one starts; the check below stands in for it.
            _sqlite_foreign_keys(conn, on=False)
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(select(func.pg_advisory_xact_lock(advisory_lock_id(_LOCK_KEY))))
                config = _config()
                config.attributes["connection"] = conn
                if up:
                    current = MigrationContext.configure(conn).get_current_revision()
                    target = ScriptDirectory.from_config(config).as_revision_number(revision)
                    if current != target:
                        # Only a real schema change is news; every command opens the database.
                        shown = url_for_display(str(engine.url))
                        log.info("migrating %s from %s to %s", shown, current or "empty", target)
                    command.upgrade(config, revision)
                else:
                    command.downgrade(config, revision)
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise RuntimeError(f"migrating to {revision} would break a foreign key; nothing was changed")
        finally:
            if sqlite:
                _sqlite_foreign_keys(conn, on=True)


def _sqlite_foreign_keys(conn: Connection, *, on: bool) -> None:
    # On the driver's connection, which runs it at once: SQLAlchemy's would open a transaction first.
    driver = conn.connection.driver_connection
    if not isinstance(driver, sqlite3.Connection):
        raise RuntimeError(f"not a sqlite3 connection: {driver!r}")
    driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind `engine` up to `revision`."""
    _run(engine, revision, up=True)


def downgrade_engine(engine: Engine, revision: str = "base") -> None:
    """Migrate the database behind `engine` down to `revision` (`base` drops every table)."""
    _run(engine, revision, up=False)


def upgrade(database_url: str) -> None:
    """Bring the database at `database_url` to the newest schema; safe to call on an up-to-date database."""
    engine = make_engine(database_url)
    try:
        upgrade_engine(engine)
    finally:
        engine.dispose()

"""Database engines and write transactions that serialise case posts on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

#: Execution option that makes a SQLite transaction start with BEGIN IMMEDIATE (take the write lock up front).
WRITE_OPTION: Final = "streetwatch_write"
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite file."""
    return f"sqlite+pysqlite:///{path}"


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for `url` whose pool holds `pool_size` connections and opens no more; a SQLite file gets WAL,
    foreign keys, a busy timeout and its folder created.

    A request holds one connection at a time and the service works on at most `pool_size` requests at once
    (see `ServiceSettings.workers`), so no request waits for a connection: a pool smaller than the workers
    made a burst of posts fail with "QueuePool limit ... reached" while others held connections waiting for a lock.
    """
    parsed = make_url(url)
    pool = {"pool_size": pool_size, "max_overflow": 0}
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, **pool)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        pool = {}  # an in-memory database lives in one connection per thread
    engine = create_engine(
        parsed, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **pool
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    # pysqlite's own implicit BEGIN cannot take the write lock up front; issue BEGIN ourselves (see _sqlite_on_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY when another writer got
    # in between; IMMEDIATE queues writers on the busy timeout instead, so concurrent posts serialise.
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    """The session factory the app and the CLI use."""
    return sessionmaker(engine, expire_on_commit=False)


def begin_write(session: Session, *, lock_key: str) -> None:
    """Start `session`'s transaction as a writer holding the lock named `lock_key` until commit or rollback.

    SQLite has one writer at a time, taken here with BEGIN IMMEDIATE. PostgreSQL takes a transaction-scoped
    advisory lock on `lock_key`, so service processes sharing one server serialise on the same key only.
    """
    if session.in_transaction():
        raise RuntimeError("begin_write needs a session outside a transaction")
    conn = session.connection(execution_options={WRITE_OPTION: True})
    if conn.dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(advisory_lock_id(lock_key))))


class KeyedLock:
    """Lets one task at a time through per key; the others wait on the event loop, holding neither a worker
    thread nor a database connection, and go through in the order they came.

    Posts of one violation contend for one case row; queueing them here, before they take a connection, keeps
    the database lock of `begin_write` for what runs in other processes. A key's lock is dropped as soon as
    nobody holds or awaits it, so the keys seen over a long run do not pile up.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: Counter[str] = Counter()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of `key` for the body of an `async with`."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]

    def __len__(self) -> int:
        """How many keys are held or awaited now."""
        return len(self._locks)


def advisory_lock_id(lock_key: str) -> int:
    """A stable signed 64-bit id for a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.blake2b(lock_key.encode(), digest_size=8).digest(), "big", signed=True)


def ping(engine: Engine) -> None:
    """Run a trivial query; raises if the database cannot answer."""
    with engine.connect() as conn:
        conn.execute(select(1))


def url_for_display(url: str) -> str:
    """The URL with its password hidden, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)

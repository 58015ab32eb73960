"""The on-disk outbox: every draft case, and every verification of a handled case, is stored (SQLite, WAL) before it is
sent, and removed only once acknowledged.

A sender thread delivers what the outbox holds, oldest first, and backs off while the case service is down. On
start it finds whatever an earlier run left, so a crash or a restart loses no case; the Idempotency-Key (the
violation key) makes a case that did arrive before the crash harmless to send again. A case the service refuses
for good (4xx) is kept aside in the `rejected` state, logged, and never retried.

Two answers stop the sender instead of being waited out, because only an operator can fix them: the service
refusing the agent's key (401/403), and a service that has not answered once within `answer_within_s` of the
start (a wrong URL or a service that is not running). The cases stay in the outbox either way.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pipelines.delivery import AgentRefusedError, CaseRejectedError, DeliveryError, OutgoingCase, OutgoingVerification
from pipelines.metrics import PipelineMetrics
from service.schemas import CasePosted, VerificationOutcome, VerificationPosted
from streetwatch.core import DraftCase, EvidenceImage

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    camera_id TEXT NOT NULL,
    case_json TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'rejected')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    queued_at TEXT NOT NULL,
    rejected_at TEXT
);
CREATE INDEX IF NOT EXISTS cases_by_state ON cases (state, attempts, seq);
CREATE TABLE IF NOT EXISTS evidence (
    case_seq INTEGER NOT NULL REFERENCES cases (seq) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (case_seq, position)
);
CREATE TABLE IF NOT EXISTS verifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    case_id INTEGER NOT NULL,
    camera_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    after_name TEXT NOT NULL,
    after_type TEXT NOT NULL,
    after BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'rejected')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    queued_at TEXT NOT NULL,
    rejected_at TEXT
);
CREATE INDEX IF NOT EXISTS verifications_by_state ON verifications (state, attempts, seq);
"""

#: The tables of what waits for delivery: draft cases, and the camera's verifications of handled cases.
_TABLES = ("cases", "verifications")


#: What the outbox holds: a draft case or a verification.
Outgoing = OutgoingCase | OutgoingVerification


@dataclass(frozen=True, slots=True)
class RejectedCase:
    """A case (or a verification, `case_json` then describing it) the service refused for good, kept for an
    operator to look at."""

    key: str
    camera_id: str
    case_json: str
    reason: str
    rejected_at: datetime


class Outbox:
    """Draft cases waiting for the case service, in a SQLite file (WAL, synchronous=FULL); safe across threads."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a case the pipeline was told is stored survives a power cut, not only a crash.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def put(self, case: OutgoingCase) -> bool:
        """Store a case durably; False if its key is already here (pending or rejected), which changes nothing."""
        with self._transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO cases (key, camera_id, case_json, queued_at) VALUES (?, ?, ?, ?)",
                (case.key, case.camera_id, case.case_json, self._clock().isoformat()),
            )
            if cur.rowcount == 0:
                return False
            db.executemany(
                "INSERT INTO evidence (case_seq, position, name, content_type, data) VALUES (?, ?, ?, ?, ?)",
                [(cur.lastrowid, i, e.name, e.content_type, e.data) for i, e in enumerate(case.evidence)],
            )
            return True

    def put_verification(self, verification: OutgoingVerification) -> bool:
        """Store a verification durably; False if its key is already here, which changes nothing."""
        v = verification
        with self._transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO verifications (key, case_id, camera_id, outcome, observed_at, after_name, "
                "after_type, after, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    v.key,
                    v.case_id,
                    v.camera_id,
                    v.outcome.value,
                    v.observed_at.isoformat(),
                    v.after.name,
                    v.after.content_type,
                    v.after.data,
                    self._clock().isoformat(),
                ),
            )
            return cur.rowcount == 1

    def next_pending(self) -> Outgoing | None:
        """What to send next, case or verification: fewest failed attempts first, then oldest, so one bad item
        cannot hold back the others."""
        with self._lock:
            case = self._db.execute(
                "SELECT seq, key, camera_id, case_json, attempts, queued_at FROM cases WHERE state = 'pending' "
                "ORDER BY attempts, seq LIMIT 1"
            ).fetchone()
            verification = self._db.execute(
                "SELECT key, case_id, camera_id, outcome, observed_at, after_name, after_type, after, attempts, "
                "queued_at FROM verifications WHERE state = 'pending' ORDER BY attempts, seq LIMIT 1"
            ).fetchone()
            if verification is not None and (case is None or verification[8:10] < case[4:6]):
                key, case_id, camera_id, outcome, observed_at, name, content_type, data = verification[:8]
                after = EvidenceImage(name, content_type, bytes(data))
                return OutgoingVerification(
                    key, case_id, camera_id, VerificationOutcome(outcome), datetime.fromisoformat(observed_at), after
                )
            if case is None:
                return None
            evidence = self._db.execute(
                "SELECT name, content_type, data FROM evidence WHERE case_seq = ? ORDER BY position", (case[0],)
            ).fetchall()
        return OutgoingCase(case[1], case[2], case[3], tuple(EvidenceImage(n, t, bytes(d)) for n, t, d in evidence))

    def acknowledge(self, key: str) -> None:
        """The service has the case or verification: forget it (a case's evidence goes with it)."""
        with self._transaction() as db:
            for table in _TABLES:
                db.execute(f"DELETE FROM {table} WHERE key = ?", (key,))

    def record_failure(self, key: str, error: str) -> None:
        """A delivery attempt failed in a way a retry may fix."""
        with self._transaction() as db:
            for table in _TABLES:
                db.execute(f"UPDATE {table} SET attempts = attempts + 1, last_error = ? WHERE key = ?", (error, key))

    def reject(self, key: str, reason: str) -> None:
        """The service refused the case or verification for good: keep it aside, never send it again."""
        with self._transaction() as db:
            for table in _TABLES:
                db.execute(
                    f"UPDATE {table} SET state = 'rejected', last_error = ?, rejected_at = ? WHERE key = ?",
                    (reason, self._clock().isoformat(), key),
                )

    def requeue(self, key: str | None = None) -> int:
        """Send refused cases and verifications again (one by key, or all): after the cause was fixed, e.g. a wrong
        service URL or model version. Returns how many went back to pending; their idempotency keys are unchanged."""
        with self._transaction() as db:
            moved = 0
            for table in _TABLES:
                cur = db.execute(
                    f"UPDATE {table} SET state = 'pending', attempts = 0, last_error = NULL, rejected_at = NULL "
                    "WHERE state = 'rejected' AND (? IS NULL OR key = ?)",
                    (key, key),
                )
                moved += int(cur.rowcount)
            return moved

    def pending_count(self) -> int:
        """How many cases and verifications wait for delivery."""
        with self._lock:
            counts = [
                self._db.execute(f"SELECT count(*) FROM {table} WHERE state = 'pending'").fetchone()[0]
                for table in _TABLES
            ]
        return int(sum(counts))

    def rejected(self) -> list[RejectedCase]:
        """The cases the service refused, oldest first, then the verifications it refused."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, camera_id, case_json, last_error, rejected_at FROM cases WHERE state = 'rejected' "
                "ORDER BY seq"
            ).fetchall()
            looks = self._db.execute(
                "SELECT key, camera_id, json_object('case_id', case_id, 'outcome', outcome, 'observed_at', "
                "observed_at), last_error, rejected_at FROM verifications WHERE state = 'rejected' ORDER BY seq"
            ).fetchall()
        return [RejectedCase(k, c, j, r, datetime.fromisoformat(at)) for k, c, j, r, at in rows + looks]


class CaseSink(Protocol):
    """Where the sender delivers to (the case service's client)."""

    def send(self, case: OutgoingCase) -> CasePosted:
        """Deliver once; raise CaseRejectedError (for good), AgentRefusedError (the key) or DeliveryError (try
        again later)."""
        ...

    def send_verification(self, verification: OutgoingVerification) -> VerificationPosted | None:
        """Deliver once, as `send`; None when the case no longer awaits it."""
        ...

    def ping(self) -> None:
        """Return when the service answers at all; raise DeliveryError when it does not."""
        ...


class OutboxSender:
    """A thread that drains the outbox into the case service, backing off exponentially while it fails.

    `submit` stores a draft case before it returns, so a case the pipeline raised is never only in memory.
    `close(flush_timeout_s)` keeps delivering until the outbox is empty or the time is up; what is left stays on
    disk for the next start. When the service refuses the key, or has not answered once within `answer_within_s`,
    the sender stops, records why in `failure` and calls `on_failure` (the agent stops its cameras then).
    """

    def __init__(
        self,
        outbox: Outbox,
        sink: CaseSink,
        *,
        metrics: PipelineMetrics,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 60.0,
        answer_within_s: float = float("inf"),
        on_failure: Callable[[], object] | None = None,
    ) -> None:
        self.outbox = outbox
        self._sink = sink
        self._metrics = metrics
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.answer_within_s = answer_within_s
        self.failure: DeliveryError | None = None
        """Why delivery stopped for good: AgentRefusedError (the key), or the last DeliveryError of a service
        that never answered."""
        self._on_failure = on_failure
        self._answered = False
        self._started = 0.0
        self._wake = threading.Event()  # a new case, or closing
        self._interrupt = threading.Event()  # closing: cut a backoff wait short
        self._closing = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)

    def start(self) -> None:
        """Start delivering, beginning with whatever an earlier run left in the outbox."""
        left = self.outbox.pending_count()
        self._metrics.outbox_depth.set(left)
        if left:
            log.info("outbox %s: %d cases from an earlier run will be sent again", self.outbox.path, left)
        self._started = time.monotonic()
        self._thread.start()

    def submit(self, draft: DraftCase) -> None:
        """Store a draft case in the outbox (durably) and wake the sender."""
        if self.outbox.put(OutgoingCase.of(draft)):
            self._metrics.outbox_depth.inc()
        self._wake.set()

    def submit_verification(self, verification: OutgoingVerification) -> None:
        """Store a verification in the outbox (durably) and wake the sender."""
        if self.outbox.put_verification(verification):
            self._metrics.outbox_depth.inc()
        self._wake.set()

    def close(self, flush_timeout_s: float) -> int:
        """Deliver what can be delivered within `flush_timeout_s`, then stop; returns how many cases are left.

        A service that did not answer once before the end counts as a failure, as it would have at
        `answer_within_s`.
        """
        self._deadline = time.monotonic() + flush_timeout_s
        self._closing.set()
        self._wake.set()
        self._interrupt.set()
        # A send in flight may take up to the client's own timeout to give up.
        self._thread.join(timeout=flush_timeout_s + 60)
        left = self.outbox.pending_count()
        if left and self.failure is None:
            log.warning(
                "outbox %s: %d cases not delivered yet; they are sent on the next start", self.outbox.path, left
            )
        return left

    def _run(self) -> None:
        delay = self.backoff_initial_s
        last_error: DeliveryError | None = None
        while not (self._closing.is_set() and time.monotonic() >= self._deadline):
            try:
                if self._closing.is_set() and self.outbox.pending_count() == 0:
                    break
                if not self._answered:
                    self._sink.ping()
                    self._answered = True
                case = self.outbox.next_pending()
                if case is None:
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                delivered = self._deliver(case)
            except AgentRefusedError as exc:
                self._fail(exc)
                return
            except DeliveryError as exc:  # only the ping raises it: the service has not answered yet
                last_error = exc
                if time.monotonic() - self._started >= self.answer_within_s:
                    self._fail(exc)
                    return
                log.warning("case service does not answer yet (%s); cases wait in the outbox", exc)
                delivered = False
            except sqlite3.Error:
                log.exception("outbox %s: could not be read or updated", self.outbox.path)
                delivered = False
            self._metrics.outbox_depth.set(self.outbox.pending_count())
            if delivered:
                delay = self.backoff_initial_s
                continue
            # New cases do not cut a backoff short (that would hammer a service that is down); closing does.
            until = self._deadline if self._answered else min(self._deadline, self._started + self.answer_within_s)
            self._interrupt.wait(max(0.0, min(delay, until - time.monotonic())))
            self._interrupt.clear()
            delay = min(2 * delay, self.backoff_max_s)
        if not self._answered and last_error is not None:
            self._fail(last_error)  # the run ended before the bound, without one answer

    def _fail(self, error: DeliveryError) -> None:
        self.failure = error
        log.error("outbox %s: delivery stopped: %s", self.outbox.path, error)
        if self._on_failure is not None:
            self._on_failure()

    def _deliver(self, item: Outgoing) -> bool:
        """Send one case or verification; False when the service could not take it now (the caller backs off)."""
        if isinstance(item, OutgoingVerification):
            return self._deliver_verification(item)
        case = item
        try:
            posted = self._sink.send(case)
        except CaseRejectedError as exc:
            self.outbox.reject(case.key, str(exc))
            self._metrics.cases_rejected.inc()
            log.error("camera %s: case %s rejected; kept aside in the outbox: %s", case.camera_id, case.key, exc)
            return True
        except AgentRefusedError as exc:
            self.outbox.record_failure(case.key, str(exc))
            raise
        except DeliveryError as exc:
            self.outbox.record_failure(case.key, str(exc))
            log.warning("camera %s: case %s not delivered yet (%s); will retry", case.camera_id, case.key, exc)
            return False
        self.outbox.acknowledge(case.key)
        self._metrics.cases_delivered.inc()
        log.info("camera %s: case %s %s: case #%d", case.camera_id, case.key, posted.outcome.value, posted.id)
        return True

    def _deliver_verification(self, verification: OutgoingVerification) -> bool:
        """Send one verification, as `_deliver` a case; a 409 (the case no longer awaits it) forgets it."""
        v = verification
        try:
            posted = self._sink.send_verification(v)
        except CaseRejectedError as exc:
            self.outbox.reject(v.key, str(exc))
            log.error(
                "camera %s: verification of case %d rejected; kept aside in the outbox: %s", v.camera_id, v.case_id, exc
            )
            return True
        except AgentRefusedError as exc:
            self.outbox.record_failure(v.key, str(exc))
            raise
        except DeliveryError as exc:
            self.outbox.record_failure(v.key, str(exc))
            log.warning(
                "camera %s: verification of case %d not delivered yet (%s); will retry", v.camera_id, v.case_id, exc
            )
            return False
        self.outbox.acknowledge(v.key)
        if posted is None:
            log.info(
                "camera %s: case %d no longer awaits the camera's look; verification dropped", v.camera_id, v.case_id
            )
        else:
            log.info(
                "camera %s: case %d verified %s: proposes %s",
                v.camera_id,
                v.case_id,
                v.outcome.value,
                posted.proposal.value,
            )
        return True

"""The case service's tables as SQLAlchemy 2 ORM classes; the migrations in `service/migrations` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from service.schemas import (
    CaseStatus,
    CaseType,
    EventKind,
    LoopAction,
    Priority,
    ReviewAction,
    Role,
    VerificationOutcome,
    VerificationProposal,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no zone, so it stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the case service stores only zone-aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _str_enum(cls: type[StrEnum]) -> Enum:
    # Stored as plain strings (no native enum type) so a new value needs no ALTER TYPE on PostgreSQL.
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    """Declarative base with constraint names Alembic can refer to."""

    metadata = MetaData(naming_convention=NAMING)


class ApiKey(Base):
    """An API key: only its SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(_str_enum(Role))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: The department a `department` key acts for (and the only cases it sees); None for every other role.
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), default=None)


class Case(Base):
    """A violation awaiting or past review; re-sightings of it are `Sighting` rows."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_scope", "camera_id", "zone_id", "type", "last_seen_at"),
        Index("ix_cases_detected_at_id", "detected_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[CaseStatus] = mapped_column(_str_enum(CaseStatus), index=True)
    camera_id: Mapped[str] = mapped_column(String(128))
    zone_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[CaseType] = mapped_column(_str_enum(CaseType))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    labels: Mapped[list[str]] = mapped_column(JSON)
    model_version: Mapped[str] = mapped_column(String(128))
    sightings: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The closed loop (docs/closed-loop.md). The grid comes from `grid_zones` when the case is made.
    priority: Mapped[Priority] = mapped_column(_str_enum(Priority), default=Priority.NORMAL)
    grid_id: Mapped[str | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"), index=True, default=None)
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), index=True, default=None)
    filed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: The latest dispatch; `deadline_at` is counted from it.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    handling_note: Mapped[str | None] = mapped_column(Text, default=None)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: What the camera proposes for a handled case; a reviewer's verify_pass or verify_fail decides.
    verification_proposal: Mapped[VerificationProposal | None] = mapped_column(
        _str_enum(VerificationProposal), default=None
    )
    verification_proposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    evidence: Mapped[list[Evidence]] = relationship(order_by="Evidence.id", lazy="selectin")
    reviews: Mapped[list[Review]] = relationship(order_by="Review.id", lazy="selectin")
    transitions: Mapped[list[CaseTransition]] = relationship(order_by="CaseTransition.id", lazy="selectin")

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """The box of the first sighting, [x1, y1, x2, y2] normalised."""
        return (self.x1, self.y1, self.x2, self.y2)


class Sighting(Base):
    """One accepted post: the first sighting of a case or a re-sighting merged into it."""

    __tablename__ = "sightings"
    # The unique index is what makes a replayed post idempotent across processes, not an in-memory check. A key
    # is unique per API key (`key_scope`): one agent's key never finds, or blocks, another agent's post.
    __table_args__ = (UniqueConstraint("key_scope", "idempotency_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    key_scope: Mapped[str] = mapped_column(String(32))  # see Principal.idempotency_scope; "" before 0002
    idempotency_key: Mapped[str] = mapped_column(String(200))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    merged: Mapped[bool] = mapped_column()
    posted_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Evidence(Base):
    """One evidence image of a case; the bytes live in the evidence store under `sha256`."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    #: None for an image that no sighting brought (a department's photo of its handling, the camera's "after").
    sighting_id: Mapped[int | None] = mapped_column(ForeignKey("sightings.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: What the image shows (`EvidenceRole`), named by the agent's part filename; None when it named none.
    role: Mapped[str | None] = mapped_column(String(16), default=None)


class Review(Base):
    """The audit record of a review decision."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    decision: Mapped[ReviewAction] = mapped_column(_str_enum(ReviewAction))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    reviewer: Mapped[str] = mapped_column(String(128))
    reviewer_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), default=None)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsoleSession(Base):
    """A reviewer's sign-in to the case console; the browser holds the token, the table only its SHA-256."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Every form of the session carries it; a cross-site page cannot read it.
    csrf_token: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Department(Base):
    """A department (处置单位) that handles the cases dispatched to it."""

    __tablename__ = "departments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))


class Grid(Base):
    """A grid (网格): the ground a set of camera zones covers."""

    __tablename__ = "grids"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))


class GridZone(Base):
    """A camera zone's grid: the key makes a zone belong to one grid at most."""

    __tablename__ = "grid_zones"

    camera_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    zone_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    grid_id: Mapped[str] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)


class GridDuty(Base):
    """The department responsible for one case type in one grid."""

    __tablename__ = "grid_duties"

    grid_id: Mapped[str] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True)
    type: Mapped[CaseType] = mapped_column(_str_enum(CaseType), primary_key=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), index=True)


class DeadlinePolicy(Base):
    """Hours from dispatch to the deadline of a case of one type and priority."""

    __tablename__ = "deadline_policies"

    type: Mapped[CaseType] = mapped_column(_str_enum(CaseType), primary_key=True)
    priority: Mapped[Priority] = mapped_column(_str_enum(Priority), primary_key=True)
    hours: Mapped[float] = mapped_column(Float)


class CaseTransition(Base):
    """The audit record of one loop action on a case."""

    __tablename__ = "case_transitions"
    # An action repeated with its Idempotency-Key (a department's system retrying its callback) finds this row.
    __table_args__ = (UniqueConstraint("key_scope", "idempotency_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    action: Mapped[LoopAction] = mapped_column(_str_enum(LoopAction))
    from_status: Mapped[CaseStatus] = mapped_column(_str_enum(CaseStatus))
    to_status: Mapped[CaseStatus] = mapped_column(_str_enum(CaseStatus))
    actor: Mapped[str] = mapped_column(String(128))
    #: None for the bootstrap key and for `system` (a dispatch by the grid map).
    actor_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    #: The case's department after the action (who it was dispatched to; None once returned).
    department_id: Mapped[str | None] = mapped_column(String(64), default=None)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_scope: Mapped[str | None] = mapped_column(String(32), default=None)  # see Principal.idempotency_scope
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)


class CaseEventRow(Base):
    """One entry of the durable case event log webhooks deliver from; `id` is the delivery order.

    Appends serialise on one lock held to commit (see `service.events`), so ids become visible in order: a reader
    that has seen id N never later finds a new row below N. `sqlite_autoincrement` keeps SQLite from reusing ids.
    """

    __tablename__ = "case_events"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[EventKind] = mapped_column(_str_enum(EventKind))
    #: The `CaseEvent` as JSON: what a receiver gets.
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Webhook(Base):
    """A receiver of the case event log, and where its delivery stands.

    The log is the queue: `cursor` is the id of the last event delivered (or skipped as a kind not wanted), so a
    receiver's backlog is the log past it, kept in order and across restarts without a row per event. A process
    delivers only while it holds the lease (`lease_token` until `lease_until`), taken and given back by
    conditional updates, so two processes never send the same event at once.
    """

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    #: The HMAC key of the signatures, kept as given: signing needs it (docs/closed-loop.md says how it is guarded).
    secret: Mapped[str] = mapped_column(String(256))
    #: `EventKind` values wanted; empty: all.
    kinds: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cursor: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    lease_token: Mapped[str | None] = mapped_column(String(32), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Verification(Base):
    """A camera's look at a handled case: what it saw, and the `after` image (an evidence row) it posted."""

    __tablename__ = "verifications"
    # As for sightings: a replayed post with the same Idempotency-Key finds this row and records nothing new.
    __table_args__ = (UniqueConstraint("key_scope", "idempotency_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    outcome: Mapped[VerificationOutcome] = mapped_column(_str_enum(VerificationOutcome))
    #: When the camera saw it (the frame's time), as opposed to `created_at`, when the service got the post.
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id", ondelete="CASCADE"))
    key_scope: Mapped[str] = mapped_column(String(32))  # see Principal.idempotency_scope
    idempotency_key: Mapped[str] = mapped_column(String(200))
    posted_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

"""The case wire schema shared by the case service and its clients; free of FastAPI, SQLAlchemy and torch."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)


class CaseType(StrEnum):
    """The four violation types an urban-management bureau handles."""

    STREET_VENDING = "street_vending"
    PILED_LITTER = "piled_litter"
    ILLEGAL_PARKING = "illegal_parking"
    UNPERMITTED_AD = "unpermitted_ad"


class CaseStatus(StrEnum):
    """Where a case stands: in review (draft, confirmed, rejected), then in the closed loop (docs/closed-loop.md)."""

    DRAFT = "draft"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    FILED = "filed"
    DISPATCHED = "dispatched"
    HANDLED = "handled"
    VERIFIED = "verified"
    CLOSED = "closed"


class Role(StrEnum):
    """What an API key may do: agents post cases, reviewers read and decide, dispatchers file, dispatch and close,
    departments handle the cases dispatched to them, admins do everything."""

    AGENT = "agent"
    REVIEWER = "reviewer"
    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    DEPARTMENT = "department"


class LoopAction(StrEnum):
    """A step of the closed loop after review (docs/closed-loop.md): 立案, 派遣, 退回, 处置, 核查, 结案."""

    FILE = "file"
    DISPATCH = "dispatch"
    RETURN = "return"
    HANDLE = "handle"
    VERIFY_PASS = "verify_pass"
    VERIFY_FAIL = "verify_fail"
    CLOSE = "close"


class Priority(StrEnum):
    """How urgent a filed case is; an urgent case gets the shorter deadline of its type's policy."""

    NORMAL = "normal"
    URGENT = "urgent"


class VerificationProposal(StrEnum):
    """What the camera proposes for a handled case: the violation is gone (passed) or still there (failed)."""

    PASSED = "passed"
    FAILED = "failed"


class EventKind(StrEnum):
    """The kind of an entry of the case event log (`case_events`), which webhooks deliver: one per transition."""

    CONFIRMED = "case.confirmed"
    REJECTED = "case.rejected"
    REOPENED = "case.reopened"
    FILED = "case.filed"
    DISPATCHED = "case.dispatched"
    RETURNED = "case.returned"
    HANDLED = "case.handled"
    VERIFIED = "case.verified"
    VERIFICATION_FAILED = "case.verification_failed"
    CLOSED = "case.closed"
    VERIFICATION_PROPOSED = "case.verification_proposed"


class Decision(StrEnum):
    """A reviewer's verdict on a draft case."""

    CONFIRM = "confirm"
    REJECT = "reject"

    @property
    def status(self) -> CaseStatus:
        """The status a case takes on this decision."""
        return CaseStatus.CONFIRMED if self is Decision.CONFIRM else CaseStatus.REJECTED


#: The event each loop action appends.
LOOP_EVENTS: dict[LoopAction, EventKind] = {
    LoopAction.FILE: EventKind.FILED,
    LoopAction.DISPATCH: EventKind.DISPATCHED,
    LoopAction.RETURN: EventKind.RETURNED,
    LoopAction.HANDLE: EventKind.HANDLED,
    LoopAction.VERIFY_PASS: EventKind.VERIFIED,
    LoopAction.VERIFY_FAIL: EventKind.VERIFICATION_FAILED,
    LoopAction.CLOSE: EventKind.CLOSED,
}


class ReviewAction(StrEnum):
    """An entry of a case's review audit trail: a decision, or `reopen`, which takes a decided case back to draft
    (a reviewer undoing their own decision in the case console)."""

    CONFIRM = "confirm"
    REJECT = "reject"
    REOPEN = "reopen"


class EvidenceRole(StrEnum):
    """What an evidence image shows, named by the filename of its part (`scene.jpg`, `scene-clean.jpg`, `crop.jpg`,
    `first-seen.jpg`, as the pipeline sends them). The clean scene is the scene with nothing drawn on it: training
    material for `export-reviewed`, not shown to reviewers beside the annotated scene. `handled` is the photo a
    department sends with its `handle` action; `after` is the camera's frame of a handled case's spot, posted with
    its verification (the "after" beside the scene's "before")."""

    SCENE = "scene"
    SCENE_CLEAN = "scene-clean"
    CROP = "crop"
    FIRST_SEEN = "first-seen"

    HANDLED = "handled"
    AFTER = "after"

    @classmethod
    def of_filename(cls, filename: str | None) -> EvidenceRole | None:
        """The role a part's filename names (its stem, case-insensitive), or None."""
        stem = (filename or "").rsplit("/", 1)[-1].split(".", 1)[0].lower()
        return next((role for role in cls if role.value == stem), None)


Unit = Annotated[float, Field(ge=0.0, le=1.0)]

#: Row ids are PostgreSQL `integer`s: a larger number names no row (and would overflow the query).
MAX_ID = 2**31 - 1
#: Before this a camera's clock was never set; past the end, date arithmetic overflows.
TIME_RANGE = (datetime(2000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC))


def in_time_range(value: datetime) -> datetime:
    """`value`, if it lies in TIME_RANGE; else ValueError (also for times whose UTC would overflow)."""
    try:
        inside = TIME_RANGE[0] <= value.astimezone(UTC) < TIME_RANGE[1]
    except OverflowError:  # its UTC falls outside what a datetime holds
        inside = False
    if not inside:
        raise ValueError(f"must lie between {TIME_RANGE[0]:%Y-%m-%d} and {TIME_RANGE[1]:%Y-%m-%d} (UTC)")
    return value


#: One line without control characters, as an ECMA and a Python regex: the OpenAPI document states the rule too.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


def printable(value: str) -> str:
    if not re.match(PRINTABLE, value):
        raise ValueError("must not hold control characters (NUL, tab, newline, ...)")
    return value


#: An ISO 8601 time with its zone, in a range the service can store and compute with.
Time = Annotated[AwareDatetime, AfterValidator(in_time_range)]
#: An id or name from a camera agent: one printable line.
Name = Annotated[
    str, Field(min_length=1, max_length=128, json_schema_extra={"pattern": PRINTABLE}), AfterValidator(printable)
]
#: The id of a department or grid, chosen by the admin who makes it (`sanitation-east`, `GZ-TH-001`).
Code = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
]
#: A free-text note of a loop action (a department's handling, a reviewer's reason).
Note = Annotated[str, Field(max_length=2000)]
#: A detected class name.
Label = Annotated[
    str, Field(min_length=1, max_length=64, json_schema_extra={"pattern": PRINTABLE}), AfterValidator(printable)
]
#: Most labels one case carries (a case is one object: its class names over a stay).
MAX_LABELS = 32
#: A box [x1, y1, x2, y2], normalised to the frame.
Box = tuple[float, float, float, float]


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes: how the service decides a re-sighting overlaps an open case, and
    how the pipeline decides a new track id is the same object at the same spot."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


class CaseIn(BaseModel):
    """The `case` part of `POST /api/v1/cases`: one violation as a camera agent saw it."""

    # Strict: a bbox of strings or `confidence: true` is a client bug to report, not to coerce.
    model_config = ConfigDict(extra="forbid", strict=True)

    camera_id: Name
    zone_id: Name
    type: CaseType
    first_seen_at: Time = Field(description="When the object was first seen (ISO 8601, with zone).")
    detected_at: Time = Field(
        description="When the rule fired (ISO 8601, with zone): not before first_seen_at, not in the future."
    )
    bbox: tuple[Unit, Unit, Unit, Unit] = Field(description="[x1, y1, x2, y2], normalised to the frame.")
    confidence: Unit
    labels: list[Label] = Field(
        default_factory=list, max_length=MAX_LABELS, description="Detected class names behind the case."
    )
    model_version: Name

    @field_validator("detected_at")
    @classmethod
    def _after_first_seen(cls, v: datetime, info: ValidationInfo) -> datetime:
        first = info.data.get("first_seen_at")
        if first is not None and v < first:
            raise ValueError(f"is before first_seen_at ({first.isoformat()})")
        return v

    @field_validator("bbox")
    @classmethod
    def _ordered(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        if v[2] <= v[0] or v[3] <= v[1]:
            raise ValueError("bbox must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1")
        return v


class EvidenceOut(BaseModel):
    """One evidence image of a case; `url` (relative to the service) returns its bytes."""

    index: int
    content_type: str
    size: int
    sha256: str
    url: str
    role: EvidenceRole | None = Field(
        default=None, description="scene, scene-clean, crop or first-seen; null when not named."
    )


class ReviewIn(BaseModel):
    """The body of `POST /api/v1/cases/{id}/review`."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision
    reason: str | None = Field(
        default=None, max_length=2000, validate_default=True, description="Why; required to reject."
    )

    @field_validator("reason")
    @classmethod
    def _reason_to_reject(cls, v: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("decision") is Decision.REJECT and not (v and v.strip()):
            raise ValueError("a reason is required to reject a case")
        if v is not None and "\x00" in v:
            raise ValueError("must not hold NUL characters")
        return v


class ReviewOut(BaseModel):
    """The audit record of one review decision: who decided what, when and why."""

    decision: ReviewAction
    reason: str | None
    reviewer: str
    decided_at: datetime


class TransitionOut(BaseModel):
    """The audit record of one loop action: who moved the case from which status to which, when and why."""

    action: LoopAction
    from_status: CaseStatus
    to_status: CaseStatus
    actor: str = Field(description="The acting key's name; `system` for a dispatch by the grid map.")
    note: str | None
    department_id: str | None = Field(description="The case's department after the action.")
    at: datetime


class CaseOut(BaseModel):
    """A case as the service returns it to reviewers."""

    id: int
    status: CaseStatus
    camera_id: str
    zone_id: str
    type: CaseType
    first_seen_at: datetime
    detected_at: datetime
    last_seen_at: datetime
    bbox: tuple[float, float, float, float]
    confidence: float
    labels: list[str]
    model_version: str
    evidence_count: int
    sightings: int
    created_at: datetime
    reviewed_at: datetime | None = None
    evidence: list[EvidenceOut] = Field(default_factory=list)
    reviews: list[ReviewOut] = Field(default_factory=list)
    priority: Priority = Priority.NORMAL
    grid_id: str | None = Field(default=None, description="The grid of the case's camera zone when it was made.")
    department_id: str | None = Field(default=None, description="The department it is dispatched to.")
    filed_at: datetime | None = None
    dispatched_at: datetime | None = Field(default=None, description="The latest dispatch.")
    deadline_at: datetime | None = Field(default=None, description="When the department must have handled it.")
    handled_at: datetime | None = None
    handling_note: str | None = None
    verified_at: datetime | None = None
    closed_at: datetime | None = None
    verification_proposal: VerificationProposal | None = Field(
        default=None, description="What the camera proposes for a handled case; a reviewer decides."
    )
    verification_proposed_at: datetime | None = None
    overdue: bool = Field(default=False, description="Dispatched, not handled, and past its deadline by now.")
    transitions: list[TransitionOut] = Field(default_factory=list, description="The loop's audit trail.")


class PostResult(StrEnum):
    """What a case post did."""

    CREATED = "created"
    MERGED = "merged"
    REPLAYED = "replayed"


class CasePosted(BaseModel):
    """The answer to an agent's case post: only what the agent needs, never the case's review state."""

    id: int = Field(description="The case the post was recorded in.")
    outcome: PostResult = Field(
        description="created: a new draft case (201); merged: a re-sighting folded into an open case (200); "
        "replayed: this agent posted the same Idempotency-Key before, nothing new was recorded (200)."
    )
    sightings: int = Field(description="How many sightings the case counts now.")


class CasePage(BaseModel):
    """One page of `GET /api/v1/cases`, newest first."""

    items: list[CaseOut]
    next_cursor: str | None = None


class VerificationOutcome(StrEnum):
    """What the camera saw at a handled case's spot: the violating object gone (absent) or still there (present)."""

    ABSENT = "absent"
    PRESENT = "present"

    @property
    def proposal(self) -> VerificationProposal:
        """What the outcome proposes to the reviewer: absent passes the check, present fails it."""
        return VerificationProposal.PASSED if self is VerificationOutcome.ABSENT else VerificationProposal.FAILED


class VerificationTask(BaseModel):
    """A handled case for the camera that found it to look at again: one item of `GET /api/v1/verifications`."""

    case_id: int
    camera_id: str
    zone_id: str
    type: CaseType
    bbox: tuple[float, float, float, float] = Field(
        description="The box of the case's first sighting, [x1, y1, x2, y2] normalised: where the object stood."
    )
    handled_at: datetime = Field(description="When the department reported it handled.")
    deadline_at: datetime | None = Field(
        description="The department's deadline: an object still there after it is posted as `present`."
    )


class VerificationPosted(BaseModel):
    """The answer to an agent's verification post."""

    case_id: int
    proposal: VerificationProposal = Field(description="What the case now proposes to its reviewer.")
    outcome: PostResult = Field(
        description="created (201), or replayed (200): this agent posted the same Idempotency-Key before."
    )


class KeyIn(BaseModel):
    """The body of `POST /api/v1/keys`."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    name: Name = Field(description="Who or what holds the key, for the audit trail.")
    department_id: Code | None = Field(
        default=None, description="The department a `department` key acts for; required for that role only."
    )


class KeyOut(BaseModel):
    """An API key as listed; the key itself is never shown again after creation."""

    id: int
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None
    department_id: str | None = None


class KeyCreated(KeyOut):
    """A new API key, with the secret shown this one time."""

    key: str


class ActionIn(BaseModel):
    """The body of `POST /api/v1/cases/{id}/actions/{action}`."""

    model_config = ConfigDict(extra="forbid")

    note: Note | None = Field(
        default=None, description="Why, or what was done; required to return, handle and fail a verification."
    )
    priority: Priority | None = Field(
        default=None, description="file and dispatch: the case's priority (normal when never set)."
    )
    department_id: Code | None = Field(
        default=None, description="dispatch: the department to send the case to; else the grid map's."
    )

    @field_validator("note")
    @classmethod
    def _no_nul(cls, v: str | None) -> str | None:
        if v is not None and "\x00" in v:
            raise ValueError("must not hold NUL characters")
        return v


class EventCase(BaseModel):
    """The case as an event leaves it."""

    id: int
    status: CaseStatus
    type: CaseType
    camera_id: str
    zone_id: str
    priority: Priority
    grid_id: str | None
    department_id: str | None
    deadline_at: datetime | None


class EventTransition(BaseModel):
    """The transition an event records: a review decision (confirm, reject, reopen) or a loop action."""

    action: str = Field(description="A ReviewAction, a LoopAction, or `propose` (the camera's verification).")
    from_status: CaseStatus
    to_status: CaseStatus
    actor: str
    note: str | None
    at: datetime


class CaseEvent(BaseModel):
    """One entry of the case event log, as stored in `case_events.payload` and delivered to webhook receivers.

    `event_id` is stable across redeliveries: a receiver drops an event id it has seen."""

    event_id: str
    kind: EventKind
    case: EventCase
    transition: EventTransition


class FieldError(BaseModel):
    """One invalid field of a request, e.g. `case.bbox` or `header.idempotency-key`."""

    field: str
    message: str


class Problem(BaseModel):
    """Every error response: `detail` names the problem; `errors` lists each invalid field; a 500 also carries
    the `request_id` that the service log names with the error."""

    detail: str
    errors: list[FieldError] = Field(default_factory=list)
    request_id: str | None = None

    def body(self) -> dict[str, object]:
        """The JSON body of the response (`request_id` only where there is one)."""
        return self.model_dump(exclude_none=True)

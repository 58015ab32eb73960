"""Reads and writes of cases, sightings, reviews and API keys; every function takes keyword arguments only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.auth import Principal, generate_key, hash_key
from service.db import begin_write
from service.events import append_event
from service.models import ApiKey, Case, Department, Evidence, GridZone, Review, Sighting
from service.schemas import CaseIn, CaseStatus, CaseType, Decision, EventKind, EvidenceRole, PostResult, Role, box_iou

#: Where a page of `list_cases` stopped: the last case's (detected_at, id).
Position = tuple[datetime, int]

_OPEN = (CaseStatus.DRAFT, CaseStatus.CONFIRMED)


@dataclass(frozen=True, slots=True)
class NewEvidence:
    """An evidence image already put in the store, to be recorded with a sighting."""

    sha256: str
    content_type: str
    size: int
    role: EvidenceRole | None = None


#: The idempotency scope of sightings posted before keys were scoped per API key: any agent's retry finds them.
LEGACY_SCOPE = ""


@dataclass(frozen=True, slots=True)
class PostOutcome:
    """What a case post did: created a case, merged into one, or replayed an earlier post with the same key."""

    case: Case
    result: PostResult
    dropped: tuple[str, ...] = ()  # digests of evidence this post took off the case (see post_case)


def case_scope(case: CaseIn) -> str:
    """The lock that posts which may merge into one case take: the same camera, zone and type."""
    return f"case-scope\0{case.camera_id}\0{case.zone_id}\0{case.type.value}"


class CaseNotFoundError(LookupError):
    """No case has this id."""


class LastAdminKeyError(Exception):
    """Revoking this key would leave no admin key: nobody could manage keys over the API any more."""

    def __init__(self, key_id: int) -> None:
        super().__init__(f"key {key_id} is the last admin key: create another admin key before revoking it")


class IdempotencyConflictError(Exception):
    """An Idempotency-Key already names a post of another violation: a replay must repeat the same case."""

    def __init__(self, key: str, fields: list[str]) -> None:
        self.fields = fields
        super().__init__(
            f"Idempotency-Key {key!r} was first used for another violation: {', '.join(fields)} differ; "
            "a retry must send the same case, a new violation needs a new key"
        )


class CaseNotDraftError(Exception):
    """Only a draft case can be reviewed."""

    def __init__(self, case_id: int, status: CaseStatus) -> None:
        self.case_id = case_id
        self.status = status
        super().__init__(f"case {case_id} is {status.value}; only a draft case can be reviewed")


def find_replay(
    *, session: Session, scope: str, idempotency_key: str, case: CaseIn, merge_iou: float
) -> PostOutcome | None:
    """The outcome of an earlier post of `case` with this key in `scope`, or None; in a transaction of its own.

    Raises:
        IdempotencyConflictError: the key was first used for another violation (see `_replay`).
    """
    with session.begin():
        return _replay(session, scope, idempotency_key, case, merge_iou)


def _replay(session: Session, scope: str, idempotency_key: str, posted: CaseIn, merge_iou: float) -> PostOutcome | None:
    """The earlier post with this key in `scope` (or from before keys were scoped), if `posted` is the same
    violation: same camera, zone and type, and a box that overlaps as a merge would need. Times, confidence and
    labels may differ: footage processed again (another run, another model) sends the same violation with other
    values under the same key."""
    found = session.scalars(
        select(Sighting).where(
            Sighting.idempotency_key == idempotency_key, Sighting.key_scope.in_((scope, LEGACY_SCOPE))
        )
    ).all()
    sighting = min(found, key=lambda s: s.key_scope == LEGACY_SCOPE, default=None)  # this agent's own first
    if sighting is None:
        return None
    case = session.get_one(Case, sighting.case_id)
    differ = [
        name
        for name, same in (
            ("camera_id", posted.camera_id == case.camera_id),
            ("zone_id", posted.zone_id == case.zone_id),
            ("type", posted.type == case.type),
            ("bbox", box_iou(posted.bbox, (sighting.x1, sighting.y1, sighting.x2, sighting.y2)) > merge_iou),
        )
        if not same
    ]
    if differ:
        raise IdempotencyConflictError(idempotency_key, differ)
    return PostOutcome(case=case, result=PostResult.REPLAYED)


def post_case(
    *,
    session: Session,
    case: CaseIn,
    scope: str,
    idempotency_key: str,
    evidence: Sequence[NewEvidence],
    posted_by: str,
    merge_iou: float,
    merge_window_s: float,
    keep_sightings: int,
    now: datetime,
) -> PostOutcome:
    """Record a sighting: a new draft case, a merge into an open overlapping case, or a replay of `idempotency_key`.

    Posts for the same camera, zone and type serialise on a database lock (`case_scope`), so concurrent posts of
    one violation from several processes still produce one case; the idempotency key, unique in its `scope`
    (the posting API key's), catches the rest. A key first used for another violation raises
    IdempotencyConflictError. The caller keeps the transaction short: nothing here waits but for the lock.
    A case keeps the images of its first sighting and of its latest `keep_sightings - 1`: a stall that stays
    all day merges a sighting every few minutes, and its case would otherwise grow without bound. Older
    re-sightings stay counted and in the sightings table; the outcome names the digests they held.
    """
    try:
        begin_write(session, lock_key=case_scope(case))
        previous = _replay(session, scope, idempotency_key, case, merge_iou)
        if previous is not None:
            session.commit()
            return previous
        target = _merge_target(session, case, merge_iou=merge_iou, window=timedelta(seconds=merge_window_s))
        merged = target is not None
        if target is None:
            grid_id = grid_of(session=session, camera_id=case.camera_id, zone_id=case.zone_id)
            target = _new_case(case, now=now, grid_id=grid_id)
            session.add(target)
            session.flush()
        else:
            target.sightings += 1
            target.first_seen_at = min(target.first_seen_at, case.first_seen_at)
            target.last_seen_at = max(target.last_seen_at, case.detected_at)
        sighting = _sighting(
            case, case_id=target.id, scope=scope, key=idempotency_key, merged=merged, by=posted_by, now=now
        )
        session.add(sighting)
        session.flush()
        for item in evidence:
            target.evidence.append(
                Evidence(
                    sighting_id=sighting.id,
                    sha256=item.sha256,
                    content_type=item.content_type,
                    size=item.size,
                    created_at=now,
                    role=None if item.role is None else item.role.value,
                )
            )
        session.flush()
        dropped = _drop_middle_evidence(session, target, keep_sightings) if merged else ()
        session.commit()
    except IdempotencyConflictError:
        session.rollback()
        raise
    except IntegrityError:
        # The same key raced in under another camera/zone/type lock; the first post stands.
        session.rollback()
        with session.begin():
            previous = _replay(session, scope, idempotency_key, case, merge_iou)
        if previous is None:
            raise
        return previous
    return PostOutcome(case=target, result=PostResult.MERGED if merged else PostResult.CREATED, dropped=dropped)


def _drop_middle_evidence(session: Session, case: Case, keep_sightings: int) -> tuple[str, ...]:
    """Delete the evidence rows of the sightings between the case's first and its latest `keep_sightings - 1`."""
    with_images = sorted({e.sighting_id for e in case.evidence if e.sighting_id is not None})
    middle = set(with_images[1 : max(1, len(with_images) - keep_sightings + 1)])
    gone = [e for e in case.evidence if e.sighting_id in middle]
    if not gone:
        return ()
    session.execute(delete(Evidence).where(Evidence.id.in_([e.id for e in gone])))
    session.expire(case, ["evidence"])
    return tuple(sorted({e.sha256 for e in gone}))


def unreferenced_evidence(*, session: Session, digests: Sequence[str]) -> list[str]:
    """Those of `digests` that no evidence row refers to any more (their bytes may go from the store)."""
    if not digests:
        return []
    with session.begin():
        used = set(session.scalars(select(Evidence.sha256).where(Evidence.sha256.in_(digests)).distinct()))
    return [d for d in digests if d not in used]


def _merge_target(session: Session, case: CaseIn, *, merge_iou: float, window: timedelta) -> Case | None:
    candidates = session.scalars(
        select(Case).where(
            Case.camera_id == case.camera_id,
            Case.zone_id == case.zone_id,
            Case.type == case.type,
            Case.status.in_(_OPEN),
            Case.last_seen_at >= case.detected_at - window,
            Case.first_seen_at <= case.detected_at + window,
        )
    ).all()
    scored = [(box_iou(c.bbox, case.bbox), c.id, c) for c in candidates]
    best = max((s for s in scored if s[0] > merge_iou), default=None, key=lambda s: (s[0], s[1]))
    return None if best is None else best[2]


def grid_of(*, session: Session, camera_id: str, zone_id: str) -> str | None:
    """The grid a camera zone belongs to, or None when it is in no grid."""
    return session.scalar(select(GridZone.grid_id).where(GridZone.camera_id == camera_id, GridZone.zone_id == zone_id))


def _new_case(case: CaseIn, *, now: datetime, grid_id: str | None) -> Case:
    x1, y1, x2, y2 = case.bbox
    return Case(
        status=CaseStatus.DRAFT,
        grid_id=grid_id,
        camera_id=case.camera_id,
        zone_id=case.zone_id,
        type=case.type,
        first_seen_at=case.first_seen_at,
        detected_at=case.detected_at,
        last_seen_at=case.detected_at,
        x1=x1,
        y1=y1,
        x2=x2,
        y2=y2,
        confidence=case.confidence,
        labels=list(case.labels),
        model_version=case.model_version,
        sightings=1,
        created_at=now,
        evidence=[],
        reviews=[],
        transitions=[],
    )


def _sighting(case: CaseIn, *, case_id: int, scope: str, key: str, merged: bool, by: str, now: datetime) -> Sighting:
    x1, y1, x2, y2 = case.bbox
    return Sighting(
        case_id=case_id,
        key_scope=scope,
        idempotency_key=key,
        first_seen_at=case.first_seen_at,
        detected_at=case.detected_at,
        x1=x1,
        y1=y1,
        x2=x2,
        y2=y2,
        confidence=case.confidence,
        merged=merged,
        posted_by=by,
        created_at=now,
    )


def list_cases(
    *,
    session: Session,
    status: CaseStatus | None = None,
    case_type: CaseType | None = None,
    camera_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    grid_id: str | None = None,
    department_id: str | None = None,
    overdue: bool | None = None,
    now: datetime | None = None,
    limit: int = 50,
    after: Position | None = None,
) -> tuple[list[Case], Position | None]:
    """Cases newest first (by `detected_at`, then id), and where the next page starts (None on the last page).

    `overdue` true keeps the cases dispatched, not handled, and past their deadline at `now`; false, the others.
    """
    query = select(Case)
    if grid_id is not None:
        query = query.where(Case.grid_id == grid_id)
    if department_id is not None:
        query = query.where(Case.department_id == department_id)
    if overdue is not None:
        if now is None:
            raise ValueError("overdue needs now")
        late = and_(Case.status == CaseStatus.DISPATCHED, Case.deadline_at < now)
        query = query.where(late if overdue else ~late)
    if status is not None:
        query = query.where(Case.status == status)
    if case_type is not None:
        query = query.where(Case.type == case_type)
    if camera_id is not None:
        query = query.where(Case.camera_id == camera_id)
    if since is not None:
        query = query.where(Case.detected_at >= since)
    if until is not None:
        query = query.where(Case.detected_at < until)
    if after is not None:
        at, case_id = after
        query = query.where(or_(Case.detected_at < at, and_(Case.detected_at == at, Case.id < case_id)))
    rows = list(session.scalars(query.order_by(Case.detected_at.desc(), Case.id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, (rows[-1].detected_at, rows[-1].id)


def reviewed_cases(*, session: Session, since: datetime, until: datetime | None = None) -> list[Case]:
    """Cases decided at or after `since` (and before `until`), oldest decision first: rejected ones, and confirmed
    ones wherever the closed loop has taken them since (filed, dispatched, ..., closed)."""
    query = select(Case).where(
        Case.status != CaseStatus.DRAFT,
        Case.reviewed_at.is_not(None),
        Case.reviewed_at >= since,
    )
    if until is not None:
        query = query.where(Case.reviewed_at < until)
    return list(session.scalars(query.order_by(Case.reviewed_at, Case.id)))


def get_case(*, session: Session, case_id: int) -> Case | None:
    """One case with its evidence and reviews."""
    return session.get(Case, case_id)


def review_case(
    *, session: Session, case_id: int, decision: Decision, reason: str | None, reviewer: Principal, now: datetime
) -> Case:
    """Confirm or reject a draft case and keep the audit record and its event; raises `CaseNotFoundError` or
    `CaseNotDraftError`.

    The status change is a conditional UPDATE, so of two reviewers deciding at once exactly one wins.
    """
    begin_write(session, lock_key=f"case\0{case_id}")
    changed = (
        session.connection()
        .execute(
            update(Case)
            .where(Case.id == case_id, Case.status == CaseStatus.DRAFT)
            .values(status=decision.status, reviewed_at=now)
        )
        .rowcount
    )
    if changed == 0:
        case = session.get(Case, case_id)
        session.rollback()
        if case is None:
            raise CaseNotFoundError(case_id)
        raise CaseNotDraftError(case_id, case.status)
    session.add(
        Review(
            case_id=case_id,
            decision=decision,
            reason=reason,
            reviewer=reviewer.name,
            reviewer_key_id=reviewer.key_id,
            decided_at=now,
        )
    )
    append_event(
        session,
        case=session.get_one(Case, case_id, populate_existing=True),
        kind=EventKind.CONFIRMED if decision is Decision.CONFIRM else EventKind.REJECTED,
        action=decision.value,
        from_status=CaseStatus.DRAFT,
        actor=reviewer.name,
        note=reason,
        now=now,
    )
    session.commit()
    return session.get_one(Case, case_id, populate_existing=True)


def count_cases(*, session: Session) -> list[tuple[CaseType, CaseStatus, int]]:
    """How many cases there are of each type and status."""
    rows = session.execute(select(Case.type, Case.status, func.count()).group_by(Case.type, Case.status))
    return [(t, s, n) for t, s, n in rows]


class KeyDepartmentError(ValueError):
    """A `department` key must name an existing department; no other role names one."""


def create_api_key(
    *, session: Session, role: Role, name: str, now: datetime, department_id: str | None = None
) -> tuple[ApiKey, str]:
    """A new stored key and its secret, which exists nowhere else afterwards.

    Raises:
        KeyDepartmentError: a department key without an existing department, or another role with one.
    """
    if (role is Role.DEPARTMENT) != (department_id is not None):
        needs = "a department key needs a department_id"
        raise KeyDepartmentError(needs if role is Role.DEPARTMENT else "only a department key names a department_id")
    secret = generate_key()
    key = ApiKey(name=name, role=role, key_hash=hash_key(secret), created_at=now, department_id=department_id)
    begin_write(session, lock_key="api-keys")
    if department_id is not None and session.get(Department, department_id) is None:
        session.rollback()
        raise KeyDepartmentError(f"no department {department_id!r}")
    session.add(key)
    session.commit()
    return key, secret


def find_active_key(*, session: Session, key_hash: str) -> ApiKey | None:
    """The unrevoked key with this hash."""
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))).first()


def list_api_keys(*, session: Session) -> list[ApiKey]:
    """Every key, oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(*, session: Session, key_id: int, now: datetime) -> ApiKey | None:
    """Revoke a key (kept for the audit trail); None if there is no such key.

    Raises:
        LastAdminKeyError: it is the only admin key still valid.
    """
    begin_write(session, lock_key="api-keys")
    key = session.get(ApiKey, key_id)
    if key is not None and key.revoked_at is None:
        if key.role is Role.ADMIN:
            admins = select(func.count()).where(ApiKey.role == Role.ADMIN, ApiKey.revoked_at.is_(None))
            if session.scalar(admins) == 1:
                session.rollback()
                raise LastAdminKeyError(key_id)
        key.revoked_at = now
    session.commit()
    return key

"""The console's reads of the queue and its undo; decisions themselves go through `crud.review_case`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from service.auth import Principal
from service.db import begin_write
from service.events import append_event
from service.models import Case, Review, Sighting
from service.schemas import CaseStatus, CaseType, EventKind, ReviewAction

#: The audit reason of a reopen that undid its reviewer's own decision.
UNDO_REASON = "undo"
#: The statuses a reopen takes back to draft: a decision, before the loop has moved the case on.
REOPENABLE: Final = (CaseStatus.CONFIRMED, CaseStatus.REJECTED)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Which draft cases the queue shows, and in which order (oldest detection first unless `newest_first`)."""

    case_type: CaseType | None = None
    camera_id: str | None = None
    zone_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    newest_first: bool = False


class NothingToUndoError(Exception):
    """This reviewer has no decision that is still the case's latest."""


class UndoWindowPassedError(Exception):
    """The decision is older than the undo window."""

    def __init__(self, case_id: int, window_s: float) -> None:
        self.case_id = case_id
        super().__init__(f"the decision on case {case_id} is more than {window_s:g} s old and can no longer be undone")


def _drafts(queue: QueueFilter, *, with_type: bool = True) -> Select[Case]:
    query = select(Case).where(Case.status == CaseStatus.DRAFT)
    if with_type and queue.case_type is not None:
        query = query.where(Case.type == queue.case_type)
    if queue.camera_id:
        query = query.where(Case.camera_id == queue.camera_id)
    if queue.zone_id:
        query = query.where(Case.zone_id == queue.zone_id)
    if queue.since is not None:
        query = query.where(Case.detected_at >= queue.since)
    if queue.until is not None:
        query = query.where(Case.detected_at < queue.until)
    return query


def queue_page(*, session: Session, queue: QueueFilter, limit: int) -> list[Case]:
    """The first `limit` draft cases of the queue."""
    order = (Case.detected_at.desc(), Case.id.desc()) if queue.newest_first else (Case.detected_at, Case.id)
    return list(session.scalars(_drafts(queue).order_by(*order).limit(limit)))


def type_counts(*, session: Session, queue: QueueFilter) -> dict[CaseType, int]:
    """Draft cases per type under the queue's other filters (every type, zero included)."""
    counts = dict.fromkeys(CaseType, 0)
    inner = _drafts(queue, with_type=False).subquery()
    for case_type, n in session.execute(select(inner.c.type, func.count()).group_by(inner.c.type)):
        counts[CaseType(case_type)] = n
    return counts


def neighbour(*, session: Session, queue: QueueFilter, case: Case, forward: bool) -> int | None:
    """The id of the draft case after (or before) `case` in the queue's order, or None."""
    later = forward != queue.newest_first
    at, case_id = case.detected_at, case.id
    if later:
        query = (
            _drafts(queue)
            .where(or_(Case.detected_at > at, and_(Case.detected_at == at, Case.id > case_id)))
            .order_by(Case.detected_at, Case.id)
        )
    else:
        query = (
            _drafts(queue)
            .where(or_(Case.detected_at < at, and_(Case.detected_at == at, Case.id < case_id)))
            .order_by(Case.detected_at.desc(), Case.id.desc())
        )
    found = session.scalars(query.limit(1)).first()
    return None if found is None else found.id


def first_in_queue(*, session: Session, queue: QueueFilter) -> int | None:
    """The id of the case the queue shows first, or None when it is empty."""
    page = queue_page(session=session, queue=queue, limit=1)
    return page[0].id if page else None


def case_sightings(*, session: Session, case_id: int) -> list[Sighting]:
    """Every sighting merged into a case, first first."""
    return list(session.scalars(select(Sighting).where(Sighting.case_id == case_id).order_by(Sighting.id)))


def last_decision(*, session: Session, reviewer: Principal) -> Review | None:
    """The reviewer's newest audit entry if it is a decision (not a reopen) and still its case's latest entry."""
    if reviewer.key_id is None:
        return None
    mine = session.scalars(
        select(Review).where(Review.reviewer_key_id == reviewer.key_id).order_by(Review.id.desc()).limit(1)
    ).first()
    if mine is None or mine.decision is ReviewAction.REOPEN:
        return None
    latest = session.scalar(select(func.max(Review.id)).where(Review.case_id == mine.case_id))
    return mine if latest == mine.id else None


class NotDecidedError(Exception):
    """Only a confirmed or rejected case can be reopened."""

    def __init__(self, case_id: int) -> None:
        self.case_id = case_id
        super().__init__(f"case {case_id} is not decided: only a confirmed or rejected case can be reopened")


def undo_last_decision(*, session: Session, reviewer: Principal, window_s: float, now: datetime) -> int:
    """Take the reviewer's last decision back: its case returns to draft, and a `reopen` entry joins the audit.

    Returns the case's id. Raises `NothingToUndoError`, or `UndoWindowPassedError` once `window_s` has passed.
    """
    with session.begin():
        found = last_decision(session=session, reviewer=reviewer)
        target = None if found is None else (found.id, found.case_id, found.decided_at)
    if target is None:
        raise NothingToUndoError("there is no decision of yours to undo")
    review_id, case_id, decided_at = target
    if now - decided_at > timedelta(seconds=window_s):
        raise UndoWindowPassedError(case_id, window_s)
    if not _reopen(session, case_id, by=reviewer, reason=UNDO_REASON, now=now, latest_review=review_id):
        raise NothingToUndoError(f"case {case_id} changed since your decision")
    return case_id


def reopen_case(*, session: Session, case_id: int, admin: Principal, reason: str, now: datetime) -> None:
    """An admin takes a decided case back to draft, with a reason in the audit trail; raises `NotDecidedError`."""
    if not _reopen(session, case_id, by=admin, reason=reason, now=now, latest_review=None):
        raise NotDecidedError(case_id)


def _reopen(
    session: Session, case_id: int, *, by: Principal, reason: str, now: datetime, latest_review: int | None
) -> bool:
    """Set a decided case back to draft and audit it; False (nothing written) when it is not decided, or when
    `latest_review` is given and is no longer the case's latest audit entry."""
    begin_write(session, lock_key=f"case\0{case_id}")
    latest = session.scalar(select(func.max(Review.id)).where(Review.case_id == case_id))
    before = session.scalar(select(Case.status).where(Case.id == case_id))
    changed = (
        session.connection()
        .execute(
            update(Case)
            .where(Case.id == case_id, Case.status.in_(REOPENABLE))
            .values(status=CaseStatus.DRAFT, reviewed_at=None)
        )
        .rowcount
    )
    if changed == 0 or (latest_review is not None and latest != latest_review):
        session.rollback()
        return False
    session.add(
        Review(
            case_id=case_id,
            decision=ReviewAction.REOPEN,
            reason=reason,
            reviewer=by.name,
            reviewer_key_id=by.key_id,
            decided_at=now,
        )
    )
    append_event(
        session,
        case=session.get_one(Case, case_id, populate_existing=True),
        kind=EventKind.REOPENED,
        action=ReviewAction.REOPEN.value,
        from_status=before or CaseStatus.CONFIRMED,
        actor=by.name,
        note=reason,
        now=now,
    )
    session.commit()
    return True

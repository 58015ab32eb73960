"""The case event log: every transition of a case appends one event, in the transaction that makes it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db import advisory_lock_id
from service.models import Case, CaseEventRow
from service.schemas import CaseEvent, CaseStatus, EventCase, EventKind, EventTransition

#: The lock every append takes and holds to commit: on PostgreSQL a sequence hands out ids in the order inserts
#: run, not the order they commit, and a webhook cursor past id N would skip an N-1 committed later.
EVENTS_LOCK = "case-events"


def append_event(
    session: Session,
    *,
    case: Case,
    kind: EventKind,
    action: str,
    from_status: CaseStatus,
    actor: str,
    note: str | None,
    now: datetime,
) -> CaseEventRow:
    """Append the event of a transition `case` has just taken (its columns already hold the new state).

    Call it last in a write transaction (`db.begin_write`), right before commit: it takes the event log's lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(advisory_lock_id(EVENTS_LOCK))))
    event = CaseEvent(
        event_id=str(uuid.uuid4()),
        kind=kind,
        case=EventCase(
            id=case.id,
            status=case.status,
            type=case.type,
            camera_id=case.camera_id,
            zone_id=case.zone_id,
            priority=case.priority,
            grid_id=case.grid_id,
            department_id=case.department_id,
            deadline_at=case.deadline_at,
        ),
        transition=EventTransition(
            action=action, from_status=from_status, to_status=case.status, actor=actor, note=note, at=now
        ),
    )
    row = CaseEventRow(
        event_id=event.event_id, case_id=case.id, kind=kind, payload=event.model_dump(mode="json"), created_at=now
    )
    session.add(row)
    return row


def case_events(*, session: Session, after: int = 0, limit: int = 100) -> list[CaseEventRow]:
    """Events with an id above `after`, in delivery order."""
    return list(
        session.scalars(select(CaseEventRow).where(CaseEventRow.id > after).order_by(CaseEventRow.id).limit(limit))
    )

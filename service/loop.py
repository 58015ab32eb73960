"""The closed loop after review (docs/closed-loop.md): which role may take which action from which status, and
the function that takes one, audited and logged as an event in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.auth import Principal
from service.crud import CaseNotFoundError, NewEvidence
from service.db import begin_write
from service.events import append_event
from service.models import Case, CaseTransition, DeadlinePolicy, Department, Evidence, GridDuty
from service.schemas import LOOP_EVENTS, CaseStatus, CaseType, EvidenceRole, LoopAction, Priority, Role

S, A, R = CaseStatus, LoopAction, Role


@dataclass(frozen=True, slots=True)
class Move:
    """Where an action takes a case, and who may take it."""

    to: CaseStatus
    roles: frozenset[Role]


_OWN = frozenset({R.DEPARTMENT, R.DISPATCHER, R.ADMIN})  # a department only on the cases dispatched to it

#: The state machine: (status, action) → move. Any pair not here is an illegal transition.
TRANSITIONS: Final[dict[tuple[CaseStatus, LoopAction], Move]] = {
    (S.CONFIRMED, A.FILE): Move(S.FILED, frozenset({R.REVIEWER, R.DISPATCHER, R.ADMIN})),
    (S.FILED, A.DISPATCH): Move(S.DISPATCHED, frozenset({R.DISPATCHER, R.ADMIN})),
    (S.DISPATCHED, A.RETURN): Move(S.FILED, _OWN),
    (S.DISPATCHED, A.HANDLE): Move(S.HANDLED, _OWN),
    (S.HANDLED, A.VERIFY_PASS): Move(S.VERIFIED, frozenset({R.REVIEWER, R.ADMIN})),
    (S.HANDLED, A.VERIFY_FAIL): Move(S.DISPATCHED, frozenset({R.REVIEWER, R.ADMIN})),
    (S.VERIFIED, A.CLOSE): Move(S.CLOSED, frozenset({R.DISPATCHER, R.ADMIN})),
}

#: The roles that may take an action from some status: any other role is refused before the case is looked at.
ACTION_ROLES: Final[dict[LoopAction, frozenset[Role]]] = {
    action: frozenset().union(*(m.roles for (_, a), m in TRANSITIONS.items() if a is action)) for action in A
}

#: Actions whose note is required: the department and the reviewer must say why, or what was done.
NOTE_REQUIRED: Final = frozenset({A.RETURN, A.HANDLE, A.VERIFY_FAIL})

#: Who a dispatch by the grid map is recorded as.
SYSTEM: Final = Principal(key_id=None, name="system", role=R.ADMIN)


def may_take(role: Role, action: LoopAction) -> bool:
    """Whether `role` may take `action` from some status."""
    return role in ACTION_ROLES[action]


class ActionForbiddenError(Exception):
    """The actor's role may not take this action at all (403)."""

    def __init__(self, action: LoopAction, role: Role) -> None:
        allowed = " or ".join(sorted(r.value for r in ACTION_ROLES[action]))
        super().__init__(f"this API key has role '{role.value}'; '{action.value}' needs {allowed}")


class IllegalTransitionError(Exception):
    """The case's status does not allow this action (409)."""

    def __init__(self, case_id: int, status: CaseStatus, action: LoopAction) -> None:
        self.case_id = case_id
        self.status = status
        self.action = action
        allowed = sorted(a.value for s, a in TRANSITIONS if s is status)
        can = f"it allows {', '.join(allowed)}" if allowed else "it allows no loop action"
        super().__init__(f"case {case_id} is {status.value}: '{action.value}' is not allowed from there ({can})")


class ActionKeyConflictError(Exception):
    """An Idempotency-Key already names another action or case (409): a retry must repeat the same action."""

    def __init__(self, key: str, case_id: int, action: LoopAction) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was first used for '{action.value}' on case {case_id}: "
            "a retry must repeat the same action on the same case, a new action needs a new key"
        )


class ActionInputError(ValueError):
    """The action lacks an input it needs, or names one that does not exist (422); `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def deadline_hours(*, session: Session, case_type: CaseType, priority: Priority) -> float:
    """Hours from dispatch to the deadline of a case of this type and priority.

    Raises:
        ActionInputError: no policy names the pair (an admin deleted it).
    """
    hours = session.scalar(
        select(DeadlinePolicy.hours).where(DeadlinePolicy.type == case_type, DeadlinePolicy.priority == priority)
    )
    if hours is None:
        raise ActionInputError(
            "priority", f"no deadline policy for {case_type.value} cases of priority {priority.value}"
        )
    return hours


def act(
    *,
    session: Session,
    case_id: int,
    action: LoopAction,
    actor: Principal,
    now: datetime,
    note: str | None = None,
    priority: Priority | None = None,
    department_id: str | None = None,
    idempotency_key: str | None = None,
    photo: NewEvidence | None = None,
) -> Case:
    """Take `action` on a case as `actor`; returns the case as it stands after (and after an automatic dispatch).

    With an `idempotency_key` (unique per API key), a repeat of an action already taken with that key changes
    nothing and returns the case as it stands: a department's system may retry its callback without a 409.
    `photo` (handle only), already in the evidence store, joins the case's evidence with the handling.

    The status change is a conditional UPDATE on the status the case was read in, under the case's write lock,
    so of two actors at once exactly one wins and the other gets IllegalTransitionError. The transition row and
    its event are written in the same transaction. `file` dispatches at once, as `system`, when the grid map
    names a department for the case's grid and type.

    Raises:
        ActionForbiddenError: the actor's role may never take the action.
        CaseNotFoundError: no such case, or (for a department key) not a case of its department.
        IllegalTransitionError: the case's status does not allow the action.
        ActionInputError: a required note is missing, or the department named does not exist.
        ActionKeyConflictError: the idempotency key was first used for another action or case.
    """
    if actor.role not in ACTION_ROLES[action]:
        raise ActionForbiddenError(action, actor.role)
    if action in NOTE_REQUIRED and not (note and note.strip()):
        raise ActionInputError("note", f"a note is required to {action.value.replace('_', ' ')} a case")
    if department_id is not None and action is not A.DISPATCH:
        raise ActionInputError("department_id", "only dispatch takes a department_id")
    if priority is not None and action not in (A.FILE, A.DISPATCH):
        raise ActionInputError("priority", "only file and dispatch take a priority")
    if photo is not None and action is not A.HANDLE:
        raise ActionInputError("photo", "only handle takes a photo")
    begin_write(session, lock_key=f"case\0{case_id}")
    try:
        if idempotency_key is not None and _replayed(session, actor, idempotency_key, case_id, action):
            session.commit()
            return session.get_one(Case, case_id, populate_existing=True)
        case = session.get(Case, case_id, populate_existing=True)
        theirs = actor.department_id is not None and case is not None and case.department_id == actor.department_id
        if case is None or (actor.role is R.DEPARTMENT and not theirs):
            raise CaseNotFoundError(case_id)
        taken = _step(session, case, action, actor, now, note=note, priority=priority, department_id=department_id)
        if idempotency_key is not None:
            taken.key_scope, taken.idempotency_key = actor.idempotency_scope, idempotency_key
        if photo is not None:
            session.add(
                Evidence(
                    case_id=case_id,
                    sighting_id=None,
                    sha256=photo.sha256,
                    content_type=photo.content_type,
                    size=photo.size,
                    created_at=now,
                    role=EvidenceRole.HANDLED.value,
                )
            )
        if action is A.FILE:
            duty = _duty(session, case)
            if duty is not None:
                _step(session, case, A.DISPATCH, SYSTEM, now, note=None, priority=None, department_id=duty)
        session.commit()
    except IntegrityError:
        session.rollback()
        if idempotency_key is None:
            raise
        # The same key raced in on another case, under that case's lock: the first action stands.
        with session.begin():
            _replayed(session, actor, idempotency_key, case_id, action)  # raises ActionKeyConflictError
        raise
    except Exception:
        session.rollback()
        raise
    return session.get_one(Case, case_id, populate_existing=True)


def _replayed(session: Session, actor: Principal, key: str, case_id: int, action: LoopAction) -> bool:
    """Whether `actor` took this action on this case with `key` before; ActionKeyConflictError for another one."""
    earlier = session.scalars(
        select(CaseTransition).where(
            CaseTransition.key_scope == actor.idempotency_scope, CaseTransition.idempotency_key == key
        )
    ).first()
    if earlier is None:
        return False
    if (earlier.case_id, earlier.action) != (case_id, action):
        raise ActionKeyConflictError(key, earlier.case_id, earlier.action)
    return True


def _duty(session: Session, case: Case) -> str | None:
    if case.grid_id is None:
        return None
    return session.scalar(
        select(GridDuty.department_id).where(GridDuty.grid_id == case.grid_id, GridDuty.type == case.type)
    )


def _step(
    session: Session,
    case: Case,
    action: LoopAction,
    actor: Principal,
    now: datetime,
    *,
    note: str | None,
    priority: Priority | None,
    department_id: str | None,
) -> CaseTransition:
    """Move `case` (read under its write lock) by one action and return its audit row; nothing is committed."""
    before = case.status
    move = TRANSITIONS.get((before, action))
    if move is None:
        raise IllegalTransitionError(case.id, before, action)
    if actor.role not in move.roles:
        raise ActionForbiddenError(action, actor.role)
    values = _values(session, case, action, now, note=note, priority=priority, department_id=department_id)
    changed = (
        session.connection()
        .execute(
            update(Case)
            .where(Case.id == case.id, Case.status == before)
            .values(status=move.to, **values)
            .execution_options(synchronize_session=False)
        )
        .rowcount
    )
    if changed == 0:  # another writer moved it between our read and this update
        raise IllegalTransitionError(case.id, session.get_one(Case, case.id, populate_existing=True).status, action)
    session.refresh(case)
    transition = CaseTransition(
        case_id=case.id,
        action=action,
        from_status=before,
        to_status=move.to,
        actor=actor.name,
        actor_key_id=actor.key_id,
        note=note,
        department_id=case.department_id,
        at=now,
    )
    session.add(transition)
    append_event(
        session,
        case=case,
        kind=LOOP_EVENTS[action],
        action=action.value,
        from_status=before,
        actor=actor.name,
        note=note,
        now=now,
    )
    session.flush()
    return transition


def _values(
    session: Session,
    case: Case,
    action: LoopAction,
    now: datetime,
    *,
    note: str | None,
    priority: Priority | None,
    department_id: str | None,
) -> dict[str, Any]:
    """The columns besides `status` that `action` sets."""
    if action is A.FILE:
        return {"filed_at": now, "priority": priority or case.priority}
    if action is A.DISPATCH:
        target = department_id or _duty(session, case)
        if target is None:
            raise ActionInputError(
                "department_id", f"case {case.id} has no department by the grid map: name a department_id"
            )
        if session.get(Department, target) is None:
            raise ActionInputError("department_id", f"no department {target!r}")
        level = priority or case.priority
        return {"department_id": target, "priority": level, "dispatched_at": now} | _deadline(session, case, level, now)
    if action is A.RETURN:
        return {"department_id": None, "dispatched_at": None, "deadline_at": None}
    if action is A.HANDLE:
        return {"handled_at": now, "handling_note": note}
    if action is A.VERIFY_PASS:
        return {"verified_at": now}
    if action is A.VERIFY_FAIL:
        # Back to the department, with a fresh deadline; the camera's next look makes a new proposal.
        return {
            "dispatched_at": now,
            "handled_at": None,
            "verification_proposal": None,
            "verification_proposed_at": None,
        } | _deadline(session, case, case.priority, now)
    return {"closed_at": now}


def _deadline(session: Session, case: Case, priority: Priority, now: datetime) -> dict[str, Any]:
    hours = deadline_hours(session=session, case_type=case.type, priority=priority)
    return {"deadline_at": now + timedelta(hours=hours)}

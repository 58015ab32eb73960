"""The closed-loop state machine on the database: every (status, action) pair for every role, the grid map's
automatic dispatch, deadlines, the audit trail and event log, and two actors at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from case_helpers import T0, case_body
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service import crud, grids, loop
from service.admin import open_database
from service.auth import Principal
from service.console.decisions import reopen_case
from service.models import Case, CaseEventRow, CaseTransition
from service.schemas import LOOP_EVENTS, CaseIn, CaseStatus, CaseType, Decision, LoopAction, Priority, Role
from service.settings import ServiceSettings

S, A, R = CaseStatus, LoopAction, Role
NOW = T0 + timedelta(days=30)
EAST, WEST = "sanitation-east", "sanitation-west"
GRID = "GZ-TH-001"
CAMERA, ZONE = "cam-curb-01", "near-curb"  # case_body's

#: The contract of docs/closed-loop.md, written out here rather than read from the code under test.
LEGAL: dict[tuple[CaseStatus, LoopAction], tuple[CaseStatus, set[Role]]] = {
    (S.CONFIRMED, A.FILE): (S.FILED, {R.REVIEWER, R.DISPATCHER, R.ADMIN}),
    (S.FILED, A.DISPATCH): (S.DISPATCHED, {R.DISPATCHER, R.ADMIN}),
    (S.DISPATCHED, A.RETURN): (S.FILED, {R.DEPARTMENT, R.DISPATCHER, R.ADMIN}),
    (S.DISPATCHED, A.HANDLE): (S.HANDLED, {R.DEPARTMENT, R.DISPATCHER, R.ADMIN}),
    (S.HANDLED, A.VERIFY_PASS): (S.VERIFIED, {R.REVIEWER, R.ADMIN}),
    (S.HANDLED, A.VERIFY_FAIL): (S.DISPATCHED, {R.REVIEWER, R.ADMIN}),
    (S.VERIFIED, A.CLOSE): (S.CLOSED, {R.DISPATCHER, R.ADMIN}),
}
#: The roles that may take each action from the one status that allows it.
MAY = {action: roles for (_, action), (_, roles) in LEGAL.items()}
#: The actions that take a case from draft to each status, as an admin would.
PATH = {
    S.DRAFT: [],
    S.CONFIRMED: ["confirm"],
    S.REJECTED: ["reject"],
    S.FILED: ["confirm", A.FILE],
    S.DISPATCHED: ["confirm", A.FILE, A.DISPATCH],
    S.HANDLED: ["confirm", A.FILE, A.DISPATCH, A.HANDLE],
    S.VERIFIED: ["confirm", A.FILE, A.DISPATCH, A.HANDLE, A.VERIFY_PASS],
    S.CLOSED: ["confirm", A.FILE, A.DISPATCH, A.HANDLE, A.VERIFY_PASS, A.CLOSE],
}
ADMIN = Principal(key_id=None, name="admin", role=R.ADMIN)


def actor(role: Role, department: str = EAST) -> Principal:
    """A key holder of `role`; a department key acts for `department`."""
    return Principal(
        key_id=None, name=f"{role.value}-1", role=role, department_id=department if role is R.DEPARTMENT else None
    )


def inputs(action: LoopAction | str) -> dict[str, Any]:
    """What a person would send with `action`: a note where one is required, a department to dispatch to."""
    if action is A.DISPATCH:
        return {"department_id": EAST}
    if action in (A.RETURN, A.HANDLE, A.VERIFY_FAIL):
        return {"note": f"{action} note"}
    return {}


class Loop:
    """The test database with the grid map of these tests: two departments, one grid holding the test zone."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.posted = 0
        with sessions() as s:
            grids.create_department(session=s, department_id=EAST, name="Sanitation East")
            grids.create_department(session=s, department_id=WEST, name="Sanitation West")
            grids.create_grid(session=s, grid_id=GRID, name="Tianhe 001")
            grids.add_grid_zone(session=s, camera_id=CAMERA, zone_id=ZONE, grid_id=GRID)

    def new_case(self, **overrides: Any) -> int:
        """A new draft case (an hour after the previous one, so that none merges into another)."""
        self.posted += 1
        body = CaseIn.model_validate_json(json.dumps(case_body(detected_after_s=3600 * self.posted, **overrides)))
        with self.sessions() as s:
            outcome = crud.post_case(
                session=s,
                case=body,
                scope="test",
                idempotency_key=f"v{self.posted}",
                evidence=[],
                posted_by="agent",
                merge_iou=0.5,
                merge_window_s=60,
                keep_sightings=3,
                now=NOW,
            )
        return outcome.case.id

    def case_at(self, status: CaseStatus) -> int:
        """A new case brought to `status` along the legal path, by an admin."""
        case_id = self.new_case()
        for step in PATH[status]:
            if isinstance(step, LoopAction):
                self.act(case_id, step, ADMIN, **inputs(step))
            else:
                with self.sessions() as s:
                    reason = None if step == "confirm" else "not a violation"
                    crud.review_case(
                        session=s, case_id=case_id, decision=Decision(step), reason=reason, reviewer=ADMIN, now=NOW
                    )
        return case_id

    def act(self, case_id: int, action: LoopAction, who: Principal, **kwargs: Any) -> Case:
        with self.sessions() as s:
            return loop.act(session=s, case_id=case_id, action=action, actor=who, now=NOW, **kwargs)

    def case(self, case_id: int) -> Case:
        with self.sessions() as s:
            case = s.get_one(Case, case_id)
            s.expunge(case)
            return case

    def trail(self, case_id: int) -> list[tuple[str, str, str, str]]:
        """The case's transitions: (action, from, to, actor)."""
        with self.sessions() as s:
            rows = s.scalars(
                select(CaseTransition).where(CaseTransition.case_id == case_id).order_by(CaseTransition.id)
            )
            return [(t.action.value, t.from_status.value, t.to_status.value, t.actor) for t in rows]

    def events(self, case_id: int) -> list[dict[str, Any]]:
        """The case's event payloads, in log order."""
        with self.sessions() as s:
            rows = s.scalars(select(CaseEventRow).where(CaseEventRow.case_id == case_id).order_by(CaseEventRow.id))
            return [r.payload for r in rows]


@pytest.fixture
def db(settings: ServiceSettings) -> Iterator[Loop]:
    with open_database(settings) as sessions:
        yield Loop(sessions)


@pytest.mark.parametrize("status", list(CaseStatus))
def test_every_action_by_every_role_from_each_status(db: Loop, status: CaseStatus) -> None:
    wrong = []
    for action in LoopAction:
        for role in Role:
            case_id = db.case_at(status)
            before = (db.case(case_id).status, len(db.trail(case_id)), len(db.events(case_id)))
            legal = LEGAL.get((status, action))
            owns = db.case(case_id).department_id == EAST  # the department key's own case
            if role not in MAY[action]:
                expected: object = loop.ActionForbiddenError
            elif role is R.DEPARTMENT and not owns:
                expected = crud.CaseNotFoundError  # a department does not see the cases of others
            elif legal is None:
                expected = loop.IllegalTransitionError
            else:
                expected = legal[0]
            try:
                got: object = db.act(case_id, action, actor(role), **inputs(action)).status
            except (loop.ActionForbiddenError, crud.CaseNotFoundError, loop.IllegalTransitionError) as exc:
                got = type(exc)
            after = (db.case(case_id).status, len(db.trail(case_id)), len(db.events(case_id)))
            if isinstance(expected, CaseStatus):
                audited = after[1:] == (before[1] + 1, before[2] + 1) and db.trail(case_id)[-1] == (
                    action.value,
                    status.value,
                    expected.value,
                    actor(role).name,
                )
                if got != expected or after[0] != expected or not audited:
                    wrong.append((action.value, role.value, got, after))
            elif got is not expected or after != before:
                wrong.append((action.value, role.value, got, after))
    assert wrong == []


def test_the_full_loop_is_audited_and_logged_in_order(db: Loop) -> None:
    case_id = db.case_at(S.CLOSED)
    case = db.case(case_id)
    assert (case.status, case.department_id, case.grid_id) == (S.CLOSED, EAST, GRID)
    assert all(t == NOW for t in (case.filed_at, case.dispatched_at, case.handled_at, case.verified_at, case.closed_at))
    assert case.handling_note == "handle note"
    assert [t[:3] for t in db.trail(case_id)] == [
        ("file", "confirmed", "filed"),
        ("dispatch", "filed", "dispatched"),
        ("handle", "dispatched", "handled"),
        ("verify_pass", "handled", "verified"),
        ("close", "verified", "closed"),
    ]
    events = db.events(case_id)
    assert [e["kind"] for e in events] == [
        "case.confirmed",
        "case.filed",
        "case.dispatched",
        "case.handled",
        "case.verified",
        "case.closed",
    ]
    assert len({e["event_id"] for e in events}) == len(events)
    closed = events[-1]
    assert closed["case"] | {"deadline_at": None} == {
        "id": case_id,
        "status": "closed",
        "type": "illegal_parking",
        "camera_id": CAMERA,
        "zone_id": ZONE,
        "priority": "normal",
        "grid_id": GRID,
        "department_id": EAST,
        "deadline_at": None,
    }
    assert closed["transition"]["from_status"] == "verified" and closed["transition"]["actor"] == "admin"


@pytest.mark.parametrize(
    ("case_type", "priority", "hours"),
    [
        (CaseType.ILLEGAL_PARKING, Priority.NORMAL, 2),
        (CaseType.ILLEGAL_PARKING, Priority.URGENT, 1),
        (CaseType.STREET_VENDING, Priority.NORMAL, 4),
        (CaseType.PILED_LITTER, Priority.URGENT, 12),
        (CaseType.UNPERMITTED_AD, Priority.NORMAL, 72),
    ],
)
def test_dispatch_sets_the_deadline_of_the_type_and_priority(
    db: Loop, case_type: CaseType, priority: Priority, hours: float
) -> None:
    case_id = db.new_case(type=case_type.value)
    with db.sessions() as s:
        crud.review_case(session=s, case_id=case_id, decision=Decision.CONFIRM, reason=None, reviewer=ADMIN, now=NOW)
    db.act(case_id, A.FILE, actor(R.REVIEWER), priority=priority)
    case = db.act(case_id, A.DISPATCH, actor(R.DISPATCHER), department_id=WEST)
    assert (case.department_id, case.priority, case.deadline_at) == (WEST, priority, NOW + timedelta(hours=hours))


def test_an_admin_changes_a_deadline_policy_for_later_dispatches(db: Loop) -> None:
    with db.sessions() as s:
        grids.set_deadline_policy(session=s, case_type=CaseType.ILLEGAL_PARKING, priority=Priority.NORMAL, hours=0.5)
    case = db.case(db.case_at(S.DISPATCHED))
    assert case.deadline_at == NOW + timedelta(minutes=30)


def test_filing_dispatches_by_the_grid_map_as_system(db: Loop) -> None:
    with db.sessions() as s:
        grids.set_grid_duty(session=s, grid_id=GRID, case_type=CaseType.ILLEGAL_PARKING, department_id=WEST)
    case_id = db.case_at(S.CONFIRMED)
    case = db.act(case_id, A.FILE, actor(R.REVIEWER), priority=Priority.URGENT)
    assert (case.status, case.department_id, case.deadline_at) == (S.DISPATCHED, WEST, NOW + timedelta(hours=1))
    assert db.trail(case_id) == [
        ("file", "confirmed", "filed", "reviewer-1"),
        ("dispatch", "filed", "dispatched", "system"),
    ]
    assert [e["kind"] for e in db.events(case_id)][-2:] == ["case.filed", "case.dispatched"]
    # The grid map's department handles it with its own key; another department's key does not find it.
    with pytest.raises(crud.CaseNotFoundError):
        db.act(case_id, A.HANDLE, actor(R.DEPARTMENT, EAST), note="cleared")
    assert db.act(case_id, A.HANDLE, actor(R.DEPARTMENT, WEST), note="cleared").status is S.HANDLED


def test_a_duty_for_another_type_does_not_dispatch(db: Loop) -> None:
    with db.sessions() as s:
        grids.set_grid_duty(session=s, grid_id=GRID, case_type=CaseType.STREET_VENDING, department_id=WEST)
    assert db.case(db.case_at(S.FILED)).status is S.FILED


def test_a_case_in_no_grid_stays_filed_until_dispatched_by_hand(db: Loop) -> None:
    with db.sessions() as s:
        grids.set_grid_duty(session=s, grid_id=GRID, case_type=CaseType.ILLEGAL_PARKING, department_id=WEST)
    case_id = db.new_case(zone_id="other-zone")
    assert db.case(case_id).grid_id is None
    with db.sessions() as s:
        crud.review_case(session=s, case_id=case_id, decision=Decision.CONFIRM, reason=None, reviewer=ADMIN, now=NOW)
    assert db.act(case_id, A.FILE, actor(R.DISPATCHER)).status is S.FILED
    with pytest.raises(loop.ActionInputError, match="no department by the grid map") as exc:
        db.act(case_id, A.DISPATCH, actor(R.DISPATCHER))
    assert exc.value.field == "department_id"
    with pytest.raises(loop.ActionInputError, match="no department 'nobody'"):
        db.act(case_id, A.DISPATCH, actor(R.DISPATCHER), department_id="nobody")
    assert db.case(case_id).status is S.FILED
    assert db.act(case_id, A.DISPATCH, actor(R.DISPATCHER), department_id=EAST).department_id == EAST


@pytest.mark.parametrize("action", [A.RETURN, A.HANDLE, A.VERIFY_FAIL])
@pytest.mark.parametrize("note", [None, "", "   "])
def test_a_note_is_required_to_return_handle_or_fail(db: Loop, action: LoopAction, note: str | None) -> None:
    case_id = db.case_at(S.HANDLED if action is A.VERIFY_FAIL else S.DISPATCHED)
    before = db.case(case_id).status
    with pytest.raises(loop.ActionInputError, match="a note is required") as exc:
        db.act(case_id, action, ADMIN, note=note)
    assert exc.value.field == "note"
    assert db.case(case_id).status is before


def test_inputs_an_action_does_not_take_are_refused(db: Loop) -> None:
    case_id = db.case_at(S.DISPATCHED)
    with pytest.raises(loop.ActionInputError, match="only dispatch takes a department_id"):
        db.act(case_id, A.HANDLE, ADMIN, note="done", department_id=WEST)
    with pytest.raises(loop.ActionInputError, match="only file and dispatch take a priority"):
        db.act(case_id, A.HANDLE, ADMIN, note="done", priority=Priority.URGENT)
    assert db.case(case_id).status is S.DISPATCHED


def test_a_failed_verification_goes_back_with_a_fresh_deadline(db: Loop) -> None:
    case_id = db.case_at(S.HANDLED)
    later = NOW + timedelta(hours=5)
    with db.sessions() as s:
        case = loop.act(
            session=s, case_id=case_id, action=A.VERIFY_FAIL, actor=actor(R.REVIEWER), note="still there", now=later
        )
    assert (case.status, case.department_id, case.handled_at) == (S.DISPATCHED, EAST, None)
    assert (case.dispatched_at, case.deadline_at) == (later, later + timedelta(hours=2))
    assert db.events(case_id)[-1]["kind"] == "case.verification_failed"
    assert db.act(case_id, A.HANDLE, actor(R.DEPARTMENT), note="towed").status is S.HANDLED


def test_a_returned_case_leaves_the_department(db: Loop) -> None:
    case_id = db.case_at(S.DISPATCHED)
    case = db.act(case_id, A.RETURN, actor(R.DEPARTMENT), note="not our street")
    assert (case.status, case.department_id, case.deadline_at) == (S.FILED, None, None)
    with pytest.raises(crud.CaseNotFoundError):
        db.act(case_id, A.HANDLE, actor(R.DEPARTMENT), note="late")
    assert db.act(case_id, A.DISPATCH, actor(R.DISPATCHER), department_id=WEST).department_id == WEST


def test_review_decisions_and_reopen_are_events(db: Loop) -> None:
    case_id = db.new_case()
    with db.sessions() as s:
        crud.review_case(
            session=s, case_id=case_id, decision=Decision.REJECT, reason="a shadow", reviewer=ADMIN, now=NOW
        )
    with db.sessions() as s:
        reopen_case(session=s, case_id=case_id, admin=ADMIN, reason="it is a car", now=NOW)
    events = db.events(case_id)
    assert [(e["kind"], e["transition"]["from_status"], e["transition"]["to_status"]) for e in events] == [
        ("case.rejected", "draft", "rejected"),
        ("case.reopened", "rejected", "draft"),
    ]
    assert [e["transition"]["note"] for e in events] == ["a shadow", "it is a car"]


def test_a_case_takes_its_grid_when_it_is_made(db: Loop) -> None:
    assert db.case(db.new_case()).grid_id == GRID
    assert db.case(db.new_case(zone_id="sidewalk")).grid_id is None
    assert db.case(db.new_case(camera_id="cam-other")).grid_id is None


def test_a_department_key_names_an_existing_department(db: Loop) -> None:
    with db.sessions() as s:
        with pytest.raises(crud.KeyDepartmentError, match="needs a department_id"):
            crud.create_api_key(session=s, role=R.DEPARTMENT, name="d", now=NOW)
        with pytest.raises(crud.KeyDepartmentError, match="no department 'nobody'"):
            crud.create_api_key(session=s, role=R.DEPARTMENT, name="d", now=NOW, department_id="nobody")
        with pytest.raises(crud.KeyDepartmentError, match="only a department key"):
            crud.create_api_key(session=s, role=R.REVIEWER, name="r", now=NOW, department_id=EAST)
        key, _secret = crud.create_api_key(session=s, role=R.DEPARTMENT, name="d", now=NOW, department_id=EAST)
        assert key.department_id == EAST


@pytest.mark.parametrize(
    ("status", "action", "first", "second"),
    [
        (S.FILED, A.DISPATCH, {"department_id": EAST}, {"department_id": WEST}),
        (S.HANDLED, A.VERIFY_PASS, {}, {}),
        (S.DISPATCHED, A.HANDLE, {"note": "done"}, {"note": "done too"}),
    ],
    ids=["two dispatchers", "two reviewers", "two handlers"],
)
def test_two_actors_at_once_exactly_one_wins(
    db: Loop, status: CaseStatus, action: LoopAction, first: dict[str, Any], second: dict[str, Any]
) -> None:
    for _ in range(3):
        case_id = db.case_at(status)
        barrier = threading.Barrier(2)
        outcomes: list[object] = []

        def go(kwargs: dict[str, Any], case_id: int, barrier: threading.Barrier, outcomes: list[object]) -> None:
            barrier.wait()
            try:
                outcomes.append(db.act(case_id, action, ADMIN, **kwargs).status)
            except loop.IllegalTransitionError as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=go, args=(kwargs, case_id, barrier, outcomes)) for kwargs in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(outcomes) == 2
        assert sum(isinstance(o, loop.IllegalTransitionError) for o in outcomes) == 1, outcomes
        assert [t[0] for t in db.trail(case_id)].count(action.value) == 1
        kinds = [e["kind"] for e in db.events(case_id)]
        assert kinds.count(LOOP_EVENTS[action].value) == 1

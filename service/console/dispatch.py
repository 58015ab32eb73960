"""The dispatch view: dispatchers and admins file confirmed cases, dispatch them by hand and close verified ones,
through `service.loop`, and see what is overdue."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from service import crud, loop
from service.console.i18n import translator
from service.console.sessions import SignedIn
from service.console.web import (
    PREFIX,
    SECURITY_HEADERS,
    DataUserDep,
    PageUserDep,
    check_csrf,
    language,
    render,
    require_dispatcher,
)
from service.deps import Services, ServicesDep, SessionDep
from service.models import Case, Department
from service.schemas import MAX_ID, CaseStatus, LoopAction, Priority

log = logging.getLogger(__name__)

router = APIRouter(prefix=f"{PREFIX}/dispatch", include_in_schema=False)

#: The sections of the view in the loop's order: what a dispatcher acts on, and what they watch.
SECTIONS: Final = (
    CaseStatus.CONFIRMED,  # to file
    CaseStatus.FILED,  # to dispatch
    CaseStatus.DISPATCHED,  # with the department: overdue ones flagged
    CaseStatus.HANDLED,  # awaiting the camera's check and a reviewer
    CaseStatus.VERIFIED,  # to close
)
#: The actions the view offers; the rest of the loop belongs to departments and reviewers.
ACTIONS: Final = {a.value: a for a in (LoopAction.FILE, LoopAction.DISPATCH, LoopAction.CLOSE)}
#: The most cases one section lists (oldest detection first); its count covers all.
SECTION_ROWS: Final = 200

FormText = Annotated[str, Form(max_length=2000)]


@dataclass(frozen=True, slots=True)
class Section:
    """The cases of one status, oldest first, and how many there are in all."""

    status: CaseStatus
    cases: list[Case]
    total: int


def _sections(session: Session) -> list[Section]:
    sections = []
    for status in SECTIONS:
        query = select(Case).where(Case.status == status)
        cases = list(session.scalars(query.order_by(Case.detected_at, Case.id).limit(SECTION_ROWS)))
        total = session.scalar(select(func.count()).where(Case.status == status)) or 0
        sections.append(Section(status=status, cases=cases, total=total))
    return sections


def _page(
    request: Request, services: Services, session: Session, user: SignedIn, *, error: str | None = None, code: int = 200
) -> Response:
    now = services.clock()
    with session.begin():
        sections = _sections(session)
        departments = list(session.scalars(select(Department).order_by(Department.id)))
        late = select(func.count()).where(Case.status == CaseStatus.DISPATCHED, Case.deadline_at < now)
        overdue = session.scalar(late) or 0
    context = {
        "sections": sections,
        "departments": departments,
        "priorities": list(Priority),
        "now": now,
        "overdue": overdue,
        "is_overdue": lambda case: _overdue(case, now),
        "error": error,
    }
    return render(request, services, "dispatch.html", context, user=user, code=code)


def _overdue(case: Case, now: datetime) -> bool:
    return case.status is CaseStatus.DISPATCHED and case.deadline_at is not None and case.deadline_at < now


@router.get("")
def dispatch_view(request: Request, services: ServicesDep, session: SessionDep, user: PageUserDep) -> Response:
    """Confirmed cases to file, filed ones to dispatch, dispatched ones (overdue flagged), handled ones, and verified
    ones to close."""
    require_dispatcher(user)
    return _page(request, services, session, user)


@router.post("/{case_id}/{action}")
def take_action(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    user: DataUserDep,
    case_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    action: str,
    csrf: FormText = "",
    department_id: FormText = "",
    priority: FormText = "",
) -> Response:
    """File (with a priority), dispatch (to the department chosen) or close a case, as `service.loop` allows."""
    check_csrf(user, csrf)
    require_dispatcher(user)
    chosen = ACTIONS.get(action)
    if chosen is None:
        raise HTTPException(404, f"the dispatch view takes no action {action!r}")
    words = translator(language(request))
    try:
        level = Priority(priority) if priority else None
    except ValueError:
        return _page(request, services, session, user, error=words["bad_priority"], code=422)
    try:
        case = loop.act(
            session=session,
            case_id=case_id,
            action=chosen,
            actor=user.principal,
            now=services.clock(),
            priority=level if chosen is LoopAction.FILE else None,
            department_id=(department_id or None) if chosen is LoopAction.DISPATCH else None,
        )
    except loop.ActionForbiddenError as exc:
        raise HTTPException(403, str(exc)) from None
    except crud.CaseNotFoundError:
        raise HTTPException(404, f"no case {case_id}") from None
    except loop.IllegalTransitionError as exc:
        problem = words["not_allowed"].format(case_id=case_id, status=words[exc.status.value], action=words[action])
        return _page(request, services, session, user, error=problem, code=409)
    except loop.ActionInputError as exc:
        problem = words["choose_department"] if exc.field == "department_id" else str(exc)
        return _page(request, services, session, user, error=problem, code=422)
    log.info("case %d: %s by %s in the console, now %s", case_id, action, user.principal.name, case.status.value)
    return RedirectResponse(f"{PREFIX}/dispatch#case-{case_id}", 303, headers=SECURITY_HEADERS)

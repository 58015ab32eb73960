"""The queue, the case view, decisions and undo, and evidence images for a signed-in reviewer."""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response

from service import crud, loop
from service.console.decisions import (
    REOPENABLE,
    NotDecidedError,
    NothingToUndoError,
    UndoWindowPassedError,
    case_sightings,
    first_in_queue,
    neighbour,
    queue_page,
    reopen_case,
    type_counts,
    undo_last_decision,
)
from service.console.i18n import MESSAGES, REJECT_REASONS, translator
from service.console.sessions import SignedIn, may_review
from service.console.web import (
    PREFIX,
    SECURITY_HEADERS,
    DataUserDep,
    Filters,
    PageUserDep,
    check_csrf,
    duration,
    home_of,
    language,
    parse_filters,
    render,
    require_reviewer,
    scene_index,
)
from service.deps import Services, ServicesDep, SessionDep
from service.evidence import EvidenceNotFoundError
from service.schemas import MAX_ID, CaseType, Decision, EvidenceRole, LoopAction, ReviewIn, Role

log = logging.getLogger(__name__)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

#: The most cases the queue page lists at once; the counts cover every draft.
QUEUE_ROWS = 200

CaseId = Annotated[int, Path(ge=1, le=MAX_ID)]
FormText = Annotated[str, Form(max_length=2000)]


def _queue_context(session: Session, filters: Filters) -> dict[str, object]:
    with session.begin():
        cases = queue_page(session=session, queue=filters.queue, limit=QUEUE_ROWS)
        counts = type_counts(session=session, queue=filters.queue)
        thumbs = {c.id: scene_index(c) for c in cases}
    return {"cases": cases, "counts": counts, "thumbs": thumbs, "filters": filters, "types": list(CaseType)}


@router.get("/")
def queue(request: Request, services: ServicesDep, session: SessionDep, user: PageUserDep) -> Response:
    """Draft cases, oldest first unless asked otherwise, with counts per type; the page refreshes its rows itself.

    A dispatcher, who decides no drafts, goes to the dispatch view instead."""
    if not may_review(user.principal.role):
        return RedirectResponse(home_of(user.principal.role), 303, headers=SECURITY_HEADERS)
    filters = parse_filters(request.query_params)
    return render(request, services, "queue.html", _queue_context(session, filters), user=user)


@router.get("/queue/live")
def queue_live(request: Request, services: ServicesDep, session: SessionDep, user: DataUserDep) -> Response:
    """The counts and rows of the queue, which the queue page fetches every few seconds."""
    filters = parse_filters(request.query_params)
    return render(request, services, "_live.html", _queue_context(session, filters), user=user)


@router.get("/cases/{case_id}")
def case_view(
    request: Request, services: ServicesDep, session: SessionDep, user: PageUserDep, case_id: CaseId
) -> Response:
    """One case: its evidence labelled by role, what the pipeline saw, its sightings and its audit trail."""
    return _case_page(request, services, session, user, case_id, parse_filters(request.query_params))


def _case_page(
    request: Request,
    services: Services,
    session: Session,
    user: SignedIn,
    case_id: int,
    filters: Filters,
    *,
    error: str | None = None,
    code: int = 200,
) -> Response:
    # Read in whatever transaction the session has (a refused decision leaves one open); nothing is written here.
    case = crud.get_case(session=session, case_id=case_id)
    if case is None:
        raise HTTPException(404, f"no case {case_id}")
    sightings = case_sightings(session=session, case_id=case_id)
    after = neighbour(session=session, queue=filters.queue, case=case, forward=True)
    before = neighbour(session=session, queue=filters.queue, case=case, forward=False)
    first_sighting = sightings[0].id if sightings else None
    # The camera's latest look at the handled case, shown beside the scene as the before / after pair.
    camera_look = max((i for i, e in enumerate(case.evidence) if e.role == EvidenceRole.AFTER.value), default=None)
    evidence = [
        {
            "index": i,
            "role": EvidenceRole.of_filename(e.role),
            "later": e.sighting_id is not None and e.sighting_id != first_sighting,
            "sighting": next((n for n, s in enumerate(sightings, 1) if s.id == e.sighting_id), None),
        }
        for i, e in enumerate(case.evidence)
        # The clean scene is the scene again, undrawn: for training, not for review. The after image is in the pair.
        if e.role not in (EvidenceRole.SCENE_CLEAN.value, EvidenceRole.AFTER.value)
    ]
    context = {
        "case": case,
        "evidence": evidence,
        "pair": None if camera_look is None else (scene_index(case), camera_look),
        "sightings": sightings,
        "duration": duration(case),
        "next_id": after,
        "prev_id": before,
        "filters": filters,
        "error": error,
        # Only a decision can be reopened; anywhere else the form would only earn a 409.
        "may_reopen": user.principal.role is Role.ADMIN and case.status in REOPENABLE,
    }
    return render(request, services, "case.html", context, user=user, code=code)


@router.get("/cases/{case_id}/evidence/{n}")
def evidence(
    services: ServicesDep,
    session: SessionDep,
    user: DataUserDep,
    case_id: CaseId,
    n: Annotated[int, Path(ge=0, le=MAX_ID)],
) -> Response:
    """A case's n-th evidence image (0-based, as in the API), for the console's session only."""
    with session.begin():
        case = crud.get_case(session=session, case_id=case_id)
        item = None if case is None or n >= len(case.evidence) else case.evidence[n]
    if item is None:
        raise HTTPException(404, f"case {case_id} has no evidence image {n}")
    try:
        data = services.store.get(item.sha256)
    except EvidenceNotFoundError:
        log.error("evidence %s of case %d is missing from the store", item.sha256, case_id)
        raise HTTPException(404, f"the file of evidence image {n} of case {case_id} is missing") from None
    headers = {
        "ETag": f'"{item.sha256}"',
        "Cache-Control": "private, max-age=86400",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(data, media_type=item.content_type, headers=headers)


def _form_filters(q: str) -> Filters:
    return parse_filters(dict(parse_qsl(q)))


def _reason(reason: str, note: str) -> str | None:
    """The audit reason of a rejection: the chosen reason in English, and the reviewer's words after a colon."""
    if reason not in REJECT_REASONS:
        return None
    label = MESSAGES["en"][reason].lower()
    return f"{label}: {note.strip()}" if note.strip() else (None if reason == "other" else label)


@router.post("/cases/{case_id}/decide")
def decide(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    user: DataUserDep,
    case_id: CaseId,
    csrf: FormText = "",
    decision: FormText = "",
    reason: FormText = "",
    note: FormText = "",
    q: FormText = "",
) -> Response:
    """Confirm or reject (with a reason), under the same rules and audit as the API's review; then the next case."""
    check_csrf(user, csrf)
    require_reviewer(user)
    filters = _form_filters(q)
    try:
        body = ReviewIn(decision=Decision(decision), reason=_reason(reason, note) if decision == "reject" else None)
    except (ValueError, ValidationError):
        problem = _words(request)["reason_needed"]
        return _case_page(request, services, session, user, case_id, filters, error=problem, code=422)
    now = services.clock()
    try:
        case = crud.review_case(
            session=session,
            case_id=case_id,
            decision=body.decision,
            reason=body.reason,
            reviewer=user.principal,
            now=now,
        )
    except crud.CaseNotFoundError:
        raise HTTPException(404, f"no case {case_id}") from None
    except crud.CaseNotDraftError as exc:
        words = _words(request)
        problem = words["not_draft"].format(status=words[exc.status.value])
        return _case_page(request, services, session, user, case_id, filters, error=problem, code=409)
    services.metrics.review_latency.labels(body.decision.value).observe((now - case.created_at).total_seconds())
    log.info("case %d %s by %s in the console", case_id, case.status.value, user.principal.name)
    # review_case leaves the session in a read transaction of the decided case; the next case is read in it.
    following = neighbour(session=session, queue=filters.queue, case=case, forward=True)
    if following is None:
        following = first_in_queue(session=session, queue=filters.queue)
    return _go(following, filters)


@router.post("/cases/{case_id}/reopen")
def reopen(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    user: DataUserDep,
    case_id: CaseId,
    csrf: FormText = "",
    reason: FormText = "",
    q: FormText = "",
) -> Response:
    """An admin takes a decided case back to draft, with a reason, audited as `reopen`."""
    check_csrf(user, csrf)
    if user.principal.role is not Role.ADMIN:
        raise HTTPException(403, "only an admin can reopen a case")
    filters = _form_filters(q)
    words = _words(request)
    if not reason.strip() or "\x00" in reason:
        return _case_page(request, services, session, user, case_id, filters, error=words["reopen_reason"], code=422)
    try:
        reopen_case(session=session, case_id=case_id, admin=user.principal, reason=reason.strip(), now=services.clock())
    except NotDecidedError:
        return _case_page(request, services, session, user, case_id, filters, error=words["not_decided"], code=409)
    log.info("case %d reopened by %s: %s", case_id, user.principal.name, reason.strip())
    return _go(case_id, filters)


@router.post("/cases/{case_id}/file")
def file_case(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    user: DataUserDep,
    case_id: CaseId,
    csrf: FormText = "",
    q: FormText = "",
) -> Response:
    """File a confirmed case (立案), as `POST /api/v1/cases/{id}/actions/file` does; the grid map may dispatch it."""
    check_csrf(user, csrf)
    filters = _form_filters(q)
    try:
        case = loop.act(
            session=session, case_id=case_id, action=LoopAction.FILE, actor=user.principal, now=services.clock()
        )
    except crud.CaseNotFoundError:
        raise HTTPException(404, f"no case {case_id}") from None
    except loop.IllegalTransitionError:
        problem = _words(request)["cannot_file"]
        return _case_page(request, services, session, user, case_id, filters, error=problem, code=409)
    log.info("case %d filed by %s in the console, now %s", case_id, user.principal.name, case.status.value)
    return _go(case_id, filters)


def _words(request: Request) -> dict[str, str]:
    return translator(language(request))


def _go(case_id: int | None, filters: Filters) -> Response:
    query = f"?{filters.query}" if filters.query else ""
    target = f"{PREFIX}/cases/{case_id}{query}" if case_id is not None else f"{PREFIX}/{query}"
    return RedirectResponse(target, 303, headers=SECURITY_HEADERS)


@router.post("/undo")
def undo(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    user: DataUserDep,
    csrf: FormText = "",
    q: FormText = "",
) -> Response:
    """Take back the reviewer's last decision within the undo window; the case opens again as a draft."""
    check_csrf(user, csrf)
    try:
        case_id = undo_last_decision(
            session=session, reviewer=user.principal, window_s=services.settings.console_undo_s, now=services.clock()
        )
    except (NothingToUndoError, UndoWindowPassedError) as exc:
        raise HTTPException(409, str(exc)) from None
    log.info("case %d reopened by %s (undo)", case_id, user.principal.name)
    return _go(case_id, _form_filters(q))

"""`/api/v1/cases`: agents post draft cases with evidence; reviewers list, read and decide them."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, HTTPException, Path, Query, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from service import crud
from service.auth import Principal
from service.deps import AgentDep, CaseReaderDep, ReviewerDep, Services, ServicesDep, SessionDep
from service.evidence import EvidenceNotFoundError, image_type
from service.models import Case
from service.routes import API_PREFIX
from service.schemas import (
    MAX_ID,
    CaseIn,
    CaseOut,
    CasePage,
    CasePosted,
    CaseStatus,
    CaseType,
    Code,
    EvidenceRole,
    Name,
    PostResult,
    Problem,
    ReviewIn,
    Role,
    Time,
    in_time_range,
)
from service.views import case_out, case_posted

log = logging.getLogger(__name__)

# The full prefix lives on the router so each route's `path` is the whole template (metrics label by it).
router = APIRouter(prefix=f"{API_PREFIX}/cases", tags=["cases"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 403, 404, 409, 413, 415, 422, 500)
}


def _with_errors(ok: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: ok, **_ERRORS}


CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="The case's id.")]


def _invalid(loc: tuple[str | int, ...], message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message}])


class CaseForm(BaseModel):
    """The multipart body of a case post; any other part is refused."""

    model_config = ConfigDict(extra="forbid")

    case: str = Field(description="The case as JSON (see CaseIn).")
    evidence: list[UploadFile] = Field(min_length=1, description="One or more JPEG or PNG images.")


@router.post(
    "",
    status_code=201,
    responses=_with_errors(
        {"model": CasePosted, "description": "A re-sighting merged into an open case, or a replay of this key."}
    ),
)
async def create_case(
    response: Response,
    agent: AgentDep,
    services: ServicesDep,
    form: Annotated[CaseForm, Form(media_type="multipart/form-data")],
    idempotency_key: Annotated[
        str,
        Header(
            min_length=1,
            max_length=200,
            description="Stable per violation: a retry sends the same key. Unique per API key.",
        ),
    ],
) -> CasePosted:
    """Post a draft case: 201 when new; 200 for a re-sighting merged into an open case, or a repeated key.

    The answer names the case and what the post did, nothing of its review: an agent reads no case.
    """
    try:
        case_in = CaseIn.model_validate_json(form.case)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", "case", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)]
        ) from None
    now = services.clock()
    if case_in.detected_at > now + timedelta(seconds=services.settings.clock_skew_s):
        # A camera with its clock ahead would pin its cases to the top of every queue.
        raise _invalid(("body", "case", "detected_at"), f"is in the future (this service's clock: {now.isoformat()})")
    images = await run_in_threadpool(_read_images, form.evidence, limit=services.settings.max_evidence_bytes)
    post = _Post(services, agent, case_in, idempotency_key, now)
    try:
        outcome = await run_in_threadpool(post.replay)
        if outcome is None:
            stored = await run_in_threadpool(post.store, images)
            # Posts that may merge into one case queue here, holding no thread and no connection while they wait:
            # a burst of re-sightings of one violation would otherwise fill the pool with connections that each
            # wait for the same database lock.
            async with services.case_posts.hold(crud.case_scope(case_in)):
                outcome = await run_in_threadpool(post.record, stored)
            await run_in_threadpool(post.forget, outcome.dropped)
    except crud.IdempotencyConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    services.metrics.case_posts.labels(outcome.result.value).inc()
    log.info("case %d %s by %s (key %r)", outcome.case.id, outcome.result.value, agent.name, idempotency_key)
    response.status_code = 201 if outcome.result is PostResult.CREATED else 200
    return case_posted(outcome.case, outcome.result)


@dataclass(frozen=True, slots=True)
class _Post:
    """The steps of one case post that touch the database or the evidence store, each run in a worker thread;
    each takes a connection of its own for one short transaction and gives it back."""

    services: Services
    agent: Principal
    case: CaseIn
    idempotency_key: str
    now: datetime

    def replay(self) -> crud.PostOutcome | None:
        with self.services.sessions() as session:
            return crud.find_replay(
                session=session,
                scope=self.agent.idempotency_scope,
                idempotency_key=self.idempotency_key,
                case=self.case,
                merge_iou=self.services.settings.merge_iou,
            )

    def store(self, images: list[tuple[bytes, str, EvidenceRole | None]]) -> list[crud.NewEvidence]:
        # Files first, then the rows that point at them: a failed commit leaves at worst an unreferenced file.
        return [
            crud.NewEvidence(sha256=self.services.store.put(data), content_type=content_type, size=len(data), role=role)
            for data, content_type, role in images
        ]

    def record(self, evidence: list[crud.NewEvidence]) -> crud.PostOutcome:
        settings = self.services.settings
        with self.services.sessions() as session:
            return crud.post_case(
                session=session,
                case=self.case,
                scope=self.agent.idempotency_scope,
                idempotency_key=self.idempotency_key,
                evidence=evidence,
                posted_by=self.agent.name,
                merge_iou=settings.merge_iou,
                merge_window_s=settings.merge_window_s,
                keep_sightings=settings.evidence_sightings,
                now=self.now,
            )

    def forget(self, dropped: tuple[str, ...]) -> None:
        # After the commit, so a failure here leaves at worst a file nothing refers to. A post of the very same
        # bytes by another agent, in flight between this check and its own commit, would find its file gone:
        # the images of two different frames never share bytes, and one agent posts a case's sightings in turn.
        with self.services.sessions() as session:
            for digest in crud.unreferenced_evidence(session=session, digests=dropped):
                self.services.store.delete(digest)


def _read_images(parts: list[UploadFile], *, limit: int) -> list[tuple[bytes, str, EvidenceRole | None]]:
    images = []
    for i, part in enumerate(parts):
        name = f"evidence[{i}]" + (f" ({part.filename})" if part.filename else "")
        data = part.file.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"{name} is larger than the {limit}-byte evidence limit")
        content_type = image_type(data)
        if content_type is None:
            raise HTTPException(415, f"{name} is not a JPEG or PNG image that decodes completely")
        images.append((data, content_type, EvidenceRole.of_filename(part.filename)))
    return images


def _encode_cursor(position: crud.Position) -> str:
    at, case_id = position
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), case_id]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> crud.Position:
    try:
        at, case_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        position = (datetime.fromisoformat(at), int(case_id))
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise _invalid(("query", "cursor"), "not a cursor this service issued") from None
    at, case_id = position
    try:
        if at.tzinfo is None or not 1 <= case_id <= MAX_ID:
            raise ValueError("out of range")
        in_time_range(at)
    except ValueError:
        raise _invalid(("query", "cursor"), "not a cursor this service issued") from None
    return position


@router.get("", responses=_ERRORS)
def list_cases(
    reader: CaseReaderDep,
    services: ServicesDep,
    session: SessionDep,
    case_status: Annotated[CaseStatus | None, Query(alias="status")] = None,
    case_type: Annotated[CaseType | None, Query(alias="type")] = None,
    camera_id: Annotated[Name | None, Query()] = None,
    grid_id: Annotated[Code | None, Query(description="Cases of this grid.")] = None,
    department_id: Annotated[
        Code | None, Query(description="Cases dispatched to this department (a department key sees only its own).")
    ] = None,
    overdue: Annotated[
        bool | None, Query(description="true: only cases dispatched, not handled, and past their deadline.")
    ] = None,
    since: Annotated[Time | None, Query(description="Detected at or after (ISO 8601 with zone).")] = None,
    until: Annotated[Time | None, Query(description="Detected before (ISO 8601 with zone).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            pattern="^[A-Za-z0-9_-]+$",
            description="`next_cursor` of the previous page (a cursor this service did not issue is a 422).",
        ),
    ] = None,
) -> CasePage:
    """Cases newest first (by detection time); follow `next_cursor` for the next page. A department key sees only
    the cases dispatched to its department."""
    now = services.clock()
    if reader.role is Role.DEPARTMENT:
        if department_id not in (None, reader.department_id):
            raise _invalid(("query", "department_id"), "a department key sees only its own department's cases")
        department_id = reader.department_id
    rows, position = crud.list_cases(
        session=session,
        status=case_status,
        case_type=case_type,
        camera_id=camera_id,
        since=since,
        until=until,
        grid_id=grid_id,
        department_id=department_id,
        overdue=overdue,
        now=now,
        limit=limit,
        after=None if cursor is None else _decode_cursor(cursor),
    )
    return CasePage(
        items=[case_out(c, now=now) for c in rows],
        next_cursor=None if position is None else _encode_cursor(position),
    )


def _readable(session: SessionDep, reader: Principal, case_id: int) -> Case:
    """The case, if `reader` may see it: a department key sees only its own department's cases (404 for others,
    as if they did not exist)."""
    case = crud.get_case(session=session, case_id=case_id)
    if case is None or (reader.role is Role.DEPARTMENT and case.department_id != reader.department_id):
        raise HTTPException(404, f"no case {case_id}")
    return case


@router.get("/{case_id}", responses=_ERRORS)
def get_case(reader: CaseReaderDep, services: ServicesDep, session: SessionDep, case_id: CaseId) -> CaseOut:
    """One case with its evidence list, review history and loop trail."""
    return case_out(_readable(session, reader, case_id), now=services.clock())


@router.get(
    "/{case_id}/evidence/{n}",
    response_class=Response,
    responses=_with_errors({"content": {"image/jpeg": {}, "image/png": {}}, "description": "The image."}),
)
def get_evidence(
    reader: CaseReaderDep,
    services: ServicesDep,
    session: SessionDep,
    case_id: CaseId,
    n: Annotated[int, Path(ge=0, le=MAX_ID, description="0-based, in the order of the case's `evidence` list.")],
) -> Response:
    """The bytes of a case's n-th evidence image, with its content type."""
    case = _readable(session, reader, case_id)
    if n >= len(case.evidence):
        raise HTTPException(404, f"case {case_id} has {len(case.evidence)} evidence images; there is no image {n}")
    item = case.evidence[n]
    try:
        data = services.store.get(item.sha256)
    except EvidenceNotFoundError:
        log.error("evidence %s of case %d is missing from the store", item.sha256, case_id)
        raise HTTPException(
            404, f"the file of evidence image {n} of case {case_id} is missing from the store"
        ) from None
    return Response(
        data,
        media_type=item.content_type,
        headers={
            "ETag": f'"{item.sha256}"',
            "Cache-Control": "private, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",  # a browser shows it as the image it is, never as a page
        },
    )


@router.post("/{case_id}/review", responses=_ERRORS)
def review_case(
    reviewer: ReviewerDep, services: ServicesDep, session: SessionDep, case_id: CaseId, body: ReviewIn
) -> CaseOut:
    """Confirm or reject a draft case (a reason is required to reject); 409 if it is no longer a draft."""
    now = services.clock()
    try:
        case = crud.review_case(
            session=session, case_id=case_id, decision=body.decision, reason=body.reason, reviewer=reviewer, now=now
        )
    except crud.CaseNotFoundError:
        raise HTTPException(404, f"no case {case_id}") from None
    except crud.CaseNotDraftError as exc:
        raise HTTPException(409, str(exc)) from None
    services.metrics.review_latency.labels(body.decision.value).observe((now - case.created_at).total_seconds())
    log.info("case %d %s by %s", case_id, case.status.value, reviewer.name)
    return case_out(case, now=now)

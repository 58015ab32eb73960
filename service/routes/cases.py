"""`/api/v1/cases`: agents post draft cases with evidence; reviewers list, read and decide them."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, HTTPException, Path, Query, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from service import crud
from service.deps import AgentDep, ReviewerDep, ServicesDep, SessionDep
from service.evidence import EvidenceNotFoundError, image_type
from service.routes import API_PREFIX
from service.schemas import (
    MAX_ID,
    CaseIn,
    CaseOut,
    CasePage,
    CaseStatus,
    CaseType,
    EvidenceRole,
    Name,
    Problem,
    ReviewIn,
    Time,
    in_time_range,
)
from service.views import case_out

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


@router.post(
    "",
    status_code=201,
    responses=_with_errors({"model": CaseOut, "description": "A replay of the same Idempotency-Key, or a merge."}),
)
def create_case(
    response: Response,
    agent: AgentDep,
    services: ServicesDep,
    session: SessionDep,
    case: Annotated[str, Form(description="The case as JSON (see CaseIn).")],
    evidence: Annotated[list[UploadFile], File(description="One or more JPEG or PNG images.")],
    idempotency_key: Annotated[
        str, Header(min_length=1, max_length=200, description="Stable per violation: a retry sends the same key.")
    ],
) -> CaseOut:
    """Post a draft case: 201 when new; 200 with the same case for a repeated key or (`merged`) a re-sighting."""
    try:
        case_in = CaseIn.model_validate_json(case)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", "case", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)]
        ) from None
    now = services.clock()
    if case_in.detected_at > now + timedelta(seconds=services.settings.clock_skew_s):
        # A camera with its clock ahead would pin its cases to the top of every queue.
        raise _invalid(("body", "case", "detected_at"), f"is in the future (this service's clock: {now.isoformat()})")
    images = _read_images(evidence, limit=services.settings.max_evidence_bytes)
    try:
        outcome = crud.find_replay(
            session=session, idempotency_key=idempotency_key, case=case_in, merge_iou=services.settings.merge_iou
        )
        if outcome is None:
            # Files first, then the rows that point at them: a failed commit leaves at worst an unreferenced file.
            stored = [
                crud.NewEvidence(sha256=services.store.put(data), content_type=content_type, size=len(data), role=role)
                for data, content_type, role in images
            ]
            outcome = crud.post_case(
                session=session,
                case=case_in,
                idempotency_key=idempotency_key,
                evidence=stored,
                posted_by=agent.name,
                merge_iou=services.settings.merge_iou,
                merge_window_s=services.settings.merge_window_s,
                keep_sightings=services.settings.evidence_sightings,
                now=now,
            )
    except crud.IdempotencyConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    if not outcome.replayed:
        # After the commit, so a failure here leaves at worst a file nothing refers to. A post of the very same
        # bytes by another agent, in flight between this check and its own commit, would find its file gone:
        # the images of two different frames never share bytes, and one agent posts a case's sightings in turn.
        for digest in crud.unreferenced_evidence(session=session, digests=outcome.dropped):
            services.store.delete(digest)
    label = "replayed" if outcome.replayed else "merged" if outcome.merged else "created"
    services.metrics.case_posts.labels(label).inc()
    log.info("case %d %s by %s (key %r)", outcome.case.id, label, agent.name, idempotency_key)
    response.status_code = 201 if outcome.created else 200
    return case_out(outcome.case, merged=outcome.merged)


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
    reviewer: ReviewerDep,
    session: SessionDep,
    case_status: Annotated[CaseStatus | None, Query(alias="status")] = None,
    case_type: Annotated[CaseType | None, Query(alias="type")] = None,
    camera_id: Annotated[Name | None, Query()] = None,
    since: Annotated[Time | None, Query(description="Detected at or after (ISO 8601 with zone).")] = None,
    until: Annotated[Time | None, Query(description="Detected before (ISO 8601 with zone).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> CasePage:
    """Cases newest first (by detection time); follow `next_cursor` for the next page."""
    rows, position = crud.list_cases(
        session=session,
        status=case_status,
        case_type=case_type,
        camera_id=camera_id,
        since=since,
        until=until,
        limit=limit,
        after=None if cursor is None else _decode_cursor(cursor),
    )
    return CasePage(
        items=[case_out(c) for c in rows], next_cursor=None if position is None else _encode_cursor(position)
    )


@router.get("/{case_id}", responses=_ERRORS)
def get_case(reviewer: ReviewerDep, session: SessionDep, case_id: CaseId) -> CaseOut:
    """One case with its evidence list and review history."""
    case = crud.get_case(session=session, case_id=case_id)
    if case is None:
        raise HTTPException(404, f"no case {case_id}")
    return case_out(case)


@router.get(
    "/{case_id}/evidence/{n}",
    response_class=Response,
    responses=_with_errors({"content": {"image/jpeg": {}, "image/png": {}}, "description": "The image."}),
)
def get_evidence(
    reviewer: ReviewerDep,
    services: ServicesDep,
    session: SessionDep,
    case_id: CaseId,
    n: Annotated[int, Path(ge=0, le=MAX_ID, description="0-based, in the order of the case's `evidence` list.")],
) -> Response:
    """The bytes of a case's n-th evidence image, with its content type."""
    case = crud.get_case(session=session, case_id=case_id)
    if case is None:
        raise HTTPException(404, f"no case {case_id}")
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
    return case_out(case)

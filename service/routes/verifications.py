"""The camera verifies: agents list the handled cases of their cameras and post what the camera saw there."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, HTTPException, Path, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from service import crud, verifications
from service.deps import AgentDep, ServicesDep, SessionDep
from service.evidence import image_type
from service.routes import API_PREFIX
from service.schemas import (
    MAX_ID,
    Name,
    PostResult,
    Problem,
    Time,
    VerificationOutcome,
    VerificationPosted,
    VerificationTask,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix=API_PREFIX, tags=["verifications"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 403, 404, 409, 413, 415, 422, 500)
}

#: Most cameras one listing names: an agent runs tens of cameras, not thousands.
MAX_CAMERAS = 500


class VerificationForm(BaseModel):
    """The multipart body of a verification post; any other part is refused."""

    model_config = ConfigDict(extra="forbid")

    outcome: VerificationOutcome = Field(description="absent: the violating object is gone; present: still there.")
    observed_at: Time = Field(description="When the camera saw it: the frame's time (ISO 8601, with zone).")
    after: UploadFile = Field(description="The camera's frame of the case's spot, JPEG or PNG.")


@router.get("/verifications", responses=_ERRORS)
def list_verifications(
    agent: AgentDep,
    session: SessionDep,
    camera_id: Annotated[
        list[Name], Query(min_length=1, max_length=MAX_CAMERAS, description="The agent's cameras (repeat it).")
    ],
) -> list[VerificationTask]:
    """The handled cases of these cameras that await the camera's look, oldest handling first."""
    return verifications.pending_verifications(session=session, camera_ids=camera_id)


@router.post(
    "/cases/{case_id}/verification",
    status_code=201,
    responses={200: {"model": VerificationPosted, "description": "A replay of this key."}, **_ERRORS},
)
def post_verification(
    response: Response,
    agent: AgentDep,
    services: ServicesDep,
    session: SessionDep,
    case_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The case's id.")],
    form: Annotated[VerificationForm, Form(media_type="multipart/form-data")],
    idempotency_key: Annotated[
        str,
        Header(min_length=1, max_length=200, description="Stable per look at a handling: a retry sends the same key."),
    ],
) -> VerificationPosted:
    """What the camera saw at a handled case's spot: 201 with the proposal it makes (absent → passed, present →
    failed), 200 for a repeated key; 409 when the case is not handled or has a proposal already."""
    limit = services.settings.max_evidence_bytes
    data = form.after.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"after is larger than the {limit}-byte evidence limit")
    content_type = image_type(data)
    if content_type is None:
        raise HTTPException(415, "after is not a JPEG or PNG image that decodes completely")
    now = services.clock()
    # The file first, then the rows that point at it: a failed commit leaves at worst an unreferenced file.
    after = crud.NewEvidence(sha256=services.store.put(data), content_type=content_type, size=len(data))
    try:
        posted = verifications.propose(
            session=session,
            case_id=case_id,
            outcome=form.outcome,
            observed_at=form.observed_at,
            after=after,
            scope=agent.idempotency_scope,
            idempotency_key=idempotency_key,
            posted_by=agent.name,
            now=now,
        )
    except crud.CaseNotFoundError:
        raise HTTPException(404, f"no case {case_id}") from None
    except (verifications.NotAwaitingVerificationError, verifications.VerificationKeyConflictError) as exc:
        raise HTTPException(409, str(exc)) from None
    proposal = form.outcome.proposal
    log.info("case %d: camera proposes %s (%s, by %s)", case_id, proposal.value, form.outcome.value, agent.name)
    response.status_code = 200 if posted.replayed else 201
    return VerificationPosted(
        case_id=case_id, proposal=proposal, outcome=PostResult.REPLAYED if posted.replayed else PostResult.CREATED
    )

"""`/api/v1/cases/{id}/actions/{action}`: the closed loop's actions (file, dispatch, return, handle, verify, close)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from service import crud, loop
from service.deps import PrincipalDep, ServicesDep
from service.evidence import image_type
from service.routes import API_PREFIX
from service.schemas import MAX_ID, ActionIn, CaseOut, LoopAction, Problem
from service.views import case_out

log = logging.getLogger(__name__)

router = APIRouter(prefix=f"{API_PREFIX}/cases", tags=["loop"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 403, 404, 409, 413, 415, 422, 500)
}


class HandleForm(BaseModel):
    """The multipart body `handle` also takes, for a department to send a photo of its handling."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=2000, description="What was done.")
    photo: UploadFile | None = Field(default=None, description="A JPEG or PNG photo of the spot after handling.")


#: The request body as documented: JSON for every action, multipart (with a photo) for `handle` too.
BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ActionIn"}},
            "multipart/form-data": {"schema": {"$ref": "#/components/schemas/HandleForm"}},
        },
    }
}
#: The models BODY_DOC refers to, which no signature names: `create_app` adds them to the OpenAPI document.
BODY_MODELS: tuple[type[BaseModel], ...] = (ActionIn, HandleForm)


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": message}])


async def _read_body(request: Request, action: LoopAction, max_photo_bytes: int) -> tuple[ActionIn, bytes | None]:
    """The action's inputs, and the photo's bytes if a multipart `handle` sent one."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == "multipart/form-data":
        if action is not LoopAction.HANDLE:
            raise HTTPException(415, f"only handle takes a multipart body (with a photo); send '{action.value}' JSON")
        # A few fields more than the one it takes, so that a stray part is named rather than counted.
        async with request.form(max_files=1, max_fields=4) as form:
            return await _read_form(form, max_photo_bytes)
    raw = await request.body()
    if not raw.strip():
        return ActionIn(), None
    if content_type != "application/json":
        raise HTTPException(415, "send the action's inputs as application/json (or multipart/form-data to handle)")
    try:
        return ActionIn.model_validate_json(raw), None
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)]
        ) from None


async def _read_form(form: FormData, max_photo_bytes: int) -> tuple[ActionIn, bytes | None]:
    unknown = sorted(set(form.keys()) - {"note", "photo"})
    if unknown:
        raise _invalid(unknown[0], "unknown part: a handle form has a note and an optional photo")
    repeated = sorted(name for name in set(form.keys()) if len(form.getlist(name)) > 1)
    if repeated:
        raise _invalid(repeated[0], "given more than once")
    note, photo = form.get("note"), form.get("photo")
    if not isinstance(note, str):
        raise _invalid("note", "a note is required to handle a case (a text part)")
    try:
        inputs = ActionIn(note=note)
    except ValidationError as exc:
        raise _invalid("note", exc.errors()[0]["msg"]) from None
    if photo is None:
        return inputs, None
    if isinstance(photo, str):
        raise _invalid("photo", "must be a file part")
    data = await photo.read(max_photo_bytes + 1)
    if len(data) > max_photo_bytes:
        raise HTTPException(413, f"photo is larger than the {max_photo_bytes}-byte evidence limit")
    if image_type(data) is None:
        raise HTTPException(415, "photo is not a JPEG or PNG image that decodes completely")
    return inputs, data


@router.post("/{case_id}/actions/{action}", responses=_ERRORS, openapi_extra=BODY_DOC)
async def take_action(
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    case_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The case's id.")],
    action: Annotated[LoopAction, Path(description="file, dispatch, return, handle, verify_pass, verify_fail, close.")],
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=200,
            description="Optional, unique per API key: a retry with the same key repeats nothing and answers 200.",
        ),
    ] = None,
) -> CaseOut:
    """Move a case on through the closed loop (docs/closed-loop.md). 403 when the key's role may not take the
    action, 409 when the case's status does not allow it (the body names both), 404 for a case a department
    key does not own. `handle` also takes multipart/form-data with a `note` and an optional `photo`."""
    if not loop.may_take(principal.role, action):
        raise HTTPException(403, str(loop.ActionForbiddenError(action, principal.role)))
    inputs, photo_bytes = await _read_body(request, action, services.settings.max_evidence_bytes)
    photo = None
    if photo_bytes is not None:
        content_type = image_type(photo_bytes) or "image/jpeg"
        digest = await run_in_threadpool(services.store.put, photo_bytes)
        photo = crud.NewEvidence(sha256=digest, content_type=content_type, size=len(photo_bytes))
    now = services.clock()

    def act() -> CaseOut:
        with services.sessions() as session:
            case = loop.act(
                session=session,
                case_id=case_id,
                action=action,
                actor=principal,
                now=now,
                note=inputs.note,
                priority=inputs.priority,
                department_id=inputs.department_id,
                idempotency_key=idempotency_key,
                photo=photo,
            )
            return case_out(case, now=now)

    def forget_photo() -> None:
        # The file went to the store first; a refused action leaves it referenced by nothing.
        with services.sessions() as session:
            for digest in crud.unreferenced_evidence(session=session, digests=[photo.sha256] if photo else []):
                services.store.delete(digest)

    try:
        try:
            out = await run_in_threadpool(act)
        except Exception:
            await run_in_threadpool(forget_photo)
            raise
    except loop.ActionForbiddenError as exc:
        raise HTTPException(403, str(exc)) from None
    except crud.CaseNotFoundError:
        raise HTTPException(404, f"no case {case_id}") from None
    except (loop.IllegalTransitionError, loop.ActionKeyConflictError) as exc:
        raise HTTPException(409, str(exc)) from None
    except loop.ActionInputError as exc:
        raise _invalid(exc.field, str(exc)) from None
    log.info("case %d: %s by %s, now %s", case_id, action.value, principal.name, out.status.value)
    return out

"""`/api/v1/keys`: admins create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.exceptions import RequestValidationError

from service import crud
from service.deps import AdminDep, ServicesDep, SessionDep
from service.routes import API_PREFIX
from service.schemas import MAX_ID, KeyCreated, KeyIn, KeyOut, Problem
from service.views import key_out

router = APIRouter(prefix=f"{API_PREFIX}/keys", tags=["keys"])

_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (400, 401, 403, 404, 409, 422, 500)}


@router.post("", status_code=201, responses=_ERRORS)
def create_key(admin: AdminDep, services: ServicesDep, session: SessionDep, body: KeyIn) -> KeyCreated:
    """A new key; its secret is in this response only. A department key names its department (422 otherwise)."""
    try:
        key, secret = crud.create_api_key(
            session=session, role=body.role, name=body.name, now=services.clock(), department_id=body.department_id
        )
    except crud.KeyDepartmentError as exc:
        loc = ("body", "department_id")
        raise RequestValidationError([{"type": "value_error", "loc": loc, "msg": str(exc)}]) from None
    return KeyCreated(**key_out(key).model_dump(), key=secret)


@router.get("", responses=_ERRORS)
def list_keys(admin: AdminDep, session: SessionDep) -> list[KeyOut]:
    """Every key, revoked ones included, without secrets."""
    return [key_out(k) for k in crud.list_api_keys(session=session)]


@router.delete("/{key_id}", responses=_ERRORS)
def revoke_key(
    admin: AdminDep,
    services: ServicesDep,
    session: SessionDep,
    key_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The key's id.")],
) -> KeyOut:
    """Revoke a key; it stays listed for the audit trail. 409 for the last admin key."""
    try:
        key = crud.revoke_api_key(session=session, key_id=key_id, now=services.clock())
    except crud.LastAdminKeyError as exc:
        raise HTTPException(409, str(exc)) from None
    if key is None:
        raise HTTPException(404, f"no API key {key_id}")
    return key_out(key)

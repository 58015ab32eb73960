"""FastAPI dependencies as `Annotated` aliases: the app's services, a database session, and who is calling."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service import crud
from service.auth import ROLE_ALLOWS, Principal, hash_key
from service.db import KeyedLock
from service.evidence import EvidenceStore
from service.metrics import Metrics
from service.schemas import Role
from service.settings import ServiceSettings

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Services:
    """Everything one app instance shares between requests; built by `create_app`."""

    settings: ServiceSettings
    engine: Engine
    sessions: sessionmaker[Session]
    store: EvidenceStore
    metrics: Metrics
    clock: Clock
    case_posts: KeyedLock  # posts of one violation (camera, zone, type) queue here, see routes.cases
    bootstrap_key_hash: str | None


def get_services(request: Request) -> Services:
    """The app's services."""
    services = request.app.state.services
    if not isinstance(services, Services):
        raise RuntimeError("the app was not built by service.app.create_app")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    """A session for one request, closed (and any open transaction rolled back) afterwards."""
    with services.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")


def authenticate(services: Services, authorization: str | None) -> Principal:
    """Who holds the key in an `Authorization` header; 401 if it carries none or an unknown or revoked one."""
    challenge = {"WWW-Authenticate": "Bearer"}
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing API key: send 'Authorization: Bearer <key>'", headers=challenge
        )
    digest = hash_key(key.strip())
    if services.bootstrap_key_hash is not None and hmac.compare_digest(digest, services.bootstrap_key_hash):
        return Principal(key_id=None, name="bootstrap-agent", role=Role.AGENT)
    # A session of its own: the request's session must start its write transactions fresh (see db.begin_write).
    with services.sessions() as session:
        found = crud.find_active_key(session=session, key_hash=digest)
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked API key", headers=challenge)
    return Principal(key_id=found.id, name=found.name, role=found.role, department_id=found.department_id)


def get_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Who is calling: found already by `service.early_auth` for uploads, else from the bearer credentials."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):
        return known
    return authenticate(services, None if credentials is None else f"Bearer {credentials.credentials}")


PrincipalDep = Annotated[Principal, Depends(get_principal)]


class RoleGate:
    """A dependency that lets through only keys whose role may do `action`, or is one of `action` (403 otherwise)."""

    def __init__(self, action: Role | frozenset[Role]) -> None:
        self.allowed = ROLE_ALLOWS[action] if isinstance(action, Role) else action

    def __call__(self, principal: PrincipalDep) -> Principal:
        if principal.role not in self.allowed:
            needs = " or ".join(sorted(r.value for r in self.allowed))
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this API key has role '{principal.role.value}'; this needs {needs}"
            )
        return principal


AgentDep = Annotated[Principal, Depends(RoleGate(Role.AGENT))]
ReviewerDep = Annotated[Principal, Depends(RoleGate(Role.REVIEWER))]
AdminDep = Annotated[Principal, Depends(RoleGate(Role.ADMIN))]

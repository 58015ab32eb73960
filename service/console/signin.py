"""Signing in to the console with an API key, signing out, and the language switch."""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from service import crud
from service.auth import hash_key
from service.console.i18n import LANG_COOKIE, LANGUAGES
from service.console.sessions import end_session, may_sign_in, same_token, start_session
from service.console.web import (
    PREFIX,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    SIGN_IN_CSRF_COOKIE,
    DataUserDep,
    MaybeSignedInDep,
    check_csrf,
    home_of,
    render,
    set_cookie,
)
from service.deps import ServicesDep, SessionDep
from service.schemas import Role

log = logging.getLogger(__name__)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _sign_in_form(request: Request, services: ServicesDep, *, error: str | None = None, code: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, services, "signin.html", {"csrf": token, "error": error}, user=None, code=code)
    set_cookie(response, services, SIGN_IN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.get("/sign-in")
def sign_in_page(request: Request, services: ServicesDep, user: MaybeSignedInDep) -> Response:
    """The sign-in form (or the home page, for someone signed in already)."""
    if user is not None:
        return RedirectResponse(home_of(user.principal.role), 303, headers=SECURITY_HEADERS)
    return _sign_in_form(request, services)


@router.post("/sign-in")
def sign_in(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Exchange a reviewer's, dispatcher's or admin's API key for a session cookie; agents and departments are
    refused."""
    if not same_token(csrf, request.cookies.get(SIGN_IN_CSRF_COOKIE, "")):
        return _sign_in_form(request, services, error="expired_form", code=403)
    digest = hash_key(key.strip())
    bootstrap = services.bootstrap_key_hash
    if bootstrap is not None and hmac.compare_digest(digest, bootstrap):
        return _sign_in_form(request, services, error="agent_key", code=403)
    with session.begin():
        found = crud.find_active_key(session=session, key_hash=digest)
    if found is None:
        return _sign_in_form(request, services, error="bad_key", code=401)
    if not may_sign_in(found.role):
        log.info("console: %s key %r tried to sign in", found.role.value, found.name)
        error = "department_key" if found.role is Role.DEPARTMENT else "agent_key"
        return _sign_in_form(request, services, error=error, code=403)
    lifetime = timedelta(seconds=services.settings.console_session_s)
    token = start_session(session=session, key=found, lifetime=lifetime, now=services.clock())
    log.info("console: %s signed in", found.name)
    response = RedirectResponse(home_of(found.role), 303, headers=SECURITY_HEADERS)
    set_cookie(response, services, SESSION_COOKIE, token, max_age=int(lifetime.total_seconds()))
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path="/")
    return response


@router.post("/sign-out")
def sign_out(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    user: DataUserDep,
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """End the session."""
    check_csrf(user, csrf)
    end_session(session=session, token=request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse(f"{PREFIX}/sign-in", 303, headers=SECURITY_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{lang}")
def switch_language(lang: str, back: Annotated[str, Query(max_length=2000)] = f"{PREFIX}/") -> Response:
    """Remember the chosen language and go back to the page (only a console page: never off-site)."""
    target = back if back.startswith(f"{PREFIX}/") and not back.startswith("//") else f"{PREFIX}/"
    response = RedirectResponse(target, 303, headers=SECURITY_HEADERS)
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict", path="/")
    return response

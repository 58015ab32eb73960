"""What every console route shares: templates, the signed-in reviewer, CSRF checks, filters and rendering."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import Depends, HTTPException, Request, status
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from service.console.decisions import QueueFilter, last_decision
from service.console.i18n import LANG_COOKIE, REJECT_REASONS, choose_language, translator
from service.console.sessions import SignedIn, find_session, may_dispatch, may_review, same_token
from service.deps import Services, ServicesDep
from service.models import Case
from service.schemas import CaseType, EvidenceRole, Role

HERE: Final = Path(__file__).resolve().parent
SESSION_COOKIE: Final = "sw_session"
#: The sign-in form's CSRF token lives in a cookie of its own until there is a session (double submit).
SIGN_IN_CSRF_COOKIE: Final = "sw_signin_csrf"
PREFIX: Final = "/console"

#: Pages run no inline script or style, load nothing from elsewhere and cannot be framed.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_FILTER_KEYS: Final = ("type", "camera", "zone", "since", "until", "order")


def make_templates() -> Jinja2Templates:
    """The console's Jinja2 templates; autoescaped, so text from cameras shows as text."""
    return Jinja2Templates(directory=HERE / "templates")


def templates_of(request: Request) -> Jinja2Templates:
    """The app's console templates."""
    templates = request.app.state.console_templates
    if not isinstance(templates, Jinja2Templates):
        raise RuntimeError("the app was not built by service.app.create_app")
    return templates


def language(request: Request) -> str:
    """The language of this request's pages."""
    return choose_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def home_of(role: Role) -> str:
    """Where a signed-in `role` starts: the review queue, or the dispatch view for a dispatcher."""
    return f"{PREFIX}/dispatch" if role is Role.DISPATCHER else f"{PREFIX}/"


def signed_in_or_none(request: Request, services: ServicesDep) -> SignedIn | None:
    """The reviewer whose session cookie the request carries, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    # A session of its own: the request's session must start its write transactions fresh (see db.begin_write).
    with services.sessions() as session:
        return find_session(session=session, token=token, now=services.clock())


MaybeSignedInDep = Annotated[SignedIn | None, Depends(signed_in_or_none)]


def page_session(request: Request, signed_in: MaybeSignedInDep) -> SignedIn:
    """The reviewer of a page; without a session the browser goes to the sign-in form."""
    if signed_in is None:
        raise HTTPException(
            status.HTTP_303_SEE_OTHER, "sign in first", headers={"Location": f"{PREFIX}/sign-in", **SECURITY_HEADERS}
        )
    return signed_in


def data_session(signed_in: MaybeSignedInDep) -> SignedIn:
    """The reviewer of an image, a fragment or a post; 401 without a session (no API key accepted here)."""
    if signed_in is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in to the case console first")
    return signed_in


PageUserDep = Annotated[SignedIn, Depends(page_session)]
DataUserDep = Annotated[SignedIn, Depends(data_session)]


def require_dispatcher(user: SignedIn) -> None:
    """403 unless the signed-in key files, dispatches and closes cases (a dispatcher or an admin)."""
    if not may_dispatch(user.principal.role):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only a dispatcher or an admin can use the dispatch view")


def require_reviewer(user: SignedIn) -> None:
    """403 unless the signed-in key decides draft cases (a reviewer or an admin)."""
    if not may_review(user.principal.role):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only a reviewer or an admin can decide cases")


def check_csrf(user: SignedIn, given: str) -> None:
    """403 unless a posted form carries its session's CSRF token."""
    if not same_token(given, user.csrf_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form's CSRF token is missing or wrong: reload the page")


@dataclass(frozen=True, slots=True)
class Filters:
    """The queue's filters as the browser sent them, and the `QueueFilter` they mean."""

    raw: dict[str, str]
    queue: QueueFilter

    @property
    def query(self) -> str:
        """The filters as a query string, for links and the forms that keep them."""
        return urlencode(self.raw)


def parse_time(name: str, value: str) -> datetime | None:
    """A form's time (UTC when it names no zone), None when empty; 422 naming the field when it is no time."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"{name}: not a date and time ({value!r})") from None
    # The form's datetime-local fields carry no zone: the console shows and reads times in UTC.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def parse_filters(params: Mapping[str, str]) -> Filters:
    """The filters among `params` (unknown ones ignored); 422 for a type or time that is not one."""
    raw = {k: params[k].strip() for k in _FILTER_KEYS if params.get(k, "").strip()}
    kind = raw.get("type")
    if kind is not None and kind not in {t.value for t in CaseType}:
        raise HTTPException(422, f"type: not a case type ({kind!r})")
    queue = QueueFilter(
        case_type=None if kind is None else CaseType(kind),
        camera_id=raw.get("camera"),
        zone_id=raw.get("zone"),
        since=parse_time("since", raw.get("since", "")),
        until=parse_time("until", raw.get("until", "")),
        newest_first=raw.get("order") == "newest",
    )
    return Filters(raw=raw, queue=queue)


def scene_index(case: Case) -> int | None:
    """The evidence index of the case's scene image (its first image when none is named the scene)."""
    roles = [e.role for e in case.evidence]
    if EvidenceRole.SCENE.value in roles:
        return roles.index(EvidenceRole.SCENE.value)
    return 0 if roles else None


def duration(case: Case) -> str:
    """How long the object stayed, as `1 h 2 min 3 s`."""
    return seconds_text((case.last_seen_at - case.first_seen_at) / timedelta(seconds=1))


def seconds_text(total: float) -> str:
    """A span of seconds as `1 h 2 min 3 s`, zero parts left out (whole seconds; hours may exceed a day)."""
    seconds = int(total)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    shown_secs = f"{secs} s" if secs or not (hours or minutes) else ""
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", shown_secs]
    return " ".join(p for p in parts if p)


def render(
    request: Request, services: Services, name: str, context: dict[str, Any], *, user: SignedIn | None, code: int = 200
) -> Response:
    """A page in the request's language, with the signed-in reviewer's undo banner and the security headers."""
    lang = language(request)
    undo = None
    if user is not None:
        with services.sessions() as session:
            last = last_decision(session=session, reviewer=user.principal)
            window = timedelta(seconds=services.settings.console_undo_s)
            if last is not None and services.clock() - last.decided_at <= window:
                undo = {"case_id": last.case_id, "decision": last.decision.value}
    full = {
        "t": translator(lang),
        "lang": lang,
        "user": user,
        "home": PREFIX + "/" if user is None else home_of(user.principal.role),
        "may_review": user is not None and may_review(user.principal.role),
        "may_dispatch": user is not None and may_dispatch(user.principal.role),
        "undo": undo,
        "prefix": PREFIX,
        "reasons": REJECT_REASONS,
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        **context,
    }
    return templates_of(request).TemplateResponse(request, name, full, status_code=code, headers=SECURITY_HEADERS)


def set_cookie(response: Response, services: Services, name: str, value: str, *, max_age: int | None) -> None:
    """An HTTP-only, SameSite=Strict cookie for the whole site (Secure when configured)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=services.settings.console_secure_cookie,
        path="/",
    )

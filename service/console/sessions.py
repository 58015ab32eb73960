"""Console sign-in sessions: an API key exchanged for a random token whose SHA-256 the database keeps."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.auth import ROLE_ALLOWS, Principal, hash_key
from service.db import begin_write
from service.models import ApiKey, ConsoleSession
from service.schemas import Role


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The reviewer behind a console request, and the CSRF token that the session's forms carry."""

    principal: Principal
    csrf_token: str


#: Who uses the console: reviewers clear the queue, dispatchers run the loop, admins do both. An agent key only
#: posts cases; a department reports its handling through the API.
CONSOLE_ROLES: Final = frozenset({Role.REVIEWER, Role.DISPATCHER, Role.ADMIN})


def may_sign_in(role: Role) -> bool:
    """Whether a key of `role` may sign in to the console."""
    return role in CONSOLE_ROLES


def may_review(role: Role) -> bool:
    """Whether a signed-in `role` decides draft cases (reviewers and admins)."""
    return role in ROLE_ALLOWS[Role.REVIEWER]


def may_dispatch(role: Role) -> bool:
    """Whether a signed-in `role` files, dispatches and closes cases in the dispatch view (dispatchers, admins)."""
    return role in ROLE_ALLOWS[Role.DISPATCHER]


def start_session(*, session: Session, key: ApiKey, lifetime: timedelta, now: datetime) -> str:
    """A new session for `key`; returns the token for the browser's cookie. Expired sessions go on the way."""
    token = secrets.token_urlsafe(32)
    begin_write(session, lock_key="console-sessions")
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    session.add(
        ConsoleSession(
            token_hash=hash_key(token),
            csrf_token=secrets.token_urlsafe(32),
            key_id=key.id,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    session.commit()
    return token


def find_session(*, session: Session, token: str, now: datetime) -> SignedIn | None:
    """Who holds `token`: None when the session is unknown or expired, or its key was revoked or lost the role."""
    with session.begin():
        row = session.execute(
            select(ConsoleSession, ApiKey)
            .join(ApiKey, ApiKey.id == ConsoleSession.key_id)
            .where(
                ConsoleSession.token_hash == hash_key(token),
                ConsoleSession.expires_at > now,
                ApiKey.revoked_at.is_(None),
            )
        ).first()
    if row is None or not may_sign_in(row.ApiKey.role):
        return None
    key = row.ApiKey
    return SignedIn(Principal(key_id=key.id, name=key.name, role=key.role), row.ConsoleSession.csrf_token)


def end_session(*, session: Session, token: str) -> None:
    """Sign out: the token names no session any more."""
    begin_write(session, lock_key="console-sessions")
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == hash_key(token)))
    session.commit()


def same_token(given: str, expected: str) -> bool:
    """Constant-time comparison of a form's CSRF token with the expected one (an empty one never matches)."""
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())

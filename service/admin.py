"""Administration straight on the database, for the command line: API keys, webhooks and stored cases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from service import crud, webhooks
from service.db import make_engine, make_sessions
from service.migrations import upgrade_engine
from service.schemas import CaseOut, CaseStatus, CaseType, EventKind, KeyCreated, KeyIn, KeyOut, Role
from service.settings import ServiceSettings
from service.views import case_out, key_out
from service.webhook_schemas import WebhookCreated, WebhookIn, WebhookOut


@contextmanager
def open_database(settings: ServiceSettings) -> Iterator[sessionmaker[Session]]:
    """Sessions on the settings' database, migrated to head first; the engine is disposed on exit."""
    engine = make_engine(settings.resolved_database_url)
    try:
        upgrade_engine(engine)
        yield make_sessions(engine)
    finally:
        engine.dispose()


def issue_key(
    settings: ServiceSettings, *, role: Role, name: str | None = None, department_id: str | None = None
) -> KeyCreated:
    """Create and store an API key; the returned `key` is the only copy of the secret.

    Raises:
        pydantic.ValidationError: the name or department id is malformed.
        crud.KeyDepartmentError: a department key without an existing department, or another role with one.
    """
    request = KeyIn(role=role, name=name or f"{role.value}-key", department_id=department_id)
    with open_database(settings) as sessions, sessions() as session:
        key, secret = crud.create_api_key(
            session=session,
            role=request.role,
            name=request.name,
            now=datetime.now(UTC),
            department_id=request.department_id,
        )
        return KeyCreated(**key_out(key).model_dump(), key=secret)


def list_keys(settings: ServiceSettings) -> list[KeyOut]:
    """Every stored key, oldest first, without secrets."""
    with open_database(settings) as sessions, sessions() as session:
        return [key_out(k) for k in crud.list_api_keys(session=session)]


def revoke_key(settings: ServiceSettings, key_id: int) -> KeyOut | None:
    """Revoke a key; None if there is no such key."""
    with open_database(settings) as sessions, sessions() as session:
        key = crud.revoke_api_key(session=session, key_id=key_id, now=datetime.now(UTC))
        return None if key is None else key_out(key)


def add_webhook(
    settings: ServiceSettings, *, url: str, kinds: list[EventKind], secret: str | None = None
) -> WebhookCreated:
    """Register a webhook receiving the events from now on; the returned `secret` is the only time it is shown.

    Raises:
        pydantic.ValidationError: the URL is no http(s) URL, or the secret is too short or too long.
    """
    request = WebhookIn(url=url, kinds=kinds, secret=secret)
    with open_database(settings) as sessions, sessions() as session:
        webhook = webhooks.create_webhook(
            session=session, url=request.url, kinds=request.kinds, secret=request.secret, now=datetime.now(UTC)
        )
        return WebhookCreated(**webhooks.webhook_out(session, webhook).model_dump(), secret=webhook.secret)


def list_webhooks(settings: ServiceSettings) -> list[WebhookOut]:
    """Every webhook and where its delivery stands, without secrets."""
    with open_database(settings) as sessions, sessions() as session:
        return [webhooks.webhook_out(session, w) for w in webhooks.list_webhooks(session=session)]


def remove_webhook(settings: ServiceSettings, webhook_id: int) -> WebhookOut | None:
    """Delete a webhook; None if there is no such webhook."""
    with open_database(settings) as sessions, sessions() as session:
        webhook = webhooks.delete_webhook(session=session, webhook_id=webhook_id)
        return None if webhook is None else webhooks.webhook_out(session, webhook)


def stored_cases(
    settings: ServiceSettings,
    *,
    status: CaseStatus | None = None,
    case_type: CaseType | None = None,
    limit: int = 50,
) -> list[CaseOut]:
    """The newest stored cases, as the API would return them."""
    with open_database(settings) as sessions, sessions() as session:
        rows, _next = crud.list_cases(session=session, status=status, case_type=case_type, limit=limit)
        now = datetime.now(UTC)
        return [case_out(c, now=now) for c in rows]

"""Webhooks on the database: admins' receivers of the case event log, and each receiver's delivery state.

The event log (`case_events`) is the queue. A webhook keeps a cursor in it, so its backlog needs no row per event:
delivering an event moves the cursor to it, and events of kinds the webhook does not want are passed over with
the next wanted one. A process sends an event only while it holds the webhook's lease, taken and given back by
conditional updates, so two service processes sharing a database never send the same event at once. An event
whose result could not be recorded (the process died mid-send, or its lease ran out) is sent again: delivery is
at least once, and the receiver drops an event id it has seen.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import ColumnElement, delete, func, or_, select, true, update
from sqlalchemy.orm import Session

from service.db import begin_write
from service.models import CaseEventRow, Webhook
from service.schemas import EventKind
from service.webhook_schemas import WebhookOut

#: How much of a receiver's answer or error a webhook keeps.
MAX_ERROR_CHARS: Final = 500


def _lock(webhook_id: int) -> str:
    return f"webhook\0{webhook_id}"


def _head(session: Session) -> int:
    """The id of the newest event of the log (0 when it is empty)."""
    return session.scalar(select(func.coalesce(func.max(CaseEventRow.id), 0))) or 0


def create_webhook(
    *, session: Session, url: str, kinds: list[EventKind], now: datetime, secret: str | None = None
) -> Webhook:
    """A new, active webhook that receives the events appended from now on; without `secret`, a random one.

    Appends commit in id order (`service.events`), so an event not yet visible here gets an id above the cursor.
    """
    webhook = Webhook(
        url=url,
        secret=secret or secrets.token_urlsafe(32),
        kinds=[k.value for k in kinds],
        active=True,
        created_at=now,
        cursor=_head(session),
        attempts=0,
    )
    session.add(webhook)
    session.commit()
    return webhook


def list_webhooks(*, session: Session) -> list[Webhook]:
    """Every webhook, oldest first."""
    return list(session.scalars(select(Webhook).order_by(Webhook.id)))


def get_webhook(*, session: Session, webhook_id: int) -> Webhook | None:
    """The webhook, or None."""
    return session.get(Webhook, webhook_id, populate_existing=True)


def set_active(*, session: Session, webhook_id: int, active: bool) -> Webhook | None:
    """Pause or resume a webhook (None if there is none); resuming tries a waiting event at once."""
    begin_write(session, lock_key=_lock(webhook_id))
    values: dict[str, object] = {"active": active}
    if active:
        values["next_attempt_at"] = None
    session.execute(update(Webhook).where(Webhook.id == webhook_id).values(**values))
    session.commit()
    return get_webhook(session=session, webhook_id=webhook_id)


def delete_webhook(*, session: Session, webhook_id: int) -> Webhook | None:
    """Delete a webhook, its secret and cursor with it; returns it as it was, or None if there is none.

    An event being sent to it as this runs still arrives; nothing is sent after.
    """
    begin_write(session, lock_key=_lock(webhook_id))
    webhook = session.get(Webhook, webhook_id, populate_existing=True)
    if webhook is None:
        session.rollback()
        return None
    session.execute(delete(Webhook).where(Webhook.id == webhook_id))
    session.commit()
    return webhook


def _wanted(kinds: list[str]) -> ColumnElement[bool]:
    return CaseEventRow.kind.in_([EventKind(k) for k in kinds]) if kinds else true()


def pending(*, session: Session, webhook: Webhook) -> int:
    """How many events of the wanted kinds wait past the webhook's cursor."""
    count = select(func.count()).where(CaseEventRow.id > webhook.cursor, _wanted(webhook.kinds))
    return session.scalar(count) or 0


def webhook_out(session: Session, webhook: Webhook) -> WebhookOut:
    """The webhook and where its delivery stands, without its secret."""
    return WebhookOut(
        id=webhook.id,
        url=webhook.url,
        kinds=[EventKind(k) for k in webhook.kinds],
        active=webhook.active,
        created_at=webhook.created_at,
        cursor=webhook.cursor,
        pending=pending(session=session, webhook=webhook),
        attempts=webhook.attempts,
        last_attempt_at=webhook.last_attempt_at,
        last_status=webhook.last_status,
        last_error=webhook.last_error,
        next_attempt_at=webhook.next_attempt_at,
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one webhook, sent under the lease `token`."""

    webhook_id: int
    url: str
    secret: str
    token: str
    #: The `case_events.id` of the event: the cursor once it is delivered.
    position: int
    event_id: str
    kind: str
    body: bytes
    #: 1 for the first try of this event, counting up with each failure.
    attempt: int


def _free(now: datetime) -> ColumnElement[bool]:
    """A webhook that is active, not waiting out a retry delay, and whose lease nobody holds."""
    return (
        Webhook.active.is_(True)
        & or_(Webhook.next_attempt_at.is_(None), Webhook.next_attempt_at <= now)
        & or_(Webhook.lease_until.is_(None), Webhook.lease_until < now)
    )


def due_webhooks(*, session: Session, now: datetime) -> list[int]:
    """The ids of the webhooks with events past their cursor that may be tried now (a read, taking no lock)."""
    head = _head(session)
    return list(session.scalars(select(Webhook.id).where(_free(now), Webhook.cursor < head).order_by(Webhook.id)))


def claim_next(*, session: Session, webhook_id: int, now: datetime, lease_s: float) -> Delivery | None:
    """Take the webhook's lease for `lease_s` seconds and return its next wanted event, or None: another
    process holds the lease, the webhook waits out a retry delay or is gone, or no wanted event waits (the cursor
    then moves past the unwanted ones)."""
    begin_write(session, lock_key=_lock(webhook_id))
    try:
        token = uuid.uuid4().hex
        taken = (
            session.connection()
            .execute(
                update(Webhook)
                .where(Webhook.id == webhook_id, _free(now))
                .values(lease_token=token, lease_until=now + timedelta(seconds=lease_s))
                .execution_options(synchronize_session=False)
            )
            .rowcount
        )
        if not taken:
            session.rollback()
            return None
        webhook = session.get_one(Webhook, webhook_id, populate_existing=True)
        # The head is read first: an event appended after it is left for the next claim, never stepped over
        # (each statement sees what has been committed by then, so a head read last could pass a fresh event).
        head = _head(session)
        event = session.scalars(
            select(CaseEventRow)
            .where(CaseEventRow.id > webhook.cursor, CaseEventRow.id <= head, _wanted(webhook.kinds))
            .order_by(CaseEventRow.id)
            .limit(1)
        ).first()
        if event is None:
            webhook.cursor = max(webhook.cursor, head)
            webhook.lease_token = webhook.lease_until = None
            session.commit()
            return None
        delivery = Delivery(
            webhook_id=webhook.id,
            url=webhook.url,
            secret=webhook.secret,
            token=token,
            position=event.id,
            event_id=event.event_id,
            kind=event.kind.value,
            body=json.dumps(event.payload, ensure_ascii=False, separators=(",", ":")).encode(),
            attempt=webhook.attempts + 1,
        )
    except Exception:
        session.rollback()
        raise
    session.commit()
    return delivery


def retry_delay_s(attempt: int, *, base_s: float, max_s: float) -> float:
    """The wait after the `attempt`-th failure of an event: `base_s`, doubling per failure, at most `max_s`."""
    return min(max_s, base_s * 2.0 ** min(attempt - 1, 64))


def record_result(
    *,
    session: Session,
    delivery: Delivery,
    now: datetime,
    status: int | None,
    error: str | None,
    retry_base_s: float,
    retry_max_s: float,
) -> bool:
    """Record how sending `delivery` went and give its lease back: no `error` moves the cursor past the event; an
    error keeps it there and schedules the next try. False when the lease was no longer held (it ran out and
    another process took over, or the webhook was deleted): nothing is recorded then."""
    values: dict[str, object] = {
        "last_attempt_at": now,
        "last_status": status,
        "lease_token": None,
        "lease_until": None,
    }
    if error is None:
        values |= {"cursor": delivery.position, "attempts": 0, "last_error": None, "next_attempt_at": None}
    else:
        delay = retry_delay_s(delivery.attempt, base_s=retry_base_s, max_s=retry_max_s)
        values |= {
            "attempts": delivery.attempt,
            "last_error": error[:MAX_ERROR_CHARS],
            "next_attempt_at": now + timedelta(seconds=delay),
        }
    begin_write(session, lock_key=_lock(delivery.webhook_id))
    held = (
        session.connection()
        .execute(
            update(Webhook)
            .where(Webhook.id == delivery.webhook_id, Webhook.lease_token == delivery.token)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        .rowcount
    )
    session.commit()
    return bool(held)


def release(*, session: Session, delivery: Delivery) -> None:
    """Give the lease of `delivery` back without a result (the process is stopping mid-send): the event is sent
    again, by whichever process comes first."""
    begin_write(session, lock_key=_lock(delivery.webhook_id))
    session.execute(
        update(Webhook)
        .where(Webhook.id == delivery.webhook_id, Webhook.lease_token == delivery.token)
        .values(lease_token=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()

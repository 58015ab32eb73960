"""`/api/v1/webhooks`: admins register, inspect, pause and remove receivers of the case event log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from service import webhooks
from service.deps import AdminDep, ServicesDep, SessionDep
from service.routes import API_PREFIX
from service.schemas import MAX_ID, Problem
from service.webhook_schemas import WebhookCreated, WebhookIn, WebhookOut, WebhookPatch

router = APIRouter(prefix=f"{API_PREFIX}/webhooks", tags=["webhooks"])

_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (400, 401, 403, 404, 422, 500)}

WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="The webhook's id.")]


@router.post("", status_code=201, responses=_ERRORS)
def create_webhook(admin: AdminDep, services: ServicesDep, session: SessionDep, body: WebhookIn) -> WebhookCreated:
    """A new receiver of the events appended from now on; its signing secret is in this response only."""
    webhook = webhooks.create_webhook(
        session=session, url=body.url, kinds=body.kinds, secret=body.secret, now=services.clock()
    )
    return WebhookCreated(**webhooks.webhook_out(session, webhook).model_dump(), secret=webhook.secret)


@router.get("", responses=_ERRORS)
def list_webhooks(admin: AdminDep, session: SessionDep) -> list[WebhookOut]:
    """Every webhook and where its delivery stands, without secrets."""
    return [webhooks.webhook_out(session, w) for w in webhooks.list_webhooks(session=session)]


@router.get("/{webhook_id}", responses=_ERRORS)
def get_webhook(admin: AdminDep, session: SessionDep, webhook_id: WebhookId) -> WebhookOut:
    """One webhook: its cursor in the event log, the events waiting, the last error and the next attempt."""
    webhook = webhooks.get_webhook(session=session, webhook_id=webhook_id)
    if webhook is None:
        raise HTTPException(404, f"no webhook {webhook_id}")
    return webhooks.webhook_out(session, webhook)


@router.patch("/{webhook_id}", responses=_ERRORS)
def patch_webhook(admin: AdminDep, session: SessionDep, webhook_id: WebhookId, body: WebhookPatch) -> WebhookOut:
    """Pause a webhook (its events wait) or resume it (a waiting event is tried at once)."""
    webhook = webhooks.set_active(session=session, webhook_id=webhook_id, active=body.active)
    if webhook is None:
        raise HTTPException(404, f"no webhook {webhook_id}")
    return webhooks.webhook_out(session, webhook)


@router.delete("/{webhook_id}", responses=_ERRORS)
def delete_webhook(admin: AdminDep, session: SessionDep, webhook_id: WebhookId) -> WebhookOut:
    """Remove a webhook and its secret; nothing more is sent to it."""
    webhook = webhooks.delete_webhook(session=session, webhook_id=webhook_id)
    if webhook is None:
        raise HTTPException(404, f"no webhook {webhook_id}")
    return webhooks.webhook_out(session, webhook)

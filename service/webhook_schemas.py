"""The wire schema of the webhooks API: receivers of the case event log and where their delivery stands."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
)

from service.schemas import PRINTABLE, EventKind, printable

#: The longest receiver URL a webhook may name.
MAX_URL_LENGTH = 2048


#: An http(s) URL with a host and no user or password, as an ECMA and a Python regex (the OpenAPI document states
#: it; the port's range is checked besides).
RECEIVER_URL = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@\x00-\x20\x7f]+([/?#][^\x00-\x1f\x7f]*)?$"


def _receiver_url(value: str) -> str:
    if not re.match(r"^[Hh][Tt][Tt][Pp][Ss]?://", value):
        raise ValueError("must be an http:// or https:// URL")
    if not re.match(RECEIVER_URL, value):
        if "@" in value.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError("must not carry a user or password: the signature is what authenticates the service")
        raise ValueError("must name a host, without spaces")
    parts = urlsplit(value)
    if not parts.hostname:
        raise ValueError("must name a host")
    try:
        parts.port  # noqa: B018  # raises for a port that is no number or out of range
    except ValueError as exc:
        raise ValueError(f"has an invalid port: {exc}") from None
    return value


#: The http(s) URL of a webhook receiver.
ReceiverUrl = Annotated[
    str,
    Field(min_length=1, max_length=MAX_URL_LENGTH, json_schema_extra={"pattern": RECEIVER_URL}),
    AfterValidator(printable),
    AfterValidator(_receiver_url),
]
#: A webhook's signing secret when the admin chooses it.
WebhookSecret = Annotated[
    str,
    Field(min_length=16, max_length=256, json_schema_extra={"pattern": PRINTABLE}),
    AfterValidator(printable),
]


class WebhookIn(BaseModel):
    """The body of `POST /api/v1/webhooks`: a receiver of the case event log."""

    model_config = ConfigDict(extra="forbid")

    url: ReceiverUrl = Field(description="Where each event is POSTed, as JSON: an http:// or https:// URL.")
    secret: WebhookSecret | None = Field(
        default=None,
        description="The HMAC-SHA256 key of `X-Streetwatch-Signature`; default: a new random one, shown only in "
        "the response to this request.",
    )
    kinds: list[EventKind] = Field(
        default_factory=list, max_length=len(EventKind), description="The event kinds wanted; empty: every kind."
    )

    @field_validator("kinds")
    @classmethod
    def _unique(cls, v: list[EventKind]) -> list[EventKind]:
        return list(dict.fromkeys(v))


class WebhookPatch(BaseModel):
    """The body of `PATCH /api/v1/webhooks/{id}`."""

    model_config = ConfigDict(extra="forbid")

    active: StrictBool = Field(
        description="false pauses delivery (events wait, none are lost); true resumes it at once, without "
        "waiting out a retry delay."
    )


class WebhookOut(BaseModel):
    """A webhook and where its delivery stands; the secret is never shown after creation."""

    id: int
    url: str
    kinds: list[EventKind] = Field(description="The event kinds delivered; empty: every kind.")
    active: bool
    created_at: datetime
    cursor: int = Field(description="The id of the last event of the log delivered (or skipped as unwanted).")
    pending: int = Field(description="Events of the wanted kinds past the cursor, waiting for delivery.")
    attempts: int = Field(description="Failed attempts at the event after the cursor since its last success.")
    last_attempt_at: datetime | None
    last_status: int | None = Field(description="The HTTP status of the last attempt; null when it got none.")
    last_error: str | None = Field(description="Why the last attempt failed; null after a success.")
    next_attempt_at: datetime | None = Field(description="When a failed event is tried again; null when not waiting.")


class WebhookCreated(WebhookOut):
    """A new webhook, with its signing secret shown this one time."""

    secret: str

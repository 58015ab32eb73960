"""Deliver draft cases to the case service over HTTP: one attempt per call, its outcome classified."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import httpx
from pydantic import TypeAdapter, ValidationError

from service.schemas import CaseIn, CasePosted, VerificationOutcome, VerificationPosted, VerificationTask
from streetwatch.core import DraftCase, EvidenceImage

#: Answers about the endpoint rather than the case (a wrong URL, a proxy in front of a service that is starting), or
#: about the moment (timeout, rate limit): the same case may be accepted later.
RETRY_STATUSES: Final = frozenset({404, 408, 429})
#: Answers about the agent itself (a wrong or revoked key, a key without the agent role): no case can arrive until an
#: operator fixes the key, so retrying only hides the problem.
REFUSED_STATUSES: Final = frozenset({401, 403})


class CaseRejectedError(RuntimeError):
    """The case service refused this case for good (a 4xx about the case itself); retrying cannot help."""


class DeliveryError(ConnectionError):
    """A case did not arrive this time (no connection, 5xx, or one of RETRY_STATUSES); a later try may succeed."""


class AgentRefusedError(DeliveryError):
    """The case service refused the agent's API key (401/403): the case is fine, but nothing arrives until an
    operator fixes the key."""


def case_payload(draft: DraftCase) -> CaseIn:
    """The wire form of a draft case's `case` part."""
    v = draft.violation
    return CaseIn(
        camera_id=v.camera_id,
        zone_id=v.zone_id,
        type=v.type,
        first_seen_at=v.first_seen_at,
        detected_at=v.detected_at,
        bbox=v.xyxy,
        confidence=min(1.0, max(0.0, v.confidence)),
        labels=list(draft.labels),
        model_version=draft.model_version,
    )


@dataclass(frozen=True, slots=True)
class OutgoingCase:
    """A case as it is sent: the violation's key (the Idempotency-Key), the `case` JSON and the evidence."""

    key: str
    camera_id: str
    case_json: str
    evidence: tuple[EvidenceImage, ...]

    @classmethod
    def of(cls, draft: DraftCase) -> OutgoingCase:
        """The outgoing form of a draft case."""
        v = draft.violation
        return cls(v.key, v.camera_id, case_payload(draft).model_dump_json(), draft.evidence)


@dataclass(frozen=True, slots=True)
class OutgoingVerification:
    """What the camera saw at a handled case's spot, as it is sent; `key` (the Idempotency-Key) names the case's
    handling, so one handling gets one verification however often it is sent."""

    key: str
    case_id: int
    camera_id: str
    outcome: VerificationOutcome
    observed_at: datetime
    after: EvidenceImage


_TASKS: Final = TypeAdapter(list[VerificationTask])


class CaseClient:
    """Posts cases to `POST /api/v1/cases` with the violation's key as the Idempotency-Key.

    The key makes a repeated post of a case that did arrive harmless: the service answers 200 with the case
    it already has. Retrying is the outbox's job, not this client's.
    """

    def __init__(self, base_url: str, api_key: str, *, timeout_s: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s
        )

    def close(self) -> None:
        """Release the HTTP connections."""
        self._http.close()

    def send(self, case: OutgoingCase) -> CasePosted:
        """Deliver one case once; returns what the service did with it (created, merged or replayed).

        Raises CaseRejectedError when the service refuses it for good, DeliveryError when a retry may succeed.
        """
        files = [("evidence", (e.name, e.data, e.content_type)) for e in case.evidence]
        try:
            resp = self._http.post(
                "/api/v1/cases", data={"case": case.case_json}, files=files, headers={"Idempotency-Key": case.key}
            )
        except httpx.TransportError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code in (200, 201):
            try:
                return CasePosted.model_validate_json(resp.content)
            except ValidationError as exc:
                raise DeliveryError(f"case service answered {resp.status_code} with an unknown body: {exc}") from exc
        raise _failure(resp)

    def send_verification(self, verification: OutgoingVerification) -> VerificationPosted | None:
        """Deliver one verification once; returns what the service recorded, or None when the case no longer awaits
        it (409: a reviewer decided without the camera, or another look was recorded first), which nothing can fix.

        Raises CaseRejectedError, AgentRefusedError and DeliveryError as `send` does.
        """
        after = verification.after
        try:
            resp = self._http.post(
                f"/api/v1/cases/{verification.case_id}/verification",
                data={"outcome": verification.outcome.value, "observed_at": verification.observed_at.isoformat()},
                files=[("after", (after.name, after.data, after.content_type))],
                headers={"Idempotency-Key": verification.key},
            )
        except httpx.TransportError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code == 409:
            return None
        if resp.status_code in (200, 201):
            try:
                return VerificationPosted.model_validate_json(resp.content)
            except ValidationError as exc:
                raise DeliveryError(f"case service answered {resp.status_code} with an unknown body: {exc}") from exc
        raise _failure(resp)

    def verifications(self, camera_ids: Sequence[str]) -> list[VerificationTask]:
        """The handled cases of these cameras that await the camera's look.

        Raises AgentRefusedError when the service refuses the key, DeliveryError for anything else.
        """
        try:
            resp = self._http.get("/api/v1/verifications", params=[("camera_id", c) for c in camera_ids])
        except httpx.TransportError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code == 200:
            try:
                return _TASKS.validate_json(resp.content)
            except ValidationError as exc:
                raise DeliveryError(f"case service answered 200 with an unknown body: {exc}") from exc
        if resp.status_code in REFUSED_STATUSES:
            raise _failure(resp)
        raise DeliveryError(f"GET {resp.url} answered {resp.status_code}: {_detail(resp)}")

    def ping(self) -> None:
        """Whether the case service answers at all; raises DeliveryError when it does not.

        `GET /healthz` answers 200, or 503 while its database is down: either is the case service answering.
        Anything else (a 404 from a wrong base URL, a proxy's 502) is not, yet. A short timeout: this only asks
        whether the service is there, and the caller's bound on waiting for it should not be overrun by one
        silent host.
        """
        try:
            resp = self._http.get("/healthz", timeout=5.0)
        except httpx.TransportError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code not in (200, 503):
            raise DeliveryError(f"GET {resp.url} answered {resp.status_code}, not the case service's health check")


def _failure(resp: httpx.Response) -> DeliveryError | CaseRejectedError:
    """What a post's answer other than success means for the item sent: the key refused, the item refused for
    good, or a failure a later try may not meet."""
    if resp.status_code in REFUSED_STATUSES:
        return AgentRefusedError(f"the case service refused the API key ({resp.status_code}: {_detail(resp)})")
    if resp.status_code < 500 and resp.status_code not in RETRY_STATUSES:
        return CaseRejectedError(f"case service answered {resp.status_code}: {resp.text[:500]}")
    return DeliveryError(f"case service answered {resp.status_code}")


def _detail(resp: httpx.Response) -> str:
    """The `detail` of the service's JSON error, or the start of whatever else it answered."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200] or resp.reason_phrase
    return str(body.get("detail", body))[:200] if isinstance(body, dict) else str(body)[:200]

"""Deliver draft cases to the case service over HTTP, retrying what can be retried."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from service.schemas import CaseIn
from streetwatch.core import DraftCase

log = logging.getLogger(__name__)


class CaseRejectedError(RuntimeError):
    """The case service refused a case for good (a 4xx other than 408/429); retrying cannot help."""


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


class CaseClient:
    """Posts draft cases to `POST /api/v1/cases` with the violation's key as the Idempotency-Key.

    Connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff up to `attempts`
    times; the idempotency key makes a retry of a case that did arrive harmless.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 30.0,
        attempts: int = 5,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s
        )
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._sleep = sleep

    def close(self) -> None:
        """Release the HTTP connections."""
        self._http.close()

    def post(self, draft: DraftCase) -> dict[str, Any]:
        """Deliver one case; returns the service's JSON for it (new, repeated or merged)."""
        payload = case_payload(draft).model_dump_json()
        files = [("evidence", (e.name, e.data, e.content_type)) for e in draft.evidence]
        headers = {"Idempotency-Key": draft.violation.key}
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._http.post("/api/v1/cases", data={"case": payload}, files=files, headers=headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code in (200, 201):
                    body: dict[str, Any] = resp.json()
                    return body
                if resp.status_code < 500 and resp.status_code not in (408, 429):
                    raise CaseRejectedError(f"case service answered {resp.status_code}: {resp.text[:500]}")
                problem = f"HTTP {resp.status_code}"
            if attempt == self.attempts:
                raise ConnectionError(f"case {draft.violation.key} not delivered after {attempt} attempts: {problem}")
            delay = self.backoff_s * 2 ** (attempt - 1)
            log.warning("camera %s: delivery failed (%s); retrying in %.1fs", draft.violation.camera_id, problem, delay)
            self._sleep(delay)

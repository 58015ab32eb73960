"""Webhook signatures: how the service signs an event body, and how a receiver checks it (standard library only)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

#: The header that carries the signature, as `sha256=<hex digest>`.
SIGNATURE_HEADER: Final = "X-Streetwatch-Signature"
_SCHEME: Final = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The `X-Streetwatch-Signature` value of `body`: `sha256=` and the hex HMAC-SHA256 of the raw body."""
    return _SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, signature: str | None) -> bool:
    """Whether `signature` (the header's value) is the service's signature of `body` under `secret`.

    Give the body exactly as received, before any JSON parsing: a re-serialised body has other bytes. The
    comparison takes the same time wherever the first wrong character is.
    """
    if not signature or not signature.startswith(_SCHEME):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), signature.strip().encode())

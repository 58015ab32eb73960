"""A write with a missing or unknown key hears 401 before the service reads its body."""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from service.embedded import EmbeddedService
from service.settings import ServiceSettings

DECLARED = 5_000_000  # bytes the client announces but never sends


def first_reply(url: str, authorization: str | None, wait_s: float) -> bytes:
    """Send a case post's headers and 1 KB of its declared 5 MB body; return what the service says within `wait_s`."""
    parts = urlsplit(url)
    head = [
        "POST /api/v1/cases HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: multipart/form-data; boundary=xyz",
        f"Content-Length: {DECLARED}",
        "Idempotency-Key: early-auth",
    ]
    if authorization is not None:
        head.append(f"Authorization: {authorization}")
    with socket.create_connection((parts.hostname, parts.port), timeout=wait_s) as conn:
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"--xyz\r\n" + b"x" * 1024)
        reply = b""
        try:
            while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < _length(reply):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except TimeoutError:
            pass
        return reply


def _length(reply: bytes) -> int:
    for line in reply.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [(None, b"missing API key"), ("Bearer sw_not-a-key", b"unknown or revoked API key"), ("Basic Zm9v", b"missing")],
)
def test_unauthenticated_upload_is_refused_without_reading_it(
    make_settings: Callable[..., ServiceSettings], authorization: str | None, detail: bytes
) -> None:
    with EmbeddedService(make_settings()) as svc:
        reply = first_reply(svc.url, authorization, wait_s=5)
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
    assert detail in reply and b"www-authenticate: Bearer" in reply.lower().replace(
        b"www-authenticate: bearer", b"www-authenticate: Bearer"
    )


def test_an_agent_upload_is_read(make_settings: Callable[..., ServiceSettings]) -> None:
    """The contrast: with a valid key the service waits for the rest of the body instead of answering."""
    with EmbeddedService(make_settings()) as svc:
        assert first_reply(svc.url, f"Bearer {svc.api_key}", wait_s=1) == b""

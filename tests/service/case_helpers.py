"""Builders for the service tests: real tiny images, case bodies and multipart posts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
from fastapi.testclient import TestClient

from service.settings import ServiceSettings

T0 = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)


class Clock:
    """Wall time the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def jpeg(seed: int = 0, size: int = 16) -> bytes:
    """A real JPEG of random pixels; different seeds give different bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", pixels)
    assert ok
    return buf.tobytes()


def png(seed: int = 0, size: int = 16) -> bytes:
    """A real PNG of random pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".png", pixels)
    assert ok
    return buf.tobytes()


def case_body(*, detected_after_s: float = 180.0, **overrides: Any) -> dict[str, Any]:
    """A valid `case` part; `detected_after_s` shifts detection (and first sight, 3 min earlier) from T0."""
    detected = T0 + timedelta(seconds=detected_after_s)
    body: dict[str, Any] = {
        "camera_id": "cam-curb-01",
        "zone_id": "near-curb",
        "type": "illegal_parking",
        "first_seen_at": (detected - timedelta(minutes=3)).isoformat(),
        "detected_at": detected.isoformat(),
        "bbox": [0.10, 0.50, 0.40, 0.80],
        "confidence": 0.87,
        "labels": ["car"],
        "model_version": "streetwatch-test-1",
    }
    body.update(overrides)
    return body


def bearer(key: str) -> dict[str, str]:
    """The auth header for `key`."""
    return {"Authorization": f"Bearer {key}"}


def multipart(
    body: dict[str, Any] | str, images: Sequence[bytes | tuple[str, bytes, str]]
) -> tuple[dict[str, str], list[tuple[str, tuple[str, bytes, str]]]]:
    """`data` and `files` for a case post; an image is bytes (sent as image/jpeg) or (filename, bytes, type)."""
    files = []
    for i, image in enumerate(images):
        part = image if isinstance(image, tuple) else (f"evidence-{i}.jpg", image, "image/jpeg")
        files.append(("evidence", part))
    return {"case": body if isinstance(body, str) else json.dumps(body)}, files


def post_case(
    client: TestClient | httpx.Client,
    key: str,
    *,
    idempotency_key: str | None = "violation-1",
    body: dict[str, Any] | str | None = None,
    images: Sequence[bytes | tuple[str, bytes, str]] | None = None,
) -> httpx.Response:
    """POST /api/v1/cases as an agent would."""
    headers = bearer(key)
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    data, files = multipart(case_body() if body is None else body, [jpeg()] if images is None else images)
    return client.post("/api/v1/cases", data=data, files=files, headers=headers)


@contextmanager
def serve(settings: ServiceSettings, log: Path) -> Iterator[str]:
    """`streetwatch serve` on the settings' database in a process of its own, as an operator runs it; yields its
    base URL once /healthz answers, and stops it afterwards. Its output goes to `log`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    streetwatch = str(Path(sys.executable).parent / "streetwatch")
    args = [streetwatch, "serve", "--state-dir", str(settings.state_dir), "--port", str(port)]
    args += ["--database-url", settings.resolved_database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETWATCH_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the case service did not answer /healthz within 60 s"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

"""Builders for the console tests: signing in as a browser would, and reading a page's CSRF token."""

from __future__ import annotations

import re

import httpx
from case_helpers import case_body, jpeg, post_case
from fastapi.testclient import TestClient

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: str) -> str:
    """The CSRF token in a page's forms."""
    found = _CSRF.search(page)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> httpx.Response:
    """Fill in and send the sign-in form with `key`; the client keeps the cookies it gets."""
    form = client.get("/console/sign-in")
    assert form.status_code == 200, form.text
    return client.post("/console/sign-in", data={"key": key, "csrf": csrf_of(form.text)}, follow_redirects=False)


def post_roles(client: TestClient, agent: str, *, key: str, seed: int, **overrides: object) -> int:
    """Post a case whose evidence the pipeline named scene, scene-clean, crop and first-seen; returns its id."""
    roles = ("scene", "scene-clean", "crop", "first-seen")
    images = [(f"{role}.jpg", jpeg(seed * 10 + i), "image/jpeg") for i, role in enumerate(roles)]
    response = post_case(client, agent, idempotency_key=key, body=case_body(**overrides), images=images)
    assert response.status_code == 201, response.text
    case_id = response.json()["id"]
    assert isinstance(case_id, int)
    return case_id

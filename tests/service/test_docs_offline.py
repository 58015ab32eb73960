"""/docs and /redoc work on a network without internet: every asset they load comes from the service itself."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("page", "script"), [("/docs", "SwaggerUIBundle"), ("/redoc", "Redoc")])
def test_docs_load_nothing_from_elsewhere(client: TestClient, page: str, script: str) -> None:
    html = client.get(page)
    assert html.status_code == 200
    assert "/openapi.json" in html.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    assert assets, "the page loads no script or style at all"
    assert all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    scripts = [client.get(a) for a in assets if a.endswith(".js")]
    assert scripts
    assert all(s.status_code == 200 for s in scripts)
    assert any(script in s.text for s in scripts)
    assert "fonts.googleapis.com" not in html.text

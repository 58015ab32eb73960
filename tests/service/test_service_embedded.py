"""EmbeddedService: the real app on a loopback port in a background thread, for a pipeline in the same process."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from case_helpers import bearer, post_case
from pydantic import SecretStr

from service.admin import list_keys
from service.embedded import EmbeddedService
from service.settings import ServiceSettings


def test_serves_over_http_with_a_process_only_agent_key(make_settings: Callable[..., ServiceSettings]) -> None:
    settings = make_settings()
    with EmbeddedService(settings) as svc, httpx.Client(base_url=svc.url) as http:
        assert svc.url.startswith("http://127.0.0.1:")
        assert http.get("/healthz").json()["status"] == "ok"
        created = post_case(http, svc.api_key)
        assert created.status_code == 201, created.text
        assert http.get("/api/v1/cases", headers=bearer(svc.api_key)).status_code == 403
        url, key = svc.url, svc.api_key
    assert list_keys(settings) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)
    with pytest.raises(RuntimeError, match="not running"):
        _ = svc.url
    # The key died with the service.
    with EmbeddedService(settings) as again, httpx.Client(base_url=again.url) as http:
        assert http.get("/api/v1/cases", headers=bearer(key)).status_code == 401
        assert post_case(http, key, idempotency_key="later").status_code == 401


def test_uses_the_given_bootstrap_key_and_runs_side_by_side(make_settings: Callable[..., ServiceSettings]) -> None:
    settings = make_settings(bootstrap_agent_key=SecretStr("sw_pipeline-key"))
    with EmbeddedService(settings) as one, EmbeddedService(settings) as two:
        assert one.api_key == two.api_key == "sw_pipeline-key"
        assert one.url != two.url
        with httpx.Client(base_url=one.url) as http:
            assert post_case(http, "sw_pipeline-key").status_code == 201
        with httpx.Client(base_url=two.url) as http:
            assert post_case(http, "sw_pipeline-key").status_code == 200

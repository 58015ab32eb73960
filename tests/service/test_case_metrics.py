"""Prometheus metrics: cases by type and status, review latency, request latency; one registry per app."""

from __future__ import annotations

from collections.abc import Callable

from case_helpers import Clock, bearer, case_body, post_case
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.schemas import Role
from service.settings import ServiceSettings


def scrape(client: TestClient, key: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics by (name, labels)."""
    got = client.get("/metrics", headers=bearer(key))
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(got.text)
        for s in family.samples
    }


def test_metrics_count_cases_and_time_reviews_and_requests(
    client: TestClient, keys: dict[Role, str], clock: Clock
) -> None:
    agent, reviewer = keys[Role.AGENT], keys[Role.REVIEWER]
    parking = post_case(client, agent, idempotency_key="a").json()
    post_case(client, agent, idempotency_key="a")
    post_case(client, agent, idempotency_key="b", body=case_body(detected_after_s=600))
    post_case(client, agent, idempotency_key="c", body=case_body(type="piled_litter"))
    clock.advance(90)
    client.post(f"/api/v1/cases/{parking['id']}/review", json={"decision": "confirm"}, headers=bearer(reviewer))

    samples = scrape(client, agent)
    assert samples[("streetwatch_cases", frozenset({("type", "illegal_parking"), ("status", "confirmed")}))] == 1
    assert samples[("streetwatch_cases", frozenset({("type", "piled_litter"), ("status", "draft")}))] == 1
    for outcome, n in [("created", 2), ("replayed", 1), ("merged", 1)]:
        assert samples[("streetwatch_case_posts_total", frozenset({("outcome", outcome)}))] == n
    review = frozenset({("decision", "confirm")})
    assert samples[("streetwatch_review_latency_seconds_count", review)] == 1
    # Created at the clock's start, decided 90 s later.
    assert samples[("streetwatch_review_latency_seconds_sum", review)] == 90
    posted = frozenset({("method", "POST"), ("route", "/api/v1/cases"), ("status", "201")})
    assert samples[("streetwatch_http_request_duration_seconds_count", posted)] == 2


def test_each_app_has_its_own_registry(
    make_settings: Callable[..., ServiceSettings],
    make_client: Callable[[ServiceSettings], TestClient],
) -> None:
    first = make_client(make_settings(bootstrap_agent_key="sw_scraper"))
    second = make_client(make_settings(merge_iou=0.5, bootstrap_agent_key="sw_scraper"))
    first.get("/healthz")
    first.get("/healthz")
    second.get("/healthz")
    health = frozenset({("method", "GET"), ("route", "/healthz"), ("status", "200")})
    assert scrape(first, "sw_scraper")[("streetwatch_http_request_duration_seconds_count", health)] == 2
    assert scrape(second, "sw_scraper")[("streetwatch_http_request_duration_seconds_count", health)] == 1


def test_metrics_need_a_key_unless_open(
    make_settings: Callable[..., ServiceSettings], make_client: Callable[[ServiceSettings], TestClient]
) -> None:
    guarded = make_client(make_settings(bootstrap_agent_key="sw_scraper"))
    refused = guarded.get("/metrics")
    assert refused.status_code == 401 and refused.json()["detail"].startswith("missing API key")
    assert guarded.get("/metrics", headers=bearer("sw_wrong")).status_code == 401
    assert guarded.get("/metrics", headers=bearer("sw_scraper")).status_code == 200
    assert make_client(make_settings(metrics_access="open")).get("/metrics").status_code == 200

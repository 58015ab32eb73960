"""Eight agents posting one violation at once, over real HTTP to two service instances, make one case."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack

import httpx
import pytest
from case_helpers import bearer, case_body, jpeg, multipart

from service.admin import stored_cases
from service.embedded import EmbeddedService
from service.settings import ServiceSettings

AGENTS = 8


def _post_all_at_once(urls: list[str], key: str, requests: list[tuple[str, dict[str, object]]]) -> list[httpx.Response]:
    """Send each (idempotency key, case) from its own thread and connection, released together by a barrier."""
    barrier = threading.Barrier(len(requests))
    responses: list[httpx.Response | None] = [None] * len(requests)
    spans: list[tuple[float, float]] = [(0.0, 0.0)] * len(requests)

    def agent(i: int) -> None:
        idempotency_key, body = requests[i]
        data, files = multipart(body, [jpeg(i)])
        headers = bearer(key) | {"Idempotency-Key": idempotency_key}
        with httpx.Client(base_url=urls[i % len(urls)], timeout=60) as http:
            http.get("/healthz")  # connect before the barrier, so the posts themselves start together
            barrier.wait()
            start = time.perf_counter()
            responses[i] = http.post("/api/v1/cases", data=data, files=files, headers=headers)
            spans[i] = (start, time.perf_counter())

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # All posts were in flight together: the last one started before the first one finished.
    assert max(s for s, _ in spans) < min(e for _, e in spans)
    assert all(r is not None for r in responses)
    return [r for r in responses if r is not None]


@pytest.mark.parametrize("same_key", [True, False], ids=["same idempotency key", "different keys, overlapping boxes"])
def test_eight_agents_posting_one_violation_make_one_case(
    make_settings: Callable[..., ServiceSettings], same_key: bool
) -> None:
    # Every sighting keeps its image here, so a lost write would show in the evidence count.
    settings = make_settings(bootstrap_agent_key="sw_concurrency-test", evidence_sightings=AGENTS)
    # One key: retries of one post racing each other (the same case). Different keys: re-sightings.
    requests = [
        ("violation-1", case_body())
        if same_key
        else (
            f"agent-{i}/violation-1",
            case_body(bbox=[0.10 + i * 0.005, 0.50, 0.40 + i * 0.005, 0.80], detected_after_s=180 + i),
        )
        for i in range(AGENTS)
    ]
    with ExitStack() as stack:
        # Two app instances with their own engines and pools stand in for two service processes.
        services = [stack.enter_context(EmbeddedService(settings)) for _ in range(2)]
        responses = _post_all_at_once([s.url for s in services], "sw_concurrency-test", requests)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (AGENTS - 1) + [201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    (case,) = stored_cases(settings)
    if same_key:
        assert (case.sightings, case.evidence_count) == (1, 1)
        assert sorted(r.json()["outcome"] for r in responses) == ["created"] + ["replayed"] * (AGENTS - 1)
    else:
        assert (case.sightings, case.evidence_count) == (AGENTS, AGENTS)
        assert sorted(r.json()["outcome"] for r in responses) == ["created"] + ["merged"] * (AGENTS - 1)

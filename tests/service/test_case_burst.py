"""A burst: 200 agents post re-sightings of one violation at once to a real `streetwatch serve` process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from case_helpers import bearer, case_body, jpeg, multipart, serve

from service import crud
from service.admin import open_database, stored_cases
from service.schemas import Role
from service.settings import ServiceSettings

AGENTS = 200
#: Every post is retried once with its key (a lost answer), so 100 sightings arrive as 200 posts.
SIGHTINGS = AGENTS // 2
DEADLINE_S = 30.0

log = logging.getLogger(__name__)


@pytest.fixture
def served(make_settings: Callable[..., ServiceSettings], tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`streetwatch serve` on the test database in a process of its own; yields its URL and an agent key."""
    settings = make_settings()
    with open_database(settings) as sessions, sessions() as session:
        _, key = crud.create_api_key(session=session, role=Role.AGENT, name="burst", now=datetime.now(UTC))
    with serve(settings, tmp_path / "service.log") as url:
        yield url, key


async def _burst(url: str, key: str) -> list[tuple[int, float, str]]:
    """Post every sighting twice, all at once, each on a connection of its own; (status, seconds, body) each."""
    limits = httpx.Limits(max_connections=AGENTS, max_keepalive_connections=AGENTS)
    async with httpx.AsyncClient(base_url=url, timeout=3 * DEADLINE_S, limits=limits) as http:

        async def post(i: int) -> tuple[int, float, str]:
            n = i % SIGHTINGS
            body = case_body(bbox=[0.10 + n * 0.001, 0.50, 0.40 + n * 0.001, 0.80], detected_after_s=180 + n)
            data, files = multipart(body, [jpeg(n)])
            headers = bearer(key) | {"Idempotency-Key": f"agent-{n}/violation-1"}
            start = time.perf_counter()
            try:
                resp = await http.post("/api/v1/cases", data=data, files=files, headers=headers)
            except httpx.TimeoutException:
                return 0, time.perf_counter() - start, "timed out"
            return resp.status_code, time.perf_counter() - start, resp.text

        return await asyncio.gather(*(post(i) for i in range(AGENTS)))


@pytest.mark.slow
def test_a_burst_of_re_sightings_of_one_violation_is_answered_in_time(
    served: tuple[str, str], settings: ServiceSettings
) -> None:
    url, key = served
    start = time.perf_counter()
    results = asyncio.run(_burst(url, key))
    elapsed = time.perf_counter() - start

    statuses = sorted(s for s, _, _ in results)
    latencies = sorted(t for _, t, _ in results)
    summary = (
        f"{elapsed:.1f} s for all; p50 {latencies[len(latencies) // 2]:.1f} s, max {latencies[-1]:.1f} s; "
        f"statuses {dict((s, statuses.count(s)) for s in set(statuses))}; "
        f"e.g. {next((b for s, _, b in results if s not in (200, 201)), '')[:200]}"
    )
    log.info("burst of %d posts: %s", AGENTS, summary)
    assert statuses == [200] * (AGENTS - 1) + [201], summary
    assert elapsed < DEADLINE_S, summary
    (case,) = stored_cases(settings)
    assert case.sightings == SIGHTINGS

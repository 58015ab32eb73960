"""What an agent learns from its posts: its case's id, what the post did and the sighting count; nothing of a
case's review, and nothing through another agent's Idempotency-Key."""

from __future__ import annotations

from collections.abc import Callable

from case_helpers import Clock, bearer, case_body, post_case
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.admin import open_database
from service.app import create_app
from service.db import make_engine
from service.migrations import downgrade_engine, upgrade_engine
from service.models import Sighting
from service.schemas import Role
from service.settings import ServiceSettings

ANSWER_FIELDS = {"id", "outcome", "sightings"}


def second_agent(client: TestClient, admin: str) -> str:
    created = client.post("/api/v1/keys", json={"role": "agent", "name": "agent-b"}, headers=bearer(admin))
    assert created.status_code == 201, created.text
    key: str = created.json()["key"]
    return key


def review(client: TestClient, reviewer: str, case_id: int) -> None:
    decided = client.post(
        f"/api/v1/cases/{case_id}/review",
        json={"decision": "confirm", "reason": "blocks the bus lane, owner is J. Doe"},
        headers=bearer(reviewer),
    )
    assert decided.status_code == 200, decided.text


def test_another_agents_key_makes_a_case_of_its_own(client: TestClient, keys: dict[Role, str]) -> None:
    agent_a, agent_b = keys[Role.AGENT], second_agent(client, keys[Role.ADMIN])
    case_a = post_case(client, agent_a, idempotency_key="cam-curb-01/7").json()["id"]
    review(client, keys[Role.REVIEWER], case_a)

    # Agent B happens to (or tries to) use A's key for a violation of its own: its own case, no conflict, no A.
    other = case_body(camera_id="cam-market-02", zone_id="pavement", type="street_vending")
    posted_b = post_case(client, agent_b, idempotency_key="cam-curb-01/7", body=other)
    assert posted_b.status_code == 201, posted_b.text
    assert posted_b.json() == {"id": posted_b.json()["id"], "outcome": "created", "sightings": 1}
    assert posted_b.json()["id"] != case_a
    # A retry under the key finds each agent's own post.
    again_b = post_case(client, agent_b, idempotency_key="cam-curb-01/7", body=other)
    assert again_b.json() == {"id": posted_b.json()["id"], "outcome": "replayed", "sightings": 1}
    again_a = post_case(client, agent_a, idempotency_key="cam-curb-01/7")
    assert again_a.json() == {"id": case_a, "outcome": "replayed", "sightings": 1}


def test_a_merge_answers_no_review_fields(client: TestClient, keys: dict[Role, str]) -> None:
    agent_a, agent_b = keys[Role.AGENT], second_agent(client, keys[Role.ADMIN])
    case_a = post_case(client, agent_a, idempotency_key="k").json()["id"]
    review(client, keys[Role.REVIEWER], case_a)
    # B sees the same (confirmed, still open) violation under the same key: a re-sighting, merged.
    merged = post_case(client, agent_b, idempotency_key="k", body=case_body(detected_after_s=600))
    assert merged.status_code == 200, merged.text
    assert merged.json() == {"id": case_a, "outcome": "merged", "sightings": 2}
    assert "J. Doe" not in merged.text and "confirmed" not in merged.text


def test_the_openapi_document_names_the_agents_answer(client: TestClient) -> None:
    post = client.get("/openapi.json").json()["paths"]["/api/v1/cases"]["post"]
    for status in ("200", "201"):
        schema = post["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/CasePosted"}
    posted = client.get("/openapi.json").json()["components"]["schemas"]["CasePosted"]
    assert set(posted["properties"]) == ANSWER_FIELDS


def test_keys_posted_before_keys_were_per_agent_still_replay(
    make_settings: Callable[..., ServiceSettings],
    make_keys: Callable[[ServiceSettings], dict[Role, str]],
    clock: Clock,
) -> None:
    settings = make_settings()
    keys = make_keys(settings)
    with TestClient(create_app(settings, clock=clock)) as client:
        first = post_case(client, keys[Role.AGENT], idempotency_key="k").json()["id"]
    # The database as the version before per-agent keys left it, then upgraded again.
    engine = make_engine(settings.resolved_database_url)
    try:
        downgrade_engine(engine, "0001")
        upgrade_engine(engine)
    finally:
        engine.dispose()

    with TestClient(create_app(settings, clock=clock)) as client:
        # A retry after the upgrade, from whichever agent key, finds the post it made before.
        for key in (keys[Role.AGENT], keys[Role.ADMIN]):
            again = post_case(client, key, idempotency_key="k")
            assert again.json() == {"id": first, "outcome": "replayed", "sightings": 1}
        # The upgrade kept the case whole: its image too.
        case = client.get(f"/api/v1/cases/{first}", headers=bearer(keys[Role.REVIEWER])).json()
        assert (case["sightings"], case["evidence_count"]) == (1, 1)
        # New posts after the upgrade are scoped to their key, and merge as before.
        later = post_case(client, keys[Role.AGENT], idempotency_key="k2", body=case_body(detected_after_s=600))
        assert later.json() == {"id": first, "outcome": "merged", "sightings": 2}
    with open_database(settings) as sessions, sessions() as session:
        scopes = session.scalars(select(Sighting.key_scope).order_by(Sighting.id)).all()
    assert scopes == ["", "key-1"]

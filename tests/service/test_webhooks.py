"""Webhooks: admins register receivers; the service sends them every case event in log order, signed, and keeps
each event until its receiver takes it — through a receiver that is down, failing or hanging, and restarts."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy
import typer
from case_helpers import T0, bearer, case_body, post_case
from conftest import TEST_DEPARTMENT
from fastapi.testclient import TestClient
from test_case_metrics import scrape
from typer.testing import CliRunner
from webhook_helpers import Receiver, free_port, wait_until

from service import events, loop, webhooks
from service.admin import open_database
from service.app import create_app
from service.auth import Principal
from service.cli import register
from service.db import make_engine, make_sessions, sqlite_url
from service.delivery import WebhookWorker
from service.metrics import Metrics
from service.migrations import upgrade_engine
from service.schemas import LoopAction, Role
from service.settings import ServiceSettings
from service.signing import sign, verify_signature

SECRET = "receiver-secret-0123456789"
ADMIN = Principal(key_id=None, name="admin", role=Role.ADMIN)
#: The time of the loop actions the tests take on the database: the `clock` fixture's.
NOW = T0 + timedelta(hours=1)
#: Fast retries, so a receiver that comes back is found within a fraction of a second.
FAST = {"webhook_poll_s": 0.05, "webhook_retry_base_s": 0.05, "webhook_retry_max_s": 0.2, "webhook_timeout_s": 2}


@pytest.fixture
def hook_settings(make_settings: Callable[..., ServiceSettings]) -> ServiceSettings:
    return make_settings(**FAST)


@pytest.fixture
def app(
    make_client: Callable[[ServiceSettings], TestClient],
    hook_settings: ServiceSettings,
    make_keys: Callable[[ServiceSettings], dict[Role, str]],
) -> tuple[TestClient, dict[Role, str]]:
    """The service with its webhook worker running, and keys of every role."""
    client = make_client(hook_settings)
    return client, make_keys(hook_settings)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Receivers the test starts, stopped after it."""
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.stop()


def start(receivers: list[Receiver], port: int | None = None, **kwargs: Any) -> Receiver:
    receiver = Receiver(port, **kwargs)
    receivers.append(receiver)
    return receiver


def add_hook(client: TestClient, admin: str, url: str, **body: Any) -> dict[str, Any]:
    made = client.post("/api/v1/webhooks", json={"url": url, "secret": SECRET, **body}, headers=bearer(admin))
    assert made.status_code == 201, made.text
    hook: dict[str, Any] = made.json()
    return hook


def hook_state(client: TestClient, admin: str, hook_id: int) -> dict[str, Any]:
    got = client.get(f"/api/v1/webhooks/{hook_id}", headers=bearer(admin))
    assert got.status_code == 200, got.text
    state: dict[str, Any] = got.json()
    return state


class Cases:
    """Makes case events as people would: agents post, reviewers decide over the API, the loop files and
    dispatches on the database."""

    def __init__(self, client: TestClient, keys: dict[Role, str], settings: ServiceSettings) -> None:
        self.client, self.keys, self.settings = client, keys, settings
        self.posted = 0

    def confirm_file_dispatch(self, n: int = 1) -> None:
        """`n` new cases, each confirmed, filed and dispatched: three events per case."""
        for _ in range(n):
            case_id = self.review("confirm")
            with open_database(self.settings) as sessions, sessions() as session:
                loop.act(session=session, case_id=case_id, action=LoopAction.FILE, actor=ADMIN, now=NOW)
            with open_database(self.settings) as sessions, sessions() as session:
                loop.act(
                    session=session,
                    case_id=case_id,
                    action=LoopAction.DISPATCH,
                    actor=ADMIN,
                    now=NOW,
                    department_id=TEST_DEPARTMENT,
                )

    def review(self, decision: str) -> int:
        """A new case, confirmed or rejected by a reviewer; returns its id."""
        self.posted += 1
        body = case_body(zone_id=f"zone-{self.posted}")  # a zone each, so that no case merges into another
        posted = post_case(self.client, self.keys[Role.AGENT], idempotency_key=f"v{self.posted}", body=body)
        assert posted.status_code == 201, posted.text
        case_id: int = posted.json()["id"]
        verdict = {"decision": decision} | ({"reason": "not a violation"} if decision == "reject" else {})
        reviewed = self.client.post(
            f"/api/v1/cases/{case_id}/review", json=verdict, headers=bearer(self.keys[Role.REVIEWER])
        )
        assert reviewed.status_code == 200, reviewed.text
        return case_id

    def logged(self) -> list[tuple[str, str]]:
        """(event id, kind) of every event in the log, in log order."""
        with open_database(self.settings) as sessions, sessions() as session:
            return [(e.event_id, e.kind.value) for e in events.case_events(session=session, limit=10_000)]


def delivered_in_order(receiver: Receiver, logged: list[str]) -> None:
    """Every logged event reached the receiver, none out of order (a repeat of the latest one is allowed)."""
    got = receiver.event_ids()
    first_seen = list(dict.fromkeys(got))
    assert first_seen == logged
    positions = [logged.index(e) for e in got]
    assert positions == sorted(positions), "an event came after a later one"


def test_events_arrive_in_order_signed_once(
    app: tuple[TestClient, dict[Role, str]], hook_settings: ServiceSettings, receivers: list[Receiver]
) -> None:
    client, keys = app
    receiver = start(receivers)
    hook = add_hook(client, keys[Role.ADMIN], receiver.url)
    assert hook["secret"] == SECRET and hook["cursor"] == 0 and hook["pending"] == 0
    cases = Cases(client, keys, hook_settings)
    cases.confirm_file_dispatch(2)
    cases.review("reject")

    logged = cases.logged()
    assert [kind for _, kind in logged] == ["case.confirmed", "case.filed", "case.dispatched"] * 2 + ["case.rejected"]
    wait_until(lambda: len(receiver.received) >= len(logged), "every event delivered")
    wait_until(lambda: hook_state(client, keys[Role.ADMIN], hook["id"])["pending"] == 0, "nothing pending")
    assert receiver.event_ids() == [event_id for event_id, _ in logged]
    for got, (event_id, kind) in zip(receiver.received, logged, strict=True):
        assert verify_signature(SECRET, got.body, got.headers["x-streetwatch-signature"])
        assert got.headers["x-streetwatch-event"] == kind
        assert got.headers["content-type"] == "application/json"
        assert int(got.headers["x-streetwatch-timestamp"]) > 0
        payload = json.loads(got.body)
        assert (payload["event_id"], payload["kind"]) == (event_id, kind)
    dispatched = json.loads(receiver.received[2].body)
    assert dispatched["case"]["department_id"] == TEST_DEPARTMENT
    assert dispatched["transition"]["from_status"] == "filed"

    state = hook_state(client, keys[Role.ADMIN], hook["id"])
    assert state["last_status"] == 200 and state["last_error"] is None and state["next_attempt_at"] is None
    assert "secret" not in state
    samples = scrape(client, keys[Role.ADMIN])
    labels = frozenset({("webhook", str(hook["id"])), ("outcome", "ok")})
    assert samples[("streetwatch_webhook_deliveries_total", labels)] == len(logged)
    assert samples[("streetwatch_webhook_pending_events", frozenset({("webhook", str(hook["id"]))}))] == 0


def test_a_receiver_down_then_failing_gets_every_event_in_order_once_back(
    app: tuple[TestClient, dict[Role, str]], hook_settings: ServiceSettings, receivers: list[Receiver]
) -> None:
    client, keys = app
    admin = keys[Role.ADMIN]
    port = free_port()
    hook = add_hook(client, admin, f"http://127.0.0.1:{port}/hooks/streetwatch")
    cases = Cases(client, keys, hook_settings)
    cases.confirm_file_dispatch(2)

    # Nobody listens: connections are refused, and the events wait.
    wait_until(lambda: hook_state(client, admin, hook["id"])["attempts"] >= 3, "three refused attempts")
    refused = hook_state(client, admin, hook["id"])
    assert refused["pending"] == 6 and refused["cursor"] == hook["cursor"]
    assert refused["last_error"].startswith("cannot connect") and "refused" in refused["last_error"]
    assert refused["last_status"] is None
    assert refused["next_attempt_at"] is not None
    cases.review("confirm")  # more events while it is down

    # It answers, with errors: the first event is tried again and again, nothing after it.
    receiver = start(receivers, port, status=500)
    wait_until(lambda: len(receiver.received) >= 3, "three tries while it fails")
    failing = hook_state(client, admin, hook["id"])
    assert failing["last_status"] == 500 and failing["last_error"].startswith("HTTP 500")
    first = cases.logged()[0][0]
    assert set(receiver.event_ids()) == {first}

    receiver.status = 200
    logged = [event_id for event_id, _ in cases.logged()]
    assert len(logged) == 7
    wait_until(lambda: hook_state(client, admin, hook["id"])["pending"] == 0, "the backlog delivered")
    delivered_in_order(receiver, logged)
    back = hook_state(client, admin, hook["id"])
    assert back["attempts"] == 0 and back["last_error"] is None and back["last_status"] == 200
    samples = scrape(client, admin)
    failed = samples[
        ("streetwatch_webhook_deliveries_total", frozenset({("webhook", str(hook["id"])), ("outcome", "failed")}))
    ]
    assert failed >= 6


def test_a_hanging_receiver_does_not_hold_up_another(
    make_client: Callable[[ServiceSettings], TestClient],
    make_settings: Callable[..., ServiceSettings],
    make_keys: Callable[[ServiceSettings], dict[Role, str]],
    receivers: list[Receiver],
) -> None:
    settings = make_settings(**(FAST | {"webhook_timeout_s": 20}))
    client = make_client(settings)
    keys = make_keys(settings)
    hanging, healthy = start(receivers), start(receivers)
    hanging.hold = threading.Event()  # answers only when the test ends
    slow = add_hook(client, keys[Role.ADMIN], hanging.url)
    add_hook(client, keys[Role.ADMIN], healthy.url)
    cases = Cases(client, keys, settings)
    cases.confirm_file_dispatch(2)

    logged = [event_id for event_id, _ in cases.logged()]
    wait_until(
        lambda: healthy.event_ids() == logged and hanging.event_ids() == logged[:1],
        "the healthy receiver has every event while the hanging one holds the first",
        timeout_s=10,
    )
    assert hook_state(client, keys[Role.ADMIN], slow["id"])["pending"] == 6


def test_an_event_appended_while_a_claim_finds_none_waits_for_the_next_claim(
    make_client: Callable[[ServiceSettings], TestClient],
    make_settings: Callable[..., ServiceSettings],
    make_keys: Callable[[ServiceSettings], dict[Role, str]],
) -> None:
    # The claim reads the log, finds nothing wanted and moves the cursor up to the head: an event committed
    # between those reads must stay past the cursor. SQLite lets no other writer in while the claim holds its
    # write lock, so the gap exists only on PostgreSQL.
    settings = make_settings(**(FAST | {"webhook_poll_s": 60}))  # the worker looks once, before the hook exists
    if settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("SQLite admits one writer at a time: nothing can be appended during a claim")
    client = make_client(settings)
    keys = make_keys(settings)
    case_id = Cases(client, keys, settings).review("confirm")
    hook = add_hook(client, keys[Role.ADMIN], "http://127.0.0.1:9/hooks")
    with open_database(settings) as sessions, sessions() as session, sessions() as other:
        appended: list[str] = []

        def append_after_the_log_is_read(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if not appended and "FROM case_events" in statement and "ORDER BY" in statement:
                loop.act(session=other, case_id=case_id, action=LoopAction.FILE, actor=ADMIN, now=NOW)
                appended.append(statement)

        bind = session.get_bind()
        sqlalchemy.event.listen(bind, "after_cursor_execute", append_after_the_log_is_read)
        try:
            claimed = webhooks.claim_next(session=session, webhook_id=hook["id"], now=NOW, lease_s=60)
        finally:
            sqlalchemy.event.remove(bind, "after_cursor_execute", append_after_the_log_is_read)
    assert appended, "the claim never read the log"
    assert claimed is None
    assert hook_state(client, keys[Role.ADMIN], hook["id"])["pending"] == 1


def test_a_restarted_service_resumes_from_the_cursor(
    make_client: Callable[[ServiceSettings], TestClient],
    hook_settings: ServiceSettings,
    make_keys: Callable[[ServiceSettings], dict[Role, str]],
    receivers: list[Receiver],
) -> None:
    receiver = start(receivers)
    with TestClient(create_app(hook_settings)) as first:
        keys = make_keys(hook_settings)
        hook = add_hook(first, keys[Role.ADMIN], receiver.url)
        cases = Cases(first, keys, hook_settings)
        cases.confirm_file_dispatch(1)
        wait_until(lambda: len(receiver.received) == 3, "the first case's events delivered")
    # Stopped: what happens now waits in the log.
    assert len(cases.logged()) == 3
    with open_database(hook_settings) as sessions, sessions() as session:
        loop.act(
            session=session,
            case_id=json.loads(receiver.received[0].body)["case"]["id"],
            action=LoopAction.HANDLE,
            actor=ADMIN,
            now=NOW,
            note="stall removed",
        )

    second = make_client(hook_settings)
    cases.client = second
    cases.confirm_file_dispatch(1)
    logged = [event_id for event_id, _ in cases.logged()]
    assert len(logged) == 7
    wait_until(lambda: len(receiver.received) >= 7, "the events from the stop and after delivered")
    assert receiver.event_ids() == logged
    assert json.loads(receiver.received[3].body)["kind"] == "case.handled"
    assert hook_state(second, keys[Role.ADMIN], hook["id"])["pending"] == 0


def test_a_service_stopped_mid_send_lets_the_next_one_resend_at_once(
    make_client: Callable[[ServiceSettings], TestClient],
    make_settings: Callable[..., ServiceSettings],
    make_keys: Callable[[ServiceSettings], dict[Role, str]],
    receivers: list[Receiver],
) -> None:
    # A receiver timeout far above the test's patience: the event must come again because the stopping service
    # gave its lease back, not because the lease ran out.
    settings = make_settings(**(FAST | {"webhook_timeout_s": 120}))
    receiver = start(receivers)
    receiver.hold = threading.Event()
    with TestClient(create_app(settings)) as first:
        keys = make_keys(settings)
        hook = add_hook(first, keys[Role.ADMIN], receiver.url)
        cases = Cases(first, keys, settings)
        cases.review("confirm")
        wait_until(lambda: len(receiver.received) == 1, "the event on its way")
    receiver.hold.set()  # the receiver answers, but the stopped service no longer listens

    second = make_client(settings)
    wait_until(lambda: len(receiver.received) == 2, "the event sent again", timeout_s=15)
    assert receiver.event_ids() == [cases.logged()[0][0]] * 2  # at least once: the receiver drops the repeat
    wait_until(lambda: hook_state(second, keys[Role.ADMIN], hook["id"])["pending"] == 0, "the event delivered")


def test_a_webhook_gets_only_the_kinds_it_wants(
    app: tuple[TestClient, dict[Role, str]], hook_settings: ServiceSettings, receivers: list[Receiver]
) -> None:
    client, keys = app
    admin = keys[Role.ADMIN]
    wanted, everything = start(receivers), start(receivers)
    picky = add_hook(client, admin, wanted.url, kinds=["case.dispatched", "case.rejected", "case.dispatched"])
    assert picky["kinds"] == ["case.dispatched", "case.rejected"]
    add_hook(client, admin, everything.url)
    client.patch(f"/api/v1/webhooks/{picky['id']}", json={"active": False}, headers=bearer(admin))
    cases = Cases(client, keys, hook_settings)
    cases.confirm_file_dispatch(2)
    cases.review("reject")
    logged = cases.logged()

    wait_until(lambda: len(everything.received) == 7, "every event at the receiver of all kinds")
    paused = hook_state(client, admin, picky["id"])
    assert paused["active"] is False and paused["pending"] == 3 and wanted.received == []

    for bad in ({"active": 0}, {"active": "yes"}, {}, {"active": True, "url": wanted.url}):
        refused = client.patch(f"/api/v1/webhooks/{picky['id']}", json=bad, headers=bearer(admin))
        assert refused.status_code == 422, bad
    assert hook_state(client, admin, picky["id"])["active"] is False
    resumed = client.patch(f"/api/v1/webhooks/{picky['id']}", json={"active": True}, headers=bearer(admin))
    assert resumed.status_code == 200 and resumed.json()["active"] is True
    wait_until(lambda: len(wanted.received) == 3, "the wanted kinds delivered")
    wait_until(lambda: hook_state(client, admin, picky["id"])["cursor"] == len(logged), "the cursor at the head")
    assert wanted.event_ids() == [e for e, kind in logged if kind in ("case.dispatched", "case.rejected")]
    assert hook_state(client, admin, picky["id"])["pending"] == 0


def test_two_service_processes_never_send_one_event_twice(
    make_client: Callable[[ServiceSettings], TestClient],
    hook_settings: ServiceSettings,
    make_keys: Callable[[ServiceSettings], dict[Role, str]],
    receivers: list[Receiver],
) -> None:
    # Two apps on one database, each with its worker, stand for two service processes.
    one, two = make_client(hook_settings), make_client(hook_settings)
    keys = make_keys(hook_settings)
    receiver = start(receivers)
    hook = add_hook(one, keys[Role.ADMIN], receiver.url)
    cases = Cases(two, keys, hook_settings)
    cases.confirm_file_dispatch(4)

    logged = [event_id for event_id, _ in cases.logged()]
    wait_until(lambda: len(receiver.received) >= len(logged), "every event delivered")
    wait_until(lambda: hook_state(one, keys[Role.ADMIN], hook["id"])["pending"] == 0, "nothing pending")
    assert receiver.event_ids() == logged
    assert receiver.most_in_flight == 1


def test_a_deleted_webhook_gets_nothing_more(
    app: tuple[TestClient, dict[Role, str]], hook_settings: ServiceSettings, receivers: list[Receiver]
) -> None:
    client, keys = app
    admin = keys[Role.ADMIN]
    receiver, other = start(receivers), start(receivers)
    hook = add_hook(client, admin, receiver.url)
    add_hook(client, admin, other.url)
    listed = client.get("/api/v1/webhooks", headers=bearer(admin))
    assert [w["url"] for w in listed.json()] == [receiver.url, other.url]
    assert all("secret" not in w for w in listed.json())

    deleted = client.delete(f"/api/v1/webhooks/{hook['id']}", headers=bearer(admin))
    assert deleted.status_code == 200 and deleted.json()["id"] == hook["id"]
    assert client.get(f"/api/v1/webhooks/{hook['id']}", headers=bearer(admin)).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=bearer(admin)).status_code == 404
    Cases(client, keys, hook_settings).review("confirm")
    wait_until(lambda: len(other.received) == 1, "the remaining webhook's delivery")
    assert receiver.received == []


def test_a_secret_is_generated_when_none_is_given(
    app: tuple[TestClient, dict[Role, str]], hook_settings: ServiceSettings, receivers: list[Receiver]
) -> None:
    client, keys = app
    receiver = start(receivers)
    made = client.post("/api/v1/webhooks", json={"url": receiver.url}, headers=bearer(keys[Role.ADMIN]))
    assert made.status_code == 201
    secret = made.json()["secret"]
    assert len(secret) >= 32
    Cases(client, keys, hook_settings).review("confirm")
    wait_until(lambda: len(receiver.received) == 1, "the event delivered")
    got = receiver.received[0]
    assert verify_signature(secret, got.body, got.headers["x-streetwatch-signature"])
    assert not verify_signature(SECRET, got.body, got.headers["x-streetwatch-signature"])


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"url": "ftp://city.example/hooks"}, "url", "http:// or https://"),
        ({"url": "javascript:alert(1)"}, "url", "http:// or https://"),
        ({"url": "city.example/hooks"}, "url", "http:// or https://"),
        ({"url": "https:///hooks"}, "url", "must name a host"),
        ({"url": "https://:8080/hooks"}, "url", "must name a host"),
        ({"url": "https://city example/hooks"}, "url", "must name a host"),
        ({"url": "https://user:pw@city.example/hooks"}, "url", "user or password"),
        ({"url": "https://city.example:99999/hooks"}, "url", "invalid port"),
        ({"url": "https://city.example/a\nb"}, "url", "control characters"),
        ({"url": "https://city.example/hooks", "secret": "short"}, "secret", "at least 16"),
        ({"url": "https://city.example/hooks", "kinds": ["case.exploded"]}, "kinds[0]", "case.confirmed"),
        ({"url": "https://city.example/hooks", "active": False}, "active", "Extra inputs"),
        ({}, "url", "required"),
    ],
)
def test_bad_webhook_input_is_refused_naming_the_field(
    app: tuple[TestClient, dict[Role, str]], body: dict[str, Any], field: str, says: str
) -> None:
    client, keys = app
    refused = client.post("/api/v1/webhooks", json=body, headers=bearer(keys[Role.ADMIN]))
    assert refused.status_code == 422
    errors = refused.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert says in errors[0]["message"]
    assert client.get("/api/v1/webhooks", headers=bearer(keys[Role.ADMIN])).json() == []


@pytest.mark.parametrize("role", [Role.AGENT, Role.REVIEWER, Role.DISPATCHER, Role.DEPARTMENT])
def test_only_admins_manage_webhooks(app: tuple[TestClient, dict[Role, str]], role: Role) -> None:
    client, keys = app
    hook = add_hook(client, keys[Role.ADMIN], "https://city.example/hooks")
    key = bearer(keys[role])
    calls = [
        client.post("/api/v1/webhooks", json={"url": "https://evil.example/"}, headers=key),
        client.get("/api/v1/webhooks", headers=key),
        client.get(f"/api/v1/webhooks/{hook['id']}", headers=key),
        client.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": False}, headers=key),
        client.delete(f"/api/v1/webhooks/{hook['id']}", headers=key),
    ]
    for refused in calls:
        assert refused.status_code == 403, refused.text
        assert "needs admin" in refused.json()["detail"]
    assert client.get("/api/v1/webhooks").status_code == 401
    assert len(client.get("/api/v1/webhooks", headers=bearer(keys[Role.ADMIN])).json()) == 1


def test_the_signature_check_refuses_any_change() -> None:
    body = b'{"event_id":"e1","kind":"case.closed"}'
    good = sign(SECRET, body)
    assert good.startswith("sha256=") and len(good) == len("sha256=") + 64
    assert verify_signature(SECRET, body, good)
    assert not verify_signature(SECRET, body + b" ", good)
    assert not verify_signature("another-secret-0123456789", body, good)
    assert not verify_signature(SECRET, body, good.removeprefix("sha256="))
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature(SECRET, body, "sha256=é")


def test_webhooks_from_the_command_line(
    where_hooks: list[str], hook_settings: ServiceSettings, receivers: list[Receiver]
) -> None:
    cli = typer.Typer()
    register(cli)
    runner = CliRunner()
    receiver = start(receivers)

    def run(*args: str) -> Any:
        return runner.invoke(cli, list(args), env={"COLUMNS": "200"})

    nowhere = run("webhooks", "list", "--state-dir", str(hook_settings.state_dir / "typo"))
    assert nowhere.exit_code == 2 and "--state-dir" in nowhere.stderr
    agent = run("keys", "create", "--role", "agent", *where_hooks).stdout.strip().splitlines()[-1]
    reviewer = run("keys", "create", "--role", "reviewer", *where_hooks).stdout.strip().splitlines()[-1]
    made = run("webhooks", "add", receiver.url, "--kind", "case.confirmed", *where_hooks)
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[-1]
    assert "Created webhook #1" in made.stderr and "case.confirmed" in made.stderr

    bad = run("webhooks", "add", "ftp://city.example/", *where_hooks)
    assert bad.exit_code == 2 and "URL: " in bad.stderr and "http:// or https://" in bad.stderr
    short = run("webhooks", "add", receiver.url, "--secret", "short", *where_hooks)
    assert short.exit_code == 2 and "--secret: " in short.stderr

    listed = run("webhooks", "list", *where_hooks)
    assert listed.exit_code == 0 and receiver.url in listed.stdout and "case.confirmed" in listed.stdout
    assert secret not in listed.stdout

    with TestClient(create_app(hook_settings)) as client:
        Cases(client, {Role.AGENT: agent, Role.REVIEWER: reviewer}, hook_settings).review("confirm")
        wait_until(lambda: len(receiver.received) == 1, "the confirmed event delivered")
    assert verify_signature(secret, receiver.received[0].body, receiver.received[0].headers["x-streetwatch-signature"])

    removed = run("webhooks", "remove", "1", *where_hooks)
    assert removed.exit_code == 0 and "Removed webhook #1" in removed.stdout
    gone = run("webhooks", "remove", "1", *where_hooks)
    assert gone.exit_code == 1 and "WEBHOOK_ID: there is no webhook 1" in gone.stderr


@pytest.fixture
def where_hooks(hook_settings: ServiceSettings) -> list[str]:
    """The options that point a command at the test database."""
    return ["--state-dir", str(hook_settings.state_dir), "--database-url", hook_settings.resolved_database_url]


def test_a_database_that_keeps_failing_is_logged_once_then_now_and_then_and_its_return_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database without the service's tables fails every look for events, as one that is down does.
    settings = ServiceSettings(
        state_dir=tmp_path / "state", database_url=sqlite_url(tmp_path / "cases.db"), webhook_poll_s=0.02
    )
    engine = make_engine(settings.resolved_database_url)
    worker = WebhookWorker(
        settings=settings, sessions=make_sessions(engine), metrics=Metrics(make_sessions(engine)), outage_repeat_s=0.3
    )
    phases: dict[str, list[logging.LogRecord]] = {}

    async def run() -> None:
        stop = anyio.Event()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(worker.run, stop)
            await anyio.sleep(1.0)  # about 50 polls, all failing
            phases["down"] = list(caplog.records)
            caplog.clear()
            await anyio.to_thread.run_sync(upgrade_engine, engine)
            await anyio.sleep(0.3)
            phases["back"] = list(caplog.records)
            stop.set()

    with caplog.at_level(logging.INFO, logger="service.delivery"):
        anyio.run(run)
    engine.dispose()
    down = [r for r in phases["down"] if r.levelno == logging.WARNING]
    assert down[0].getMessage() == "webhooks: cannot look for events to deliver" and down[0].exc_info
    repeats = down[1:]
    assert 1 <= len(repeats) <= 4, [r.getMessage() for r in down]  # every 0.3 s of the second, not every poll
    assert all("still cannot look for events to deliver" in r.getMessage() and not r.exc_info for r in repeats)
    assert "no such table" in repeats[0].getMessage()
    back = [r.getMessage() for r in phases["back"]]  # polls go on failing while the tables are made
    assert [m for m in back if "again" in m] == back[-1:], back
    assert back[-1].startswith("webhooks: events can be looked for again after"), back

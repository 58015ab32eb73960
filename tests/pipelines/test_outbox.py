"""The outbox: cases are on disk before they are sent, leave only when acknowledged, survive restarts and outages,
and a case the service refuses is kept aside instead of retried forever."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from pipeline_helpers import ServiceThread, draft, free_port, wait_until

from pipelines.delivery import AgentRefusedError, CaseClient, CaseRejectedError, DeliveryError, OutgoingCase
from pipelines.metrics import PipelineMetrics
from pipelines.outbox import Outbox, OutboxSender
from service.schemas import PostResult

KEY = "sw_test-agent-key"


@pytest.fixture
def service(tmp_path: Path) -> ServiceThread:
    return ServiceThread(tmp_path / "service", free_port(), KEY)


def test_a_stored_case_survives_reopening_and_leaves_only_when_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "state" / "outbox.db"
    outbox = Outbox(path)
    assert outbox.put(OutgoingCase.of(draft("k1"))) and outbox.put(OutgoingCase.of(draft("k2")))
    assert not outbox.put(OutgoingCase.of(draft("k1")))  # the same violation again changes nothing
    outbox.close()

    again = Outbox(path)
    first = again.next_pending()
    assert first is not None and first.key == "k1" and first.evidence[0].data[:2] == b"\xff\xd8"
    again.acknowledge("k1")
    assert again.pending_count() == 1
    again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT count(*) FROM evidence").fetchone() == (1,)  # k1's evidence went with it


def test_a_failing_case_does_not_hold_back_the_others(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    for key in ("a", "b", "c"):
        outbox.put(OutgoingCase.of(draft(key)))
    outbox.record_failure("a", "HTTP 500")
    chosen = outbox.next_pending()
    assert chosen is not None and chosen.key == "b"


def test_the_client_classifies_what_the_service_answers(service: ServiceThread) -> None:
    service.start()
    client = CaseClient(service.url, KEY)
    try:
        assert client.send(OutgoingCase.of(draft("k1"))).outcome is PostResult.CREATED
        repeat = client.send(OutgoingCase.of(draft("k1")))
        assert (repeat.id, repeat.outcome) == (1, PostResult.REPLAYED)  # a repeat is the same case
        with pytest.raises(CaseRejectedError, match="415"):
            client.send(OutgoingCase.of(draft("k2", evidence=b"not an image")))
        # A wrong key is the agent's problem, not the case's: the case waits until the key is fixed.
        with pytest.raises(AgentRefusedError, match="refused the API key \\(401: "):
            CaseClient(service.url, "sw_wrong").send(OutgoingCase.of(draft("k3")))
        service.stop()
        with pytest.raises(DeliveryError, match="ConnectError"):
            client.send(OutgoingCase.of(draft("k4")))
    finally:
        client.close()


def sample(metrics: PipelineMetrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name)


def sender(outbox: Outbox, url: str, metrics: PipelineMetrics) -> tuple[OutboxSender, CaseClient]:
    client = CaseClient(url, KEY, timeout_s=5)
    return OutboxSender(outbox, client, metrics=metrics, backoff_initial_s=0.05, backoff_max_s=0.4), client


def test_cases_wait_out_an_outage_and_each_arrives_once(
    tmp_path: Path, service: ServiceThread, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = PipelineMetrics()
    outbox = Outbox(tmp_path / "outbox.db")
    send, client = sender(outbox, service.url, metrics)
    send.start()
    try:
        for i in range(3):
            send.submit(draft(f"k{i}", box=(0.1 * i, 0.5, 0.1 * i + 0.05, 0.6)))
        wait_until(lambda: caplog.text.count("case service does not answer yet") >= 2, 10, "retries while down")
        assert outbox.pending_count() == 3 and sample(metrics, "streetwatch_outbox_depth") == 3
        service.start()
        wait_until(lambda: outbox.pending_count() == 0, 15, "the outbox to drain once the service is up")
    finally:
        assert send.close(flush_timeout_s=5) == 0
        client.close()
        outbox.close()
    assert sorted(c.camera_id + ":" + str(c.sightings) for c in service.cases()) == ["cam-1:1"] * 3
    assert sample(metrics, "streetwatch_cases_delivered_total") == 3
    service.stop()


def test_a_restart_replays_what_the_last_run_left(tmp_path: Path, service: ServiceThread) -> None:
    path = tmp_path / "outbox.db"
    metrics = PipelineMetrics()
    outbox = Outbox(path)
    send, client = sender(outbox, service.url, metrics)  # the service is down for this whole run
    send.start()
    send.submit(draft("k1"))
    assert send.close(flush_timeout_s=0.3) == 1
    client.close()
    outbox.close()

    service.start()
    outbox = Outbox(path)
    send, client = sender(outbox, service.url, PipelineMetrics())
    send.start()  # nothing new is submitted: the case comes from the file
    assert send.close(flush_timeout_s=10) == 0
    client.close()
    outbox.close()
    assert [c.sightings for c in service.cases()] == [1]
    service.stop()


def test_a_refused_case_is_kept_aside_and_not_retried(tmp_path: Path, service: ServiceThread) -> None:
    service.start()
    metrics = PipelineMetrics()
    outbox = Outbox(tmp_path / "outbox.db")
    send, client = sender(outbox, service.url, metrics)
    send.start()
    send.submit(draft("bad", evidence=b"GIF89a not a jpeg"))
    send.submit(draft("good", box=(0.6, 0.5, 0.8, 0.8)))
    assert send.close(flush_timeout_s=10) == 0
    client.close()
    (rejected,) = outbox.rejected()
    assert rejected.key == "bad" and "415" in rejected.reason and rejected.camera_id == "cam-1"
    assert sample(metrics, "streetwatch_cases_rejected_total") == 1
    # Submitting the refused violation again neither revives nor duplicates it.
    assert not outbox.put(OutgoingCase.of(draft("bad", evidence=b"GIF89a")))
    outbox.close()
    assert len(service.cases()) == 1
    service.stop()


def test_a_refused_key_stops_the_sender_and_keeps_the_case(tmp_path: Path, service: ServiceThread) -> None:
    service.start()
    outbox = Outbox(tmp_path / "outbox.db")
    client = CaseClient(service.url, "sw_wrong", timeout_s=5)
    stopped = threading.Event()
    send = OutboxSender(outbox, client, metrics=PipelineMetrics(), backoff_initial_s=0.05, on_failure=stopped.set)
    send.start()
    send.submit(draft("k1"))
    assert stopped.wait(10), "the sender went on after a 401"
    assert send.close(flush_timeout_s=5) == 1
    client.close()
    assert isinstance(send.failure, AgentRefusedError) and outbox.rejected() == []
    outbox.close()
    service.stop()


def test_a_service_that_never_answers_stops_the_sender_at_its_bound(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    client = CaseClient(f"http://127.0.0.1:{free_port()}", KEY, timeout_s=5)
    stopped = threading.Event()
    send = OutboxSender(
        outbox, client, metrics=PipelineMetrics(), backoff_initial_s=0.05, answer_within_s=1, on_failure=stopped.set
    )
    send.start()  # nothing to send: the bound holds for the service itself, not only for cases
    assert stopped.wait(10), "the sender kept waiting for a service that never answered"
    assert send.close(flush_timeout_s=5) == 0
    client.close()
    outbox.close()
    assert type(send.failure) is DeliveryError and "ConnectError" in str(send.failure)

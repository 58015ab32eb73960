"""A reviewer clears part of the queue in real headless Chromium: sign in, queue, confirm, reject, undo."""

from __future__ import annotations

import importlib.util
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import cv2
import httpx
import pytest
import uvicorn
from case_helpers import case_body, post_case
from sqlalchemy import select

from pipelines.evidence import render_evidence, render_snapshot
from service.admin import open_database
from service.app import create_app
from service.models import Case, Review
from service.schemas import CaseStatus, CaseType, Role
from service.settings import ServiceSettings
from streetwatch.core import Violation

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs Debian's chromium and chromium-driver (bash .ci/install-chromium.sh)",
    ),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


@pytest.fixture
def server(settings: ServiceSettings) -> Iterator[str]:
    """The service on a free loopback port, with the wall clock; yields its base URL."""
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if running.started:
                break
            threading.Event().wait(0.05)
        assert running.started, "the service did not start"
        port = running.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(10)


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless Chromium driven through chromium-driver; nothing is downloaded."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1300", "--lang=en"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


#: The bus at the kerb in ultralytics' bus.jpg, and a kerb zone under it.
BUS: Final = (0.02, 0.23, 0.99, 0.74)
KERB: Final = ((0.0, 0.55), (1.0, 0.55), (1.0, 0.8), (0.0, 0.8))


@pytest.fixture(scope="module")
def evidence() -> list[tuple[str, bytes, str]]:
    """Scene, crop and first sighting of a parked bus, drawn by the pipeline's own evidence code."""
    spec = importlib.util.find_spec("ultralytics")
    assert spec is not None and spec.origin is not None
    photo = cv2.imread(str(Path(spec.origin).parent / "assets" / "bus.jpg"))
    at = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
    violation = Violation("v", "cam", "kerb", CaseType.ILLEGAL_PARKING, "bus", BUS, 0.91, 0.0, 180.0, at, at)
    images = render_evidence(photo, violation, KERB, render_snapshot(photo, BUS, KERB))
    return [(image.name, image.data, image.content_type) for image in images]


def _post(base: str, agent: str, n: int, evidence: list[tuple[str, bytes, str]]) -> int:
    with httpx.Client(base_url=base) as http:
        body = case_body(
            camera_id=f"cam-{n}", detected_after_s=60.0 * n, bbox=list(BUS), labels=["bus", "<script>x</script>"]
        )
        response = post_case(http, agent, idempotency_key=f"v{n}", body=body, images=evidence)
    assert response.status_code == 201, response.text
    case_id = response.json()["id"]
    assert isinstance(case_id, int)
    return case_id


def _state(settings: ServiceSettings, case_id: int) -> tuple[CaseStatus, list[tuple[str, str | None, str]]]:
    with open_database(settings) as sessions, sessions() as session:
        case = session.get_one(Case, case_id)
        reviews = session.scalars(select(Review).where(Review.case_id == case_id).order_by(Review.id))
        return case.status, [(r.decision.value, r.reason, r.reviewer) for r in reviews]


def test_a_reviewer_confirms_rejects_and_undoes_from_the_keyboard(
    server: str,
    browser: object,
    evidence: list[tuple[str, bytes, str]],
    settings: ServiceSettings,
    make_keys: Callable[[ServiceSettings], dict[Role, str]],
    tmp_path: Path,
) -> None:
    from selenium.webdriver import ActionChains, Chrome
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, Chrome)
    keys = make_keys(settings)
    first, second, third = (_post(server, keys[Role.AGENT], n, evidence) for n in (1, 2, 3))
    wait = WebDriverWait(browser, 15)

    def press(key: str) -> None:
        ActionChains(browser).send_keys(key).perform()

    def at_case(case_id: int) -> None:
        wait.until(lambda d: d.current_url.split("?")[0].endswith(f"/console/cases/{case_id}"))

    browser.get(f"{server}/")
    wait.until(lambda d: d.current_url.endswith("/console/sign-in"))
    browser.find_element(By.ID, "key").send_keys(keys[Role.REVIEWER])
    browser.find_element(By.CSS_SELECTOR, "form.signin button").click()

    def rows() -> list[str]:
        return [r.get_attribute("data-case-id") or "" for r in browser.find_elements(By.CSS_SELECTOR, "tr.case-row")]

    wait.until(lambda _d: rows() == [str(first), str(second), str(third)])
    thumb = browser.find_element(By.CSS_SELECTOR, "tr.case-row img.thumb")
    wait.until(lambda _d: browser.execute_script("return arguments[0].naturalWidth", thumb) == 810)  # the scene
    fourth = _post(server, keys[Role.AGENT], 4, evidence)  # appears without a reload
    wait.until(lambda _d: rows() == [str(first), str(second), str(third), str(fourth)])

    browser.find_element(By.CSS_SELECTOR, "tr.case-row a.open").click()
    at_case(first)
    labels = browser.find_element(By.ID, "labels").text
    assert labels == "bus, <script>x</script>"  # shown as text, never run
    captions = [c.text for c in browser.find_elements(By.TAG_NAME, "figcaption")]
    assert captions == ["Scene", "Crop", "First sighting"]

    press("c")
    at_case(second)
    assert _state(settings, first) == (CaseStatus.CONFIRMED, [("confirm", None, "test-reviewer")])

    press("r")
    press("2")
    at_case(third)
    assert _state(settings, second) == (CaseStatus.REJECTED, [("reject", "wrong object", "test-reviewer")])

    press("u")
    at_case(second)
    assert _state(settings, second) == (
        CaseStatus.DRAFT,
        [("reject", "wrong object", "test-reviewer"), ("reopen", "undo", "test-reviewer")],
    )
    audit = browser.find_element(By.ID, "audit").text
    assert "wrong object" in audit
    assert "undo" in audit

    screenshot = tmp_path / "case-view.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG")

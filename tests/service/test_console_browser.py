"""The console in real headless Chromium: a reviewer clears part of the queue (sign in, queue, confirm, reject,
undo); a dispatcher files a case in the dispatch view and reads the KPI page's charts."""

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
from kpi_helpers import EAST, build_day
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


def case_ids(browser: object, selector: str) -> list[str]:
    """The case ids of the rows `selector` matches, read in one script: the console re-renders its lists as cases
    come and go, so rows found by one command may be gone by the next (a stale element)."""
    from selenium.webdriver import Chrome

    assert isinstance(browser, Chrome)
    ids = browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), r => r.getAttribute('data-case-id') || '')",
        selector,
    )
    assert isinstance(ids, list)
    return [str(i) for i in ids]


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
        return case_ids(browser, "tr.case-row")

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


def test_a_dispatcher_files_a_case_and_reads_the_kpi_charts(
    server: str,
    browser: object,
    settings: ServiceSettings,
    make_keys: Callable[[ServiceSettings], dict[Role, str]],
    tmp_path: Path,
) -> None:
    from selenium.webdriver import Chrome
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    assert isinstance(browser, Chrome)
    keys = make_keys(settings)
    with open_database(settings) as sessions:
        ids = build_day(sessions)
    wait = WebDriverWait(browser, 15)

    browser.get(f"{server}/")
    wait.until(lambda d: d.current_url.endswith("/console/sign-in"))
    browser.find_element(By.ID, "key").send_keys(keys[Role.DISPATCHER])
    browser.find_element(By.CSS_SELECTOR, "form.signin button").click()
    wait.until(lambda d: d.current_url.split("#")[0].endswith("/console/dispatch"))

    def section(status: str) -> list[str]:
        return case_ids(browser, f"#section-{status} tr.loop-row")

    # The service runs on the wall clock: every deadline of 2025 has passed.
    overdue = browser.find_elements(By.CSS_SELECTOR, "tr.loop-row.overdue")
    assert [r.get_attribute("data-case-id") for r in overdue] == [str(ids["E"]), str(ids["C"])]
    assert overdue[0].find_element(By.CSS_SELECTOR, "strong.flag").text == "Overdue"
    assert section("confirmed") == [str(ids["H"])]

    row = browser.find_element(By.ID, f"case-{ids['H']}")
    Select(row.find_element(By.NAME, "priority")).select_by_value("urgent")
    row.find_element(By.CSS_SELECTOR, "button.file").click()
    # Filed, and sent at once to the department the grid map names for parking in G1.
    wait.until(lambda _d: str(ids["H"]) in section("dispatched"))
    with open_database(settings) as sessions, sessions() as session:
        filed = session.get_one(Case, ids["H"])
        assert (filed.status, filed.department_id, filed.priority.value) == (CaseStatus.DISPATCHED, EAST, "urgent")

    browser.find_element(By.ID, "nav-kpis").click()
    wait.until(lambda d: "/console/kpis" in d.current_url)
    browser.get(f"{server}/console/kpis?since=2025-05-01T10:00&until=2025-05-02T10:00")
    wait.until(lambda d: d.find_element(By.ID, "total-found").text == "7")
    assert browser.find_element(By.ID, "total-median").text == "3 h 10 min"
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-counts rect.bar")
    assert [b.get_attribute("data-series") for b in bars[:3]] == ["found", "confirmed", "closed"]
    # Drawn, to scale, and coloured by the console's stylesheet (no inline style under the CSP).
    widths = [b.rect["width"] for b in bars[:3]]  # G1: found 4 (the longest bar), confirmed 3, closed 2
    assert widths[0] > 100
    assert widths[1] == pytest.approx(widths[0] * 3 / 4, abs=2)
    assert widths[2] == pytest.approx(widths[0] / 2, abs=2)
    assert bars[0].value_of_css_property("fill") == "rgb(140, 149, 159)"
    rates = browser.find_elements(By.CSS_SELECTOR, "#chart-rates rect.bar")
    assert [r.get_attribute("data-value") for r in rates[:2]] == ["75%", "50%"]
    spot = browser.find_element(By.CSS_SELECTOR, "#hot-spots tr.hot-spot")
    assert "cam-1" in spot.text and "zone-a" in spot.text

    screenshot = tmp_path / "kpis.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG")

"""The console in Debian's chromium (Selenium + chromium-driver) against the intake service on a free port:
sign in, see a webhook request appear on the board without reloading, resolve an escalation by clicking (with
an override and its reason), see the technician's row take the job and the customer's notification on the
request's timeline, reassign a job from the board. Set CONSOLE_SCREENSHOT=path to keep a 1280x800 picture of
the board (docs/console.png is made so)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.conftest import HARD_JOB, PASSWORD, as_body, dispatch, payload, signed_headers

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromium-driver")]
WAIT = 20


@pytest.fixture
def served(company: dict[str, int]) -> Iterator[str]:
    """The intake service (requests dispatched in-process as the flow does) on a free port; its base URL."""
    import uvicorn

    from flows.runs import BackgroundDispatcher
    from service.app import create_app
    from truckroll import auth
    from truckroll.db import session_scope

    with session_scope() as s:
        auth.create_user("maria", "dispatcher", session=s, password=PASSWORD)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(dispatcher=BackgroundDispatcher(mode="in-process", run=lambda rid, a: dispatch(rid)),
                     init_database=False, sweep_interval_seconds=0)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the service did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,800", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER or ""), options=options)
    driver.set_window_size(1280, 800)
    try:
        yield driver
    finally:
        driver.quit()


def _post(base: str, data: dict[str, Any]) -> int:
    body = as_body(data)
    r = httpx.post(f"{base}/service-requests", content=body, headers=signed_headers(body), timeout=30)
    assert r.status_code == 202, r.text
    return int(r.json()["request_id"])


def test_a_dispatcher_watches_and_acts_on_the_day(served: str, browser: Any, company: dict[str, int]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from models import Notification
    from truckroll.db import session_scope

    wait = WebDriverWait(browser, WAIT)

    def css(selector: str) -> Any:
        return wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, selector)))

    # Signed out, the page is the sign-in form; no data.
    browser.get(f"{served}/console?date=2030-01-07")
    css("#login-form")
    assert not browser.find_element(By.ID, "app").is_displayed()
    browser.find_element(By.ID, "username").send_keys("maria")
    browser.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
    css(f"#row-tech-{company['ana']}")
    css(f"#row-tech-{company['ben']}")
    assert "Times in America/Chicago" in css("#tz").text
    browser.execute_script("window.__notReloaded = true;")

    # A webhook request appears in Ana's row without reloading the page.
    first = _post(served, payload())
    job = css(f"#row-tech-{company['ana']} button.job[data-request='{first}']")
    assert browser.execute_script("return window.__notReloaded === true;")
    assert "window 08:00 to 10:00" in job.get_attribute("aria-label")
    # The map draws the route, the stops and the territories (Leaflet when vendored, a plain drawing otherwise).
    css("#map")
    assert browser.find_elements(By.CSS_SELECTOR, "#map path.leaflet-interactive, #map svg polyline")

    # A request only Ben can do, outside his territory: escalated; resolved by clicking, with an override.
    hard = _post(served, payload(**HARD_JOB))
    esc = css(f"#esc-list li.esc[data-request='{hard}']")
    esc.find_element(By.CSS_SELECTOR, "button.show-candidates").click()
    assign_ben = css(f"#esc-list li.esc[data-request='{hard}'] button.assign[data-technician-id='{company['ben']}']")
    ranking = esc.find_element(By.CSS_SELECTOR, "table.ranking").text
    assert "outside territory" in ranking and "below the required" in ranking
    assign_ben.click()
    reason = css(f"#esc-list li.esc[data-request='{hard}'] .override-form input.override-reason")
    assert "outside territory" in esc.find_element(By.CSS_SELECTOR, ".override-form").text
    reason.send_keys("Ben has the level-5 skill; Hal is a priority customer")
    esc.find_element(By.CSS_SELECTOR, "button.override-submit").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "flash"), f"Escalation of #{hard} resolved: Ben"))
    ben_job = css(f"#row-tech-{company['ben']} button.job[data-request='{hard}']")
    ben_row = browser.find_element(By.ID, f"row-tech-{company['ben']}").text
    assert f"#{hard}" in ben_row and "Hal Moreno" in ben_row
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, f"#esc-list li.esc[data-request='{hard}']"))
    assert browser.find_element(By.ID, "esc-count").text == "0"

    if os.environ.get("CONSOLE_SCREENSHOT"):
        browser.execute_script("window.scrollTo(0, 0);")
        browser.save_screenshot(os.environ["CONSOLE_SCREENSHOT"])

    # From the keyboard: Enter on a job opens it; reassign Ana's job to Ben, overriding the territory.
    job = css(f"#row-tech-{company['ana']} button.job[data-request='{first}']")
    job.send_keys(Keys.ENTER)
    panel = css("#job-panel")
    assert browser.switch_to.active_element == panel
    Select(browser.find_element(By.ID, "reassign-tech")).select_by_value(str(company["ben"]))
    browser.find_element(By.ID, "reassign-submit").click()
    css("#reassign-overrides")
    assert "outside territory" in browser.find_element(By.ID, "reassign-reasons").text
    browser.find_element(By.ID, "reassign-rule-territory").click()
    browser.find_element(By.ID, "reassign-reason").send_keys("Ana is off sick")
    browser.find_element(By.ID, "reassign-submit").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "flash"), f"Request #{first} moved to Ben"))
    css(f"#row-tech-{company['ben']} button.job[data-request='{first}']")
    assert not browser.find_elements(By.CSS_SELECTOR, f"#row-tech-{company['ana']} button.job")
    del ben_job

    # The request's page: the customer's notification and the decision on its timeline.
    browser.find_element(By.CSS_SELECTOR, f"#row-tech-{company['ben']} td.jobs a[href='/console/requests/{hard}']"
                         ).click()
    css("#timeline li.ev-notification")
    text = browser.find_element(By.ID, "timeline").text
    assert "Message to the customer (email): pending" in text
    assert "Assigned to Ben by maria" in text and "Hal is a priority customer" in text
    assert "Escalated to a dispatcher" in text and "Resolved by maria" in text
    with session_scope() as s:
        from sqlmodel import select

        outbox = s.exec(select(Notification).where(Notification.request_id == hard,
                                                   Notification.recipient_kind == "customer")).all()
    assert [n.recipient for n in outbox] == ["hal@example.net"]
    assert "Hal Moreno" in outbox[0].body or "Hal" in outbox[0].body


def test_without_leaflet_the_map_is_a_plain_drawing_that_says_so(served: str, browser: Any, company: dict[str, int],
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from service.console import pages

    monkeypatch.setattr(pages, "LEAFLET_DIR", tmp_path / "no-leaflet")
    dispatch_id = _post(served, payload())
    wait = WebDriverWait(browser, WAIT)
    browser.get(f"{served}/console?date=2030-01-07")
    wait.until(ec.visibility_of_element_located((By.ID, "username"))).send_keys("maria")
    browser.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
    stop = f"#map svg circle.stop[data-request='{dispatch_id}']"
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, stop)))
    assert "Leaflet is not installed here (run make vendor)" in browser.find_element(By.ID, "map-note").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#map svg polygon")) == 2  # the territories
    assert browser.find_elements(By.CSS_SELECTOR, "#map svg circle.position")
    assert not browser.find_elements(By.CSS_SELECTOR, "script[src*='leaflet']")


def test_tiles_come_from_the_configured_tile_server(served: str, browser: Any, company: dict[str, int],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A tile server on this machine (a real HTTP server answering PNG tiles): the map asks it for tiles."""
    import base64
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from truckroll.settings import get_settings

    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
                           "AAAABJRU5ErkJggg==")
    asked: list[str] = []

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args: Any) -> None:
            pass

    tiles = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=tiles.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("TRUCKROLL_TILE_URL", f"http://127.0.0.1:{tiles.server_address[1]}/{{z}}/{{x}}/{{y}}.png")
        get_settings.cache_clear()
        _post(served, payload())
        wait = WebDriverWait(browser, WAIT)
        browser.get(f"{served}/console?date=2030-01-07")
        wait.until(ec.visibility_of_element_located((By.ID, "username"))).send_keys("maria")
        browser.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
        wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#map img.leaflet-tile")))
        wait.until(lambda d: len(asked) > 0)
        assert all(p.endswith(".png") and p.count("/") == 3 for p in asked), asked[:3]
        assert "Streets from the configured tile server" in browser.find_element(By.ID, "map-note").text
    finally:
        tiles.shutdown()
        tiles.server_close()
        thread.join(5)

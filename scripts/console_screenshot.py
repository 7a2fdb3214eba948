"""A 1280x800 screenshot of the dispatcher's console board (docs/console.png), taken in Debian's chromium.

    .venv/bin/python scripts/console_screenshot.py docs/console.png [--technicians 8] [--requests 34]

Seeds the demo company (with its territories) in a temporary SQLite database, dispatches a day of demo requests
through the one decision and commit (escalating those nobody can take, as the flow does), reports some of the
day's stops as under way, serves the intake service on a free port, signs in as a dispatcher and photographs the
board. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DAY = date(2030, 1, 7)
PASSWORD = "screenshot-only-password"


def seed(technicians: int, requests: int) -> None:
    from bench.console import seed_day
    from truckroll import auth
    from truckroll.db import session_scope

    seed_day(technicians, requests, day=DAY)
    with session_scope() as s:
        auth.create_user("maria", "dispatcher", session=s, password=PASSWORD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--technicians", type=int, default=8)
    parser.add_argument("--requests", type=int, default=34)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="truckroll-shot-"))
    os.environ.update(TRUCKROLL_DATABASE_URL=f"sqlite:///{work / 'shot.db'}", TRUCKROLL_DEVELOPMENT="true",
                      TRUCKROLL_PLANNING_HORIZON_DAYS="36500", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from flows.runs import BackgroundDispatcher
    from service.app import create_app
    from truckroll.db import init_db

    init_db()
    seed(args.technicians, args.requests)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(dispatcher=BackgroundDispatcher(mode="in-process", run=lambda rid, a: None),
                     init_database=False, sweep_interval_seconds=0)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={work / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
        driver.get(f"http://127.0.0.1:{port}/console?date={DAY.isoformat()}")
        wait = WebDriverWait(driver, 30)
        wait.until(ec.visibility_of_element_located((By.ID, "username"))).send_keys("maria")
        driver.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
        wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#board-table button.job")))
        time.sleep(1.0)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
        print(f"wrote {args.out} (1280x800)")
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

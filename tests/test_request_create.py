"""`truckroll request create` against a configured Prefect server: the flow runs in the command's process
(no temporary server) and the command says what it decided."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import factories as f
from truckroll.db import session_scope


def _create(path: Path, url: str, api: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TRUCKROLL_DATABASE_URL=url, PREFECT_API_URL=api)
    return subprocess.run([sys.executable, "-m", "cli.__main__", "request", "create", "--file", str(path),
                           *extra], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.usefixtures("prefect_harness")
def test_request_create_says_what_it_decided(db: str, tmp_path: Path) -> None:
    """Assigned: to whom and the window told; escalated: the reason. Both as text and JSON."""
    from prefect.settings import PREFECT_API_URL

    api = str(PREFECT_API_URL.value())
    with session_scope() as s:
        f.add_job_type(s)
        f.add_technician(s, "Ana")
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps(f.request_payload()))
    r = _create(ok, db, api)
    assert r.returncode == 0, r.stderr
    # Ana leaves home at 08:00 for a customer at her door: start 08:00, window 08:00-10:00.
    assert r.stdout.strip() == "request #1 assigned to Ana: arrival window Mon 07 Jan 08:00-10:00, planned start 08:00"
    late = tmp_path / "late.json"
    late.write_text(json.dumps(f.request_payload(time_windows=[{"start": f.at(18).isoformat(),
                                                                "end": f.at(20).isoformat()}])))
    r = _create(late, db, api, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "escalated" and out["request_id"] == 2 and "shift" in out["reason"]


def test_request_create_through_a_running_service(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--service: the request goes to the intake service signed like a webhook delivery, the command waits for
    the dispatch and prints it; a refused request names its fields; an unreachable service is one line."""
    import socket
    import threading
    import time

    import uvicorn

    from flows.runs import BackgroundDispatcher
    from service.app import create_app
    from tests.service.test_live_api import _dispatch_existing
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_WEBHOOK_SECRET", "s3cret")
    get_settings.cache_clear()
    with session_scope() as s:
        f.add_job_type(s)
        f.add_technician(s, "Ana")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(dispatcher=BackgroundDispatcher(mode="in-process", run=lambda rid, a: _dispatch_existing(rid)),
                     init_database=False, sweep_interval_seconds=0)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        env = dict(os.environ, TRUCKROLL_DATABASE_URL=db, TRUCKROLL_WEBHOOK_SECRET="s3cret",
                   TRUCKROLL_API_KEY=f.api_key("dispatcher"))
        run = dict(capture_output=True, text=True, env=env, timeout=120)
        cmd = [sys.executable, "-m", "cli.__main__", "request", "create", "--service",
               f"http://127.0.0.1:{port}", "--file"]
        ok = tmp_path / "ok.json"
        ok.write_text(json.dumps(f.request_payload()))
        r = subprocess.run([*cmd, str(ok)], **run)  # type: ignore[call-overload]
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == ("request #1 assigned to Ana: arrival window Mon 07 Jan 08:00-10:00, "
                                    "planned start 08:00")
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(f.request_payload(priority=0, colour="red")))
        r = subprocess.run([*cmd, str(bad)], **run)  # type: ignore[call-overload]
        assert r.returncode == 1 and "priority" in r.stdout and "colour" in r.stdout
        assert "nothing was written" in r.stderr
    finally:
        server.should_exit = True
        thread.join(10)
    r = subprocess.run([*cmd, str(ok)], **run)  # type: ignore[call-overload]
    assert r.returncode == 1 and "cannot reach the intake service" in r.stderr
    get_settings.cache_clear()

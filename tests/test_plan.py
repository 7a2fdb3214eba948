"""Pictures of the plan: the HTML page rendered by headless chromium, the CLI, and the flow's artifact."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from models import Assignment, ServiceRequest
from tests import factories as f
from truckroll.settings import get_settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def seed_day() -> tuple[dict[int, str], dict[int, list[int]]]:
    """Three technicians on 2030-01-07: Ana with three jobs, Ben with one, Cy with none."""
    from truckroll.db import session_scope

    techs: dict[int, str] = {}
    jobs: dict[int, list[int]] = {}
    with session_scope() as s:
        f.add_job_type(s)
        plan = {"Ana": [(9, 2), (11, 5), (14, 9)], "Ben": [(10, -6)], "Cy": []}
        for name, stops in plan.items():
            t = f.add_technician(s, name, home=f.north_km(len(techs) * 4))
            assert t.id is not None
            techs[t.id], jobs[t.id] = name, []
            for hour, km in stops:
                loc = f.north_km(km)
                r = ServiceRequest(customer_name=f"Customer of {name} <b>", address=f"{hour} Elm St & Co",
                                   lat=loc.lat, lon=loc.lon, job_type="leak repair", status="assigned")
                s.add(r)
                s.flush()
                assert r.id is not None
                s.add(Assignment(request_id=r.id, technician_id=t.id, scheduled_start=f.at(hour),
                                 scheduled_end=f.at(hour) + timedelta(minutes=60), window_start=f.at(hour - 1),
                                 window_end=f.at(hour + 1), travel_minutes=12.0))
                jobs[t.id].append(r.id)
    return techs, jobs


def dump_dom(page: Path, tmp_path: Path) -> str:
    assert CHROMIUM is not None
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom",
         page.resolve().as_uri()],
        capture_output=True, text=True, timeout=90, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_chromium_renders_every_route_and_job(db: str, tmp_path: Path) -> None:
    """Headless chromium renders the page; its DOM holds a route and a timeline for every technician on shift
    and every job (map marker, timeline bar, table row), with customer text escaped."""
    from truckroll.reports.plan import write_plan

    techs, jobs = seed_day()
    page = tmp_path / "plan.html"
    write_plan(f.DAY, page, settings=get_settings())
    raw = page.read_text()
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"http", raw)  # nothing to fetch: renders offline
    dom = dump_dom(page, tmp_path)
    assert "<svg" in dom and 'id="route-map"' in dom and 'id="gantt"' in dom
    for tid, name in techs.items():
        assert f'id="route-tech-{tid}"' in dom, name
        assert f'id="timeline-tech-{tid}"' in dom, name
        assert name in dom
    all_jobs = [rid for ids in jobs.values() for rid in ids]
    assert len(all_jobs) == 4
    for rid in all_jobs:
        assert len(re.findall(rf'data-request="{rid}"', dom)) == 3, rid  # marker, timeline bar, table row
    # Ana's route visits her three jobs and comes home: 5 points.
    ana = next(t for t, n in techs.items() if n == "Ana")
    route = re.search(rf'id="route-tech-{ana}".*?<polyline points="([^"]+)"', dom, re.S)
    assert route is not None and len(route.group(1).split()) == 5
    assert "&amp; Co" in dom and "Elm St & Co" not in raw


def test_plan_numbers_per_technician(db: str) -> None:
    """Utilisation, travel and idle time per technician add up: jobs + travel + idle = the shift."""
    from truckroll.db import session_scope
    from truckroll.reports.plan import build_day_plan
    from truckroll.travel.provider import get_travel_provider

    techs, jobs = seed_day()
    with session_scope() as s:
        plan = build_day_plan(f.DAY, tz="America/Chicago", session=s, travel=get_travel_provider(get_settings()))
    by_name = {t.name: t for t in plan.technicians}
    assert set(by_name) == set(techs.values())
    ana = by_name["Ana"]
    assert [j.request_id for j in ana.jobs] == jobs[ana.technician_id]
    assert ana.job_minutes == 180
    assert ana.job_minutes + ana.travel_minutes + ana.idle_minutes == pytest.approx(9 * 60)
    assert by_name["Cy"].utilisation == 0 and by_name["Cy"].idle_minutes == 9 * 60
    assert plan.metrics["jobs"] == 4


def test_cli_plan_show_writes_the_page(db: str, tmp_path: Path) -> None:
    """`truckroll plan show --date D --html FILE` writes a page naming every technician and job."""
    from typer.testing import CliRunner

    from cli import app
    techs, jobs = seed_day()
    page = tmp_path / "out.html"
    res = CliRunner().invoke(app, ["plan", "show", "--date", f.DAY.isoformat(), "--html", str(page)])
    assert res.exit_code == 0, res.output
    text = page.read_text()
    assert all(f"#{rid}" in text for ids in jobs.values() for rid in ids)
    assert all(name in text for name in techs.values())
    assert CliRunner().invoke(app, ["plan", "show", "--date", "07/01/2030"]).exit_code == 1


def test_dispatch_flow_links_the_plan_from_an_artifact(db: str, tmp_path: Path, prefect_harness: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """After a dispatch the flow writes the day's page and a markdown artifact with its link and metrics."""
    from prefect.client.orchestration import get_client

    from flows.dispatch import dispatch_service_request
    from truckroll.db import session_scope

    monkeypatch.setenv("TRUCKROLL_PLAN_DIR", str(tmp_path / "plans"))
    get_settings.cache_clear()  # the flow reads the plan_dir setting
    with session_scope() as s:
        f.add_job_type(s)
        f.add_technician(s, "Ana")
    out: Any = dispatch_service_request(payload=f.request_payload())
    result = out.result() if hasattr(out, "result") else out
    page = tmp_path / "plans" / f"plan-{f.DAY.isoformat()}.html"
    assert page.exists() and f"#{result['request_id']}" in page.read_text()
    with get_client(sync_client=True) as client:
        found = client.request("POST", "/artifacts/filter", json={
            "artifacts": {"key": {"any_": [f"day-plan-{f.DAY.isoformat()}"]}}, "limit": 1, "offset": 0,
            "sort": "CREATED_DESC"}).json()
    assert found, "no day-plan artifact"
    assert page.resolve().as_uri() in found[0]["data"]
    assert "| Ana | 1 |" in found[0]["data"]

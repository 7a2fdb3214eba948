"""``truckroll bench console``: what the dispatcher's console costs the service per poll and per click.

A temporary SQLite database with the demo company (its territories and rules) and a day of demo requests
dispatched through the one decision and commit (those nobody can take escalated, as the flow does), a few
stops reported under way; then the console's views are called through the ASGI app in this process
(``fastapi.testclient``, no network), each ``repeat`` times: the board in full, the board answered 304 (the
poll while nothing changed) from the poll cache and built afresh (``TRUCKROLL_CONSOLE_POLL_CACHE_SECONDS=0``),
an escalation's ranking, a request's timeline. Medians and p95 in milliseconds.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

DAY = date(2030, 1, 7)


@dataclass
class ConsoleBench:
    technicians: int
    requests: int
    assigned: int
    escalated: int
    board_bytes: int
    board_ms: float
    board_p95_ms: float
    not_modified_ms: float
    not_modified_p95_ms: float
    not_modified_uncached_ms: float
    not_modified_uncached_p95_ms: float
    ranking_ms: float
    ranking_p95_ms: float
    timeline_ms: float
    timeline_p95_ms: float
    repeat: int


def seed_day(technicians: int, requests: int, *, day: date = DAY, under_way: int = 4) -> tuple[int, int]:
    """The demo company and ``requests`` demo requests of ``day`` dispatched in the configured database;
    the first job of ``under_way`` technicians reported en route and arrived (every other one completed).
    Returns (assigned, escalated)."""
    from sqlmodel import col, select

    from demo import company as demo
    from models import Assignment
    from truckroll import store
    from truckroll.db import session_scope
    from truckroll.dispatch import commit, decision
    from truckroll.live import apply_event
    from truckroll.settings import get_settings
    from truckroll.travel.provider import get_travel_provider

    with session_scope() as s:
        demo.seed_company(s, day, technicians=technicians, rules=True)
    st, travel = get_settings(), get_travel_provider(get_settings())
    assigned = escalated = 0
    for r in demo.generate_requests(day, n=requests):
        with session_scope() as s:
            row, _ = store.create_request(r.payload, session=s, horizon_days=st.planning_horizon_days)
            rid = row.id
        assert rid is not None
        with session_scope() as s:
            loaded, d = decision.decide_request(rid, session=s, travel=travel, rules=st.dispatch,
                                                tz=st.company_timezone)
            if d.chosen is None:
                commit.escalate_request(rid, d.escalation_reason or "no technician can take it", d.candidates,
                                        session=s, dispatch_email=st.dispatch_email, console_url=st.console_url)
                escalated += 1
            else:
                result = commit.commit_assignment(d, loaded.job, session=s, travel=travel, settings=st)
                commit.write_confirmation(result, session=s)
                assigned += 1
    with session_scope() as s:
        firsts: dict[int, Assignment] = {}
        for a in s.exec(select(Assignment).order_by(col(Assignment.scheduled_start))).all():
            firsts.setdefault(a.technician_id, a)
    for i, a in enumerate(list(firsts.values())[:under_way]):
        apply_event(a.request_id, "en_route", settings=st, at=a.scheduled_start - timedelta(minutes=20),
                    by="technician")
        apply_event(a.request_id, "arrived", settings=st, at=a.scheduled_start, by="technician")
        if i % 2 == 0:
            apply_event(a.request_id, "completed", settings=st, at=a.scheduled_end, by="technician")
    return assigned, escalated


def _timed(call: Any, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        call()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def run_console_bench(*, technicians: int = 25, requests: int = 110, repeat: int = 20) -> ConsoleBench:
    from fastapi.testclient import TestClient
    from sqlmodel import select

    from flows.runs import BackgroundDispatcher
    from models import Escalation
    from service.app import create_app
    from truckroll import auth
    from truckroll.db import configure, init_db, session_scope
    from truckroll.settings import get_settings

    work = Path(tempfile.mkdtemp(prefix="truckroll-bench-console-"))
    url = f"sqlite:///{work / 'console.db'}"
    os.environ.update(TRUCKROLL_DATABASE_URL=url, TRUCKROLL_PLANNING_HORIZON_DAYS="36500")
    os.environ.setdefault("TRUCKROLL_DEVELOPMENT", "true")
    get_settings.cache_clear()
    engine = configure(url)
    try:
        init_db()
        assigned, escalated = seed_day(technicians, requests)
        with session_scope() as s:
            user = auth.create_user("bench-dispatcher", "dispatcher", session=s)
            key, _ = auth.issue(user, auth.CredentialKind.API_KEY, session=s)
            esc = s.exec(select(Escalation)).first()
            esc_id = esc.id if esc is not None else None
        app = create_app(dispatcher=BackgroundDispatcher(mode="in-process", run=lambda rid, a: None),
                         init_database=False, sweep_interval_seconds=0)
        with TestClient(app, headers={"X-API-Key": key}) as client:
            params = {"date": DAY.isoformat()}
            first = client.get("/console/api/board", params=params)
            assert first.status_code == 200, first.text
            etag = first.headers["ETag"]
            board = _timed(lambda: client.get("/console/api/board", params=params).raise_for_status(), repeat)

            def not_modified() -> None:
                r = client.get("/console/api/board", params=params, headers={"If-None-Match": etag})
                assert r.status_code == 304, r.status_code

            same = _timed(not_modified, repeat)
            os.environ["TRUCKROLL_CONSOLE_POLL_CACHE_SECONDS"] = "0"
            get_settings.cache_clear()
            try:
                built = _timed(not_modified, repeat)
            finally:
                os.environ.pop("TRUCKROLL_CONSOLE_POLL_CACHE_SECONDS", None)
                get_settings.cache_clear()
            ranking = _timed(lambda: client.get(f"/console/api/escalations/{esc_id}/ranking").raise_for_status(),
                             repeat) if esc_id else [0.0]
            rid = first.json()["rows"][0]["jobs"][0]["request_id"]
            timeline = _timed(lambda: client.get(f"/console/api/requests/{rid}/timeline").raise_for_status(), repeat)
        return ConsoleBench(
            technicians=technicians, requests=requests, assigned=assigned, escalated=escalated,
            board_bytes=len(first.content), board_ms=statistics.median(board), board_p95_ms=_p95(board),
            not_modified_ms=statistics.median(same), not_modified_p95_ms=_p95(same),
            not_modified_uncached_ms=statistics.median(built), not_modified_uncached_p95_ms=_p95(built),
            ranking_ms=statistics.median(ranking), ranking_p95_ms=_p95(ranking),
            timeline_ms=statistics.median(timeline), timeline_p95_ms=_p95(timeline), repeat=repeat)
    finally:
        engine.dispose()
        get_settings.cache_clear()
        shutil.rmtree(work, ignore_errors=True)


def as_dict(r: ConsoleBench) -> dict[str, Any]:
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in asdict(r).items()}

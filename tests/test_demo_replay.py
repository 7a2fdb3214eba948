"""The demo's company roster, its multi-day stream, and a small replay through the dispatch flow and the
re-optimisation."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from sqlmodel import select

from demo import company as demo
from demo import scenario
from demo.replay import replay, share_escalated
from models import Assignment, Shift
from tests.factories import DAY, TZ
from truckroll.db import session_scope


def test_roster_has_a_shift_on_every_working_day_of_the_weeks(db):
    with session_scope() as s:
        techs = demo.seed_company(s, DAY, technicians=3, weeks=2)
        shifts = s.exec(select(Shift)).all()
    days = scenario.working_days(DAY, 10)
    assert {sh.start.astimezone(TZ).date() for sh in shifts} == set(days)
    assert Counter(sh.technician_id for sh in shifts) == {t.id: 10 for t in techs}


def test_stream_is_calibrated_and_arrives_before_its_days() -> None:
    days = scenario.working_days(date(2030, 1, 7), 3)
    stream = demo.generate_stream(days, 125, seed=5)
    assert len(stream) == 375
    assert [r.arrives_at for r in stream] == sorted(r.arrives_at for r in stream)
    multi = [r for r in stream if len({w["start"][:10] for w in r.payload["time_windows"]}) > 1]
    assert 0.15 * len(stream) < len(multi) < 0.45 * len(stream)  # windows on several days
    for r in stream:
        first = min(datetime.fromisoformat(w["start"]) for w in r.payload["time_windows"])
        if r.payload["priority"] > 2:
            # ordinary work is booked on the days before, by 07:00 of its first day at the latest
            assert r.arrives_at <= datetime.combine(first.date(), time(7), tzinfo=TZ)
            assert r.arrives_at >= datetime.combine(first.date() - timedelta(days=3), time(0), tzinfo=TZ)
    # January: heating work outnumbers cooling work
    kinds = Counter(r.payload["job_type"] for r in stream)
    assert kinds["furnace repair"] > 2 * kinds["ac repair"]
    assert demo.season_of(date(2030, 7, 1)) == "summer"


@pytest.mark.usefixtures("prefect_harness")
def test_small_replay_goes_through_the_flow_and_the_reoptimisation(db):
    """4 technicians, 2 working days of 6 requests: every request is decided, each morning's re-optimisation
    ran, and no technician is double-booked."""
    days = scenario.working_days(DAY, 2)
    with session_scope() as s:
        demo.seed_company(s, DAY, technicians=4, weeks=1)
    replayed = replay(demo.generate_stream(days, 6, seed=2), days, reoptimize_seconds=2, concurrency=3)
    assert [r.day for r in replayed] == days
    assert sum(r.dispatched for r in replayed) == 12
    assert all(r.reoptimized and not r.reoptimized.startswith("failed") for r in replayed)
    with session_scope() as s:
        escalated, total = share_escalated(s)
        rows = s.exec(select(Assignment)).all()
    assert total == 12 and 0 <= escalated <= 12
    by_tech: dict[int, list[Assignment]] = {}
    for a in rows:
        if a.status != "cancelled":
            by_tech.setdefault(a.technician_id, []).append(a)
    for mine in by_tech.values():
        mine.sort(key=lambda a: a.scheduled_start)
        for x, y in zip(mine, mine[1:], strict=False):
            assert x.scheduled_end <= y.scheduled_start


def test_rural_customers_book_the_days_and_hours_the_company_visits() -> None:
    """The rural area (demo_rules.yaml) is visited Mon/Fri 08-12 and Wed 13-18: its customers' windows lie
    there only, and a stream of Tuesday and Thursday has no rural customer (the booking offers those days
    only); Monday's stream does have some."""
    monday = date(2030, 1, 7)
    assert demo.rural_visiting_hours(monday) == ((8, 0), (12, 0))
    assert demo.rural_visiting_hours(monday + timedelta(days=1)) is None
    assert demo.rural_visiting_hours(monday + timedelta(days=2)) == ((13, 0), (18, 0))
    stream = demo.generate_stream(scenario.working_days(monday, 5), 150, seed=3)
    rural = [r for r in stream if r.payload["lat"] >= demo.RURAL_LAT]
    assert rural
    for r in rural:
        for w in r.payload["time_windows"]:
            start, end = datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"])
            hours = demo.rural_visiting_hours(start.date())
            assert hours is not None, r.payload
            assert (start.hour, start.minute) == hours[0] and (end.hour, end.minute) == hours[1]


def test_every_demo_technician_may_cross_the_city_line_as_a_secondary(db):
    """Weekday boundaries are "hard, then soft": each technician's home city area is the primary, the other
    one a secondary, so a job nobody inside can take may go across the line (recorded as a relaxation)."""
    from models import TechnicianMembership, Territory

    with session_scope() as s:
        techs = demo.seed_company(s, DAY, technicians=10, rules=True)
        names = {t.id: t.name for t in s.exec(select(Territory)).all()}
        kinds: dict[int, dict[str, str]] = {}
        for m in s.exec(select(TechnicianMembership)).all():
            if names[m.territory_id] in ("Dallas", "Irving") and m.kind in ("primary", "secondary"):
                kinds.setdefault(m.technician_id, {})[m.kind] = names[m.territory_id]
    assert set(kinds) == {t.id for t in techs}
    for k in kinds.values():
        assert {k["primary"], k["secondary"]} == {"Dallas", "Irving"}


def test_the_demo_table_shows_the_absent_technician_as_absent(db):
    """The demo company's technician index 14 is away for training all day: the demo's technician table says
    so instead of showing a full (100%) day."""
    from cli.app import console
    from cli.core import print_technician_table

    with session_scope() as s:
        techs = demo.seed_company(s, DAY, technicians=15, rules=True)
        absent = techs[14].name
    width = console.width
    console.width = 200
    try:
        with console.capture() as captured:
            print_technician_table(DAY)
    finally:
        console.width = width
    rows = [line for line in captured.get().splitlines() if absent in line]
    assert rows and "absent" in rows[0] and "100%" not in rows[0]


@pytest.mark.usefixtures("prefect_harness")
def test_a_failed_dispatch_run_is_tried_again_without_a_second_request(db, monkeypatch):
    """The replay's runs carry an idempotency key: when a run fails after the request was stored (here: the
    first run of each request raises after the real one ran), the next attempt finds it and nothing is
    created twice."""
    import flows.dispatch
    from models import ServiceRequest

    real = flows.dispatch.dispatch_service_request
    seen: Counter[str] = Counter()

    def flaky(**kwargs: Any) -> Any:
        out = real(**kwargs)
        seen[kwargs["idempotency_key"]] += 1
        if seen[kwargs["idempotency_key"]] == 1:
            raise RuntimeError("Server error '503 Service Unavailable'")
        return out

    monkeypatch.setattr(flows.dispatch, "dispatch_service_request", flaky)
    with session_scope() as s:
        demo.seed_company(s, DAY, technicians=3, weeks=1)
    replayed = replay(demo.generate_stream([DAY], 3, seed=6), [DAY], reoptimize_seconds=1)
    assert sum(r.assigned + r.escalated for r in replayed) == 3
    assert set(seen.values()) == {2}
    with session_scope() as s:
        assert len(s.exec(select(ServiceRequest)).all()) == 3


def test_replay_order_dispatches_then_reoptimises_at_night_and_after_the_morning_emergencies(monkeypatch):
    """The replay's timeline (flows replaced by recorders): a day's booked requests, the 05:00 run over the
    horizon, the morning's emergencies, then an 08:00 run of that day alone; the last day takes the rest."""
    import flows.dispatch
    import flows.reoptimize

    days = scenario.working_days(date(2030, 1, 8), 2)
    stream = demo.generate_stream(days, 30, seed=8)
    calls: list[tuple[str, Any]] = []

    def dispatch(**kwargs: Any) -> dict[str, Any]:
        calls.append(("dispatch", kwargs["payload"]))
        return {"status": "assigned"}

    class Done:
        message = "kept the current plan"

        def result(self, raise_on_failure: bool = True) -> dict[str, Any]:
            return {}

    def reoptimize(**kwargs: Any) -> Done:
        calls.append(("reoptimize", (kwargs["day"], kwargs["horizon_days"])))
        return Done()

    monkeypatch.setattr(flows.dispatch, "dispatch_service_request", dispatch)
    monkeypatch.setattr(flows.reoptimize, "reoptimize_day", reoptimize)
    replayed = replay(stream, days)
    runs = [(i, c[1]) for i, c in enumerate(calls) if c[0] == "reoptimize"]
    first = days[0].isoformat()
    assert [r for _, r in runs][:2] == [(first, 2), (first, 1)]
    night, morning = runs[0][0], runs[1][0]
    emergencies = [c[1] for c in calls[night + 1:morning]]
    assert emergencies and all(p["priority"] <= 2 for p in emergencies)
    assert all(p["priority"] > 2 for _, p in calls[:night])  # booked work only before the night run
    assert replayed[0].reoptimized_after_emergencies == "kept the current plan"
    assert sum(r.dispatched for r in replayed) == len(stream) == sum(1 for c in calls if c[0] == "dispatch")


def test_each_replay_thread_keeps_one_prefect_client_for_all_its_runs() -> None:
    """The replay's threads open one Prefect client each and every run of a thread uses it (a run outside any
    client context would open its own, with a new TLS context); every item is answered once."""
    import threading

    from prefect.context import SyncClientContext

    from demo.replay import _in_threads

    clients: dict[str, set[int]] = {}
    lock = threading.Lock()

    def one(item: Any) -> str:
        ctx = SyncClientContext.get()
        assert ctx is not None, "the run has no client context"
        with lock:
            clients.setdefault(threading.current_thread().name, set()).add(id(ctx.client))
        return str(item)

    got = list(_in_threads(list(range(30)), one, 3))  # type: ignore[arg-type]
    assert sorted(got, key=int) == [str(i) for i in range(30)]
    assert 1 <= len(clients) <= 3
    assert all(len(ids) == 1 for ids in clients.values())
    assert len(set().union(*clients.values())) == len(clients)

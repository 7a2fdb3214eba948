"""The demo's company roster, its multi-day stream, and a small replay through the dispatch flow and the
re-optimisation."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta

import pytest
from sqlmodel import select

from models import Assignment, Shift
from tests.factories import DAY, TZ
from truckroll import demo
from truckroll.db import session_scope


def test_roster_has_a_shift_on_every_working_day_of_the_weeks(db):
    with session_scope() as s:
        techs = demo.seed_company(s, DAY, technicians=3, weeks=2)
        shifts = s.exec(select(Shift)).all()
    days = demo.working_days(DAY, 10)
    assert {sh.start.astimezone(TZ).date() for sh in shifts} == set(days)
    assert Counter(sh.technician_id for sh in shifts) == {t.id: 10 for t in techs}


def test_stream_is_calibrated_and_arrives_before_its_days() -> None:
    days = demo.working_days(date(2030, 1, 7), 3)
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
    days = demo.working_days(DAY, 2)
    with session_scope() as s:
        demo.seed_company(s, DAY, technicians=4, weeks=1)
    replayed = demo.replay(demo.generate_stream(days, 6, seed=2), days, reoptimize_seconds=2)
    assert [r.day for r in replayed] == days
    assert sum(r.dispatched for r in replayed) == 12
    assert all(r.reoptimized and not r.reoptimized.startswith("failed") for r in replayed)
    with session_scope() as s:
        escalated, total = demo.share_escalated(s)
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

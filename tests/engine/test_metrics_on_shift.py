"""A technician absent for the whole shift is not counted as on shift in the day's metrics."""

from __future__ import annotations

from engine.metrics import day_metrics
from engine.travel import GreatCircleTravel
from tests.factories import at, stop, tech_day


def test_absent_technician_is_not_on_shift() -> None:
    working = tech_day(1, stops=[stop(1, at(9), 60)])
    absent = tech_day(2)
    absent.available = []
    m = day_metrics([working, absent], GreatCircleTravel())
    assert m.technicians == 1 and m.jobs_per_technician == 1.0
    absent.available = None
    assert day_metrics([working, absent], GreatCircleTravel()).technicians == 2

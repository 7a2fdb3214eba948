"""Expected demand per arrival window: how many jobs, of which skill and value, a window usually gets.

The booking grid (``WindowGrid``) cuts each day into the arrival windows customers can book (08-10, 10-12,
... in the company's time zone). A ``Forecast`` holds, per (day of week, window, skill, territory), the
expected number of jobs and their mean value. It comes either from the history of requests (counts over
the last K weeks divided by K, and the mean value) or from a configured file (``forecast_from_dict``).
Plain data in, plain data out: no database here (truckroll.booking.windows reads the history).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from models.domain import TimeWindow

DEFAULT_WINDOW_HOURS: tuple[tuple[int, int], ...] = ((8, 10), (10, 12), (12, 14), (14, 16), (16, 18))


@dataclass(frozen=True)
class WindowGrid:
    """The bookable arrival windows of a day: ``(start_hour, end_hour)`` pairs in ``timezone``.

    Raises
    ------
    ValueError
        If a window is empty, outside 0..24, or windows overlap.
    """

    timezone: str = "America/Chicago"
    hours: tuple[tuple[int, int], ...] = DEFAULT_WINDOW_HOURS

    def __post_init__(self) -> None:
        hours = tuple(sorted((int(a), int(b)) for a, b in self.hours))
        if not hours:
            raise ValueError("window hours: at least one window is needed")
        for a, b in hours:
            if not 0 <= a < b <= 24:
                raise ValueError(f"window hours: ({a}, {b}) must satisfy 0 <= start < end <= 24")
        for (_, b), (c, _) in zip(hours, hours[1:], strict=False):
            if c < b:
                raise ValueError(f"window hours: windows overlap at {c}h")
        object.__setattr__(self, "hours", hours)
        ZoneInfo(self.timezone)  # raises on an unknown zone

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def label(self, index: int) -> str:
        a, b = self.hours[index]
        return f"{a:02d}-{b:02d}"

    def window(self, day: date, index: int) -> TimeWindow:
        a, b = self.hours[index]
        start = datetime.combine(day, time(0), tzinfo=self.tz) + timedelta(hours=a)
        return TimeWindow(start, datetime.combine(day, time(0), tzinfo=self.tz) + timedelta(hours=b))

    def windows_on(self, day: date) -> list[TimeWindow]:
        return [self.window(day, i) for i in range(len(self.hours))]

    def locate(self, t: datetime) -> tuple[date, int] | None:
        """The (local day, window index) a time falls in, or None outside every window."""
        local = t.astimezone(self.tz)
        hour = local.hour + local.minute / 60 + local.second / 3600
        for i, (a, b) in enumerate(self.hours):
            if a <= hour < b:
                return local.date(), i
        return None


@dataclass(frozen=True)
class DemandCell:
    """Expected jobs of one skill in one window, and their mean estimated value.

    ``samples`` (from history) are the past requests' (hours booked ahead, value), sorted by hours: they say
    how much of the demand is still to come a given time before the window (expensive emergencies book late,
    maintenance early), and its value. A configured cell has none.
    """

    expected_jobs: float
    mean_value: float
    samples: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if not math.isfinite(self.expected_jobs) or self.expected_jobs < 0:
            raise ValueError(f"expected_jobs must be >= 0 (got {self.expected_jobs})")
        if not math.isfinite(self.mean_value) or self.mean_value < 0:
            raise ValueError(f"mean_value must be >= 0 (got {self.mean_value})")

    def still_to_come(self, hours_left: float) -> DemandCell:
        """The part of the demand booked less than ``hours_left`` hours ahead (all of it without samples)."""
        if not self.samples:
            return self
        late = [v for h, v in self.samples if h <= hours_left]
        if not late:
            return DemandCell(0.0, 0.0)
        per_sample = self.expected_jobs / len(self.samples)
        return DemandCell(per_sample * len(late), sum(late) / len(late))


# (weekday 0=Monday, window index, skill, territory or None)
ForecastKey = tuple[int, int, str, str | None]


@dataclass(frozen=True)
class DemandRecord:
    """One past request: when it was to be served, its main skill, its value, its territory if any, and how
    many hours before ``when`` it was booked (None: unknown)."""

    when: datetime
    skill: str
    value: float
    territory: str | None = None
    lead_hours: float | None = None


@dataclass
class Forecast:
    """Expected demand per (day of week, window, skill, territory)."""

    cells: dict[ForecastKey, DemandCell]
    source: str = "configured"

    def demand(self, day: date, window_index: int, territory: str | None = None) -> dict[str, DemandCell]:
        """skill -> expected demand in that window of that day (territory None = the whole company)."""
        wd = day.weekday()
        return {skill: cell for (w, i, skill, terr), cell in self.cells.items()
                if w == wd and i == window_index and terr == territory}

    def to_dict(self, grid: WindowGrid) -> dict[str, Any]:
        return {"source": self.source, "cells": [
            {"weekday": w, "window": grid.label(i), "skill": s, "territory": t,
             "expected_jobs": round(c.expected_jobs, 4), "mean_value": round(c.mean_value, 2)}
            for (w, i, s, t), c in sorted(self.cells.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2],
                                                                              kv[0][3] or ""))]}


def forecast_from_history(records: Iterable[DemandRecord], grid: WindowGrid, *, weeks: int,
                          until: date) -> Forecast:
    """Counts per (weekday, window, skill, territory) over the ``weeks`` weeks before ``until``, divided by
    ``weeks``, with the mean value. Records outside every window or outside the period are ignored.

    A record with a territory counts both for its territory and for the whole company (territory None).

    Raises
    ------
    ValueError
        If ``weeks`` < 1.
    """
    if weeks < 1:
        raise ValueError(f"weeks must be >= 1 (got {weeks})")
    since = until - timedelta(weeks=weeks)
    counts: dict[ForecastKey, int] = defaultdict(int)
    totals: dict[ForecastKey, float] = defaultdict(float)
    samples: dict[ForecastKey, list[tuple[float, float]]] = defaultdict(list)
    leads_known = True
    for r in records:
        where = grid.locate(r.when)
        if where is None:
            continue
        day, idx = where
        if not since <= day < until:
            continue
        for terr in {None, r.territory}:
            key = (day.weekday(), idx, r.skill, terr)
            counts[key] += 1
            totals[key] += r.value
            if r.lead_hours is None:
                leads_known = False
            else:
                samples[key].append((max(0.0, r.lead_hours), r.value))
    cells = {k: DemandCell(n / weeks, totals[k] / n, tuple(sorted(samples[k])) if leads_known else ())
             for k, n in counts.items()}
    return Forecast(cells, source=f"history of the {weeks} weeks before {until.isoformat()}")


def forecast_from_dict(data: Mapping[str, Any], grid: WindowGrid) -> Forecast:
    """A configured forecast: ``{"cells": [{"weekday": 3, "window": "08-10", "skill": "electrical",
    "territory": null, "expected_jobs": 2.0, "mean_value": 1800}]}`` (weekday 0 = Monday).

    Raises
    ------
    ValueError
        Naming the malformed field.
    """
    raw = data.get("cells") if isinstance(data, Mapping) else None
    if not isinstance(raw, list):
        raise ValueError("forecast: field 'cells' must be a list")
    labels = {grid.label(i): i for i in range(len(grid.hours))}
    cells: dict[ForecastKey, DemandCell] = {}
    for n, c in enumerate(raw):
        where = f"cells[{n}]"
        if not isinstance(c, Mapping):
            raise ValueError(f"{where} must be an object")
        for name in ("weekday", "window", "skill", "expected_jobs", "mean_value"):
            if name not in c:
                raise ValueError(f"{where}: missing field {name!r}")
        wd = c["weekday"]
        if not isinstance(wd, int) or not 0 <= wd <= 6:
            raise ValueError(f"{where}: weekday must be 0 (Monday) .. 6 (got {wd!r})")
        window = c["window"]
        idx = labels.get(window) if isinstance(window, str) else window
        if not isinstance(idx, int) or not 0 <= idx < len(grid.hours):
            raise ValueError(f"{where}: window {window!r} is not one of {', '.join(labels)}")
        try:
            cell = DemandCell(float(c["expected_jobs"]), float(c["mean_value"]))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        cells[(wd, idx, str(c["skill"]), c.get("territory"))] = cell
    return Forecast(cells, source="configured")


def remaining_demand(forecast: Forecast, day: date, window_index: int, booked: Mapping[str, int],
                     territory: str | None = None, hours_left: float | None = None) -> dict[str, DemandCell]:
    """The forecast jobs of a window that are still to come, per skill.

    A cell learned from history with booking lead times keeps the requests usually booked less than
    ``hours_left`` hours ahead (the others have arrived already and hold capacity in the routes). Otherwise
    (a configured cell, or no ``hours_left``) the jobs already booked in the window are subtracted.
    """
    out = {}
    for skill, cell in forecast.demand(day, window_index, territory).items():
        if cell.samples and hours_left is not None:
            left_cell = cell.still_to_come(hours_left)
        else:
            left_cell = DemandCell(max(0.0, cell.expected_jobs - booked.get(skill, 0)), cell.mean_value)
        if left_cell.expected_jobs > 1e-9:
            out[skill] = left_cell
    return out


def main_skill(required_skills: Mapping[str, int], fallback: str = "") -> str:
    """The skill a job is forecast under: its highest required level (ties: alphabetical)."""
    if not required_skills:
        return fallback
    return sorted(required_skills.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]

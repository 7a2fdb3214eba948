"""Shifts from weekly patterns with dated exceptions (as field-service tools' shift templates and patterns)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.rules.availability import merge, subtract
from models.domain import TimeWindow


@dataclass(frozen=True, slots=True)
class ShiftExceptionSpec:
    """On ``day`` the pattern does not apply: the technician is off (no hours) or works ``start``-``end``."""

    day: date
    start: time | None = None
    end: time | None = None  # time(0) = midnight at the end of the day

    def __post_init__(self) -> None:
        if (self.start is None) != (self.end is None):
            raise ValueError(f"exception on {self.day.isoformat()}: give both start and end, or neither (off)")
        if self.start is not None and self.end is not None and self.end != time(0) and self.end <= self.start:
            raise ValueError(f"exception on {self.day.isoformat()}: ends ({self.end:%H:%M}) before it starts "
                             f"({self.start:%H:%M})")


def apply_exceptions(intervals: list[TimeWindow], exceptions: list[ShiftExceptionSpec], tz: str) -> list[TimeWindow]:
    """The pattern's dated ``intervals`` with each exception's local day replaced by its hours (or nothing)."""
    if not exceptions:
        return intervals
    z = ZoneInfo(tz)
    out = list(intervals)
    for ex in exceptions:
        day_start = datetime.combine(ex.day, time(0), tzinfo=z)
        day_end = datetime.combine(ex.day + timedelta(days=1), time(0), tzinfo=z)
        out = subtract(out, [TimeWindow(day_start, day_end)])
        if ex.start is not None and ex.end is not None:
            end = day_end if ex.end == time(0) else datetime.combine(ex.day, ex.end, tzinfo=z)
            out.append(TimeWindow(datetime.combine(ex.day, ex.start, tzinfo=z), end))
    return merge(out)

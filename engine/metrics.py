"""The measures dispatchers judge a day by, computed from the day's routes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.dispatch.insertion import route_travel_minutes, utilisation
from engine.travel import TravelTimeProvider
from models.domain import TechnicianDay


@dataclass(frozen=True)
class DayMetrics:
    technicians: int
    jobs: int
    average_utilisation: float
    jobs_per_technician: float
    # mean of the legs that go from one job to the next (home legs excluded)
    average_travel_between_jobs_minutes: float
    # all driving, home legs included, per job
    travel_per_job_minutes: float
    total_travel_minutes: float
    revenue: float
    escalations: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def day_metrics(days: list[TechnicianDay], travel: TravelTimeProvider, *, values: dict[int, float] | None = None,
                escalations: int = 0) -> DayMetrics:
    """Metrics over the technicians' shifts of one day.

    Parameters
    ----------
    days:
        One entry per technician shift of the day, with its route. A technician absent for the whole shift
        is not on shift: not counted among the technicians nor in the average utilisation.
    values:
        request id -> estimated value, for the revenue served.
    escalations:
        Requests of the day left to a dispatcher.
    """
    days = [d for d in days if d.on_shift or d.stops]
    n = len(days)
    jobs = sum(len(d.stops) for d in days)
    between = [s.travel_minutes for d in days for s in d.stops[1:]]
    total_travel = sum(route_travel_minutes(d, travel) for d in days)
    values = values or {}
    return DayMetrics(
        technicians=n, jobs=jobs,
        average_utilisation=sum(utilisation(d, travel) for d in days) / n if n else 0.0,
        jobs_per_technician=jobs / n if n else 0.0,
        average_travel_between_jobs_minutes=sum(between) / len(between) if between else 0.0,
        travel_per_job_minutes=total_travel / jobs if jobs else 0.0,
        total_travel_minutes=total_travel,
        revenue=sum(values.get(s.request_id, 0.0) for d in days for s in d.stops),
        escalations=escalations,
    )

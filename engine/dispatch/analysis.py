"""Step 2: analyse a request's requirements (skills, certifications, parts, duration, windows)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from models.domain import JobRequirements, JobTypeSpec, Location, TimeWindow

COMPLEXITIES = ("low", "medium", "high")
# A request with no customer window may be served any time in this horizon from when it arrives.
DEFAULT_HORIZON = timedelta(days=2)


def required_skill_levels(job_type: JobTypeSpec, complexity: str, explicit: Mapping[str, int]) -> dict[str, int]:
    """The catalogue's minimum levels for the complexity, raised by any level the request asks for itself.

    Raises
    ------
    ValueError
        If the complexity is unknown or the job type has no levels for it.
    """
    if complexity not in COMPLEXITIES:
        raise ValueError(f"complexity must be one of {', '.join(COMPLEXITIES)} (got {complexity!r})")
    levels = dict(job_type.skill_levels_by_complexity.get(complexity) or {})
    for skill, level in explicit.items():
        levels[skill] = max(levels.get(skill, 0), int(level))
    return levels


def analyse_requirements(
    *,
    request_id: int,
    location: Location,
    job_type: JobTypeSpec,
    complexity: str = "medium",
    required_skills: Mapping[str, int] | None = None,
    required_certifications: Iterable[str] = (),
    parts_needed: Mapping[str, int] | None = None,
    duration_minutes: float | None = None,
    windows: Iterable[TimeWindow] = (),
    priority: int = 5,
    estimated_value: float = 0.0,
    preferred_technician_ids: Iterable[int] = (),
    excluded_technician_ids: Iterable[int] = (),
    received_at: datetime,
) -> JobRequirements:
    """Combine the request with its catalogue entry into what the job needs.

    Missing duration, parts and windows come from the catalogue and the default horizon; skills and
    certifications are the union of the catalogue's and the request's.
    """
    duration = float(duration_minutes) if duration_minutes else float(job_type.default_duration_minutes)
    if duration <= 0:
        raise ValueError(f"duration must be positive (got {duration})")
    certs = sorted(set(job_type.required_certifications) | set(required_certifications))
    parts = dict(parts_needed) if parts_needed else dict(job_type.typical_parts)
    window_list = sorted(windows, key=lambda w: w.start)
    if not window_list:
        window_list = [TimeWindow(received_at, received_at + DEFAULT_HORIZON)]
    return JobRequirements(
        request_id=request_id,
        location=location,
        duration_minutes=duration,
        required_skills=required_skill_levels(job_type, complexity, required_skills or {}),
        required_certifications=certs,
        parts_needed=parts,
        windows=window_list,
        priority=priority,
        estimated_value=estimated_value,
        preferred_technician_ids=frozenset(preferred_technician_ids),
        excluded_technician_ids=frozenset(excluded_technician_ids),
    )

"""Plain domain types of the dispatch rules: territories, memberships, availability, travel and boundary policies.

These are what the engine's rule functions (``engine.rules.territories``, ``engine.rules.availability``) take; the
database rows live in ``models.territory_tables`` and ``truckroll.store`` turns one into the other.
Every constructor validates and raises ``ValueError`` with a plain message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time

from models.domain import Location, TimeWindow

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MEMBERSHIP_KINDS = ("primary", "secondary", "relocation")
# "hard": only the primary (or relocation) territory. "soft": the secondaries too, those inside the hard boundary
# preferred. "hard_then_soft": the hard boundary is a rule relaxed only when nobody inside it can take the job
# even by displacing less urgent work; the relaxation is recorded on the decision.
BOUNDARY_MODES = ("hard", "soft", "hard_then_soft")
TRAVEL_TIME_OWNERS = ("company", "technician", "partial")
BASES = ("home", "depot")


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    """One weekly period, e.g. Monday 08:00-12:00, in the local time of whatever it belongs to.

    ``end`` may be ``time(0)`` to mean midnight at the end of the day.
    """

    weekday: int  # 0 = Monday
    start: time
    end: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) .. 6 (Sunday) (got {self.weekday})")
        if self.end != time(0) and self.end <= self.start:
            raise ValueError(f"weekly hours end ({self.end:%H:%M}) before they start ({self.start:%H:%M})")

    def label(self) -> str:
        end = "24:00" if self.end == time(0) else f"{self.end:%H:%M}"
        return f"{WEEKDAYS[self.weekday].capitalize()} {self.start:%H:%M}-{end}"


@dataclass(frozen=True, slots=True)
class Territory:
    """A service territory: a polygon (GeoJSON order: rings of (lon, lat)), a level in the hierarchy
    (0 = top, e.g. a region; higher numbers are nested inside), a time zone and optional visiting hours."""

    id: int
    name: str
    timezone: str
    # Polygon(s): each polygon is (exterior ring, *holes); each ring a tuple of (lon, lat) that closes.
    polygons: tuple[tuple[tuple[tuple[float, float], ...], ...], ...]
    parent_id: int | None = None
    level: int = 0
    # Jobs here may be scheduled only inside these hours (empty = any time).
    visiting_hours: tuple[WeeklyHours, ...] = ()


@dataclass(frozen=True, slots=True)
class Membership:
    """A technician's effective-dated membership of a territory.

    primary: where they normally work (one at a time); secondary: where they may also work (soft boundaries);
    relocation: a dated stay elsewhere that replaces the primary for its dates.
    """

    technician_id: int
    territory_id: int
    kind: str
    effective_from: date
    effective_until: date | None = None  # inclusive; None = open-ended
    max_radius_km: float | None = None
    max_radius_minutes: float | None = None
    # A relocation's own home base for its dates (the route starts and ends there) and the centre its radius
    # is measured from (default: that home base). Only a relocation may carry them.
    home: Location | None = None
    radius_centre: Location | None = None

    def __post_init__(self) -> None:
        if self.kind not in MEMBERSHIP_KINDS:
            raise ValueError(f"membership kind must be one of {', '.join(MEMBERSHIP_KINDS)} (got {self.kind!r})")
        if self.effective_until is not None and self.effective_until < self.effective_from:
            raise ValueError(f"{self.kind} membership ends ({self.effective_until.isoformat()}) before it starts "
                             f"({self.effective_from.isoformat()})")
        if self.kind == "relocation" and self.effective_until is None:
            raise ValueError("a relocation needs an end date (effective_until)")
        if self.kind != "relocation" and (self.home is not None or self.radius_centre is not None):
            raise ValueError(f"only a relocation may carry its own home base or radius centre (this is a "
                             f"{self.kind} membership)")

    def active_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_until is None or day <= self.effective_until)


@dataclass(frozen=True, slots=True)
class TravelPolicy:
    """Where a technician starts and ends the day, and whose time the first and last legs are.

    outbound/inbound: "company" (the leg is working time), "technician" (on their own time: they arrive at
    the first job when the shift starts), "partial" (the first ``*_own_minutes`` of the leg are theirs).
    """

    start_at: str = "home"
    end_at: str = "home"
    depot: Location | None = None
    outbound: str = "company"
    outbound_own_minutes: float = 0.0
    inbound: str = "company"
    inbound_own_minutes: float = 0.0
    # The technician's own maximum travel radius from their home base (a membership's radius overrides it).
    max_radius_km: float | None = None
    max_radius_minutes: float | None = None

    def __post_init__(self) -> None:
        for name in ("start_at", "end_at"):
            if getattr(self, name) not in BASES:
                raise ValueError(f"{name} must be one of {', '.join(BASES)} (got {getattr(self, name)!r})")
        if "depot" in (self.start_at, self.end_at) and self.depot is None:
            raise ValueError("a travel policy that starts or ends at the depot needs the depot's location")
        for name in ("outbound", "inbound"):
            if getattr(self, name) not in TRAVEL_TIME_OWNERS:
                raise ValueError(f"{name} must be one of {', '.join(TRAVEL_TIME_OWNERS)} "
                                 f"(got {getattr(self, name)!r})")
        for name in ("outbound_own_minutes", "inbound_own_minutes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (got {getattr(self, name)})")


@dataclass(frozen=True, slots=True)
class SchedulingPolicy:
    """Boundary mode per weekday: "hard" (only the primary or relocation territory), "soft" (hard first,
    then the secondaries too) or "hard_then_soft" (hard, relaxed to soft only as the last resort before an
    escalation, and recorded as a relaxation)."""

    boundaries: tuple[str, str, str, str, str, str, str] = ("soft",) * 7

    def __post_init__(self) -> None:
        if len(self.boundaries) != 7:
            raise ValueError("a scheduling policy needs a boundary mode for each of the 7 weekdays")
        for mode in self.boundaries:
            if mode not in BOUNDARY_MODES:
                raise ValueError(f"boundary mode must be one of {', '.join(BOUNDARY_MODES)} (got {mode!r})")

    def mode_on(self, day: date) -> str:
        return self.boundaries[day.weekday()]


@dataclass(slots=True)
class TechnicianRules:
    """Where a technician may work: memberships, radius, and whether the shift covers every territory."""

    technician_id: int
    home: Location
    memberships: tuple[Membership, ...] = ()
    max_radius_km: float | None = None
    max_radius_minutes: float | None = None
    # An on-call shift configured to cover every territory.
    all_territories: bool = False
    # territory id -> name, for the reasons.
    territory_names: dict[int, str] = field(default_factory=dict)


@dataclass(slots=True)
class JobRules:
    """Where a job is, as the rules need it: its lowest-level territory and that territory's ancestors."""

    territory_id: int | None = None
    territory_name: str = ""
    # The job's territory first, then its parent, and so on up to the top.
    territory_path: tuple[int, ...] = ()
    timezone: str | None = None
    boundary: str = "soft"
    visiting_hours: tuple[WeeklyHours, ...] = ()
    # The customer's closed hours (weekly, in the territory's time zone): no arrival then.
    closed_hours: tuple[WeeklyHours, ...] = ()


@dataclass(frozen=True, slots=True)
class Absence:
    technician_id: int
    start: datetime
    end: datetime
    reason: str = "absent"

    def __post_init__(self) -> None:
        TimeWindow(self.start, self.end)  # validates awareness and order

"""Plain domain types the scheduling engine works on: no database, no Prefect, no Pyomo."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # models.rules imports this module
    from models.rules import Absence, JobRules, TechnicianRules, TravelPolicy


@dataclass(frozen=True, slots=True)
class Location:
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat <= 90.0:
            raise ValueError(f"latitude {self.lat} is out of range -90..90")
        if not -180.0 <= self.lon <= 180.0:
            raise ValueError(f"longitude {self.lon} is out of range -180..180")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time windows must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"window ends ({self.end.isoformat()}) before it starts ({self.start.isoformat()})")

    def contains(self, t: datetime) -> bool:
        return self.start <= t <= self.end


@dataclass(slots=True)
class Stop:
    """A job already in a technician's route for the day."""

    request_id: int
    location: Location
    start: datetime
    end: datetime
    # The arrival window promised to the customer: the service must start inside it.
    window: TimeWindow
    # Driving from the previous stop, including any depot detour below.
    travel_minutes: float = 0.0
    # Minutes of a stop at the parts depot on the way to this job (the van lacked its parts). Whatever comes
    # before the job, the detour stays on the leg into it.
    detour_minutes: float = 0.0
    # Locked, in-progress and completed stops never move.
    fixed: bool = False
    priority: int = 5
    assignment_id: int | None = None

    @property
    def duration_minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60.0


@dataclass(slots=True)
class TechnicianDay:
    """One technician's day as the engine needs it: who they are, their shift and their route so far."""

    technician_id: int
    name: str
    home: Location
    shift_start: datetime
    shift_end: datetime
    skills: dict[str, int] = field(default_factory=dict)
    certifications: dict[str, date] = field(default_factory=dict)
    upsell_multiplier: float = 1.0
    van_inventory: dict[str, int] = field(default_factory=dict)
    stops: list[Stop] = field(default_factory=list)
    # On-call shifts may take only work of priority <= max_priority (1 = emergency).
    max_priority: int | None = None
    active: bool = True
    # Dispatch rules (None = no restriction): when the technician is actually available inside the shift
    # (shift minus absences), the absences themselves (for the reasons), how they travel, where they may work.
    available: list[TimeWindow] | None = None
    absences: list[Absence] = field(default_factory=list)
    travel_policy: TravelPolicy | None = None
    rules: TechnicianRules | None = None

    @property
    def shift_minutes(self) -> float:
        return (self.shift_end - self.shift_start).total_seconds() / 60.0

    @property
    def available_minutes(self) -> float:
        """The shift minus its absences: the time utilisation is measured against (0 when absent all shift)."""
        if self.available is None:
            return self.shift_minutes
        return sum((w.end - w.start).total_seconds() for w in self.available) / 60.0

    @property
    def on_shift(self) -> bool:
        """False for a technician absent for the whole shift: not counted as on shift."""
        return self.available_minutes > 0


@dataclass(slots=True)
class JobRequirements:
    """What a new request needs, after analysis (step 2)."""

    request_id: int
    location: Location
    duration_minutes: float
    required_skills: dict[str, int]
    required_certifications: list[str]
    parts_needed: dict[str, int]
    windows: list[TimeWindow]
    priority: int = 5
    estimated_value: float = 0.0
    preferred_technician_ids: frozenset[int] = frozenset()
    excluded_technician_ids: frozenset[int] = frozenset()
    # Territory, boundary mode, visiting and closed hours (None = no restriction).
    rules: JobRules | None = None


@dataclass(slots=True)
class StopChange:
    """How an insertion moves a later stop of the same route."""

    request_id: int
    old_start: datetime
    new_start: datetime
    new_end: datetime
    window: TimeWindow
    # True when the new start leaves the window that customer was promised.
    breaks_promise: bool = False


@dataclass(slots=True)
class Insertion:
    """The cheapest feasible place for the new job in one technician's route."""

    position: int
    arrival: datetime
    start: datetime
    end: datetime
    travel_from_previous_minutes: float
    added_travel_minutes: float
    parts_detour_minutes: float
    customer_window: TimeWindow
    later_stops: list[StopChange] = field(default_factory=list)

    @property
    def broken_promises(self) -> list[StopChange]:
        return [c for c in self.later_stops if c.breaks_promise]


@dataclass(slots=True)
class ScoreBreakdown:
    travel: float
    skill: float
    workload: float
    preference: float
    value: float
    total: float
    added_travel_minutes: float
    utilisation_before: float
    utilisation_after: float
    expected_value: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(getattr(self, k), 4) for k in self.__slots__}  # type: ignore[attr-defined]


@dataclass(slots=True)
class Candidate:
    technician_id: int
    name: str
    eligible: bool
    reasons: list[str] = field(default_factory=list)
    # Where the candidate was turned down: "qualification", "threshold", "route", or "" if eligible.
    rejected_at: str = ""
    utilisation: float = 0.0
    utilisation_after: float = 0.0
    insertion: Insertion | None = None
    score: ScoreBreakdown | None = None
    # The shift this candidate would work the job in.
    day: TechnicianDay | None = None
    # "hard" inside the primary/relocation territory, "soft" only through a secondary one, "" when no
    # territory rule applies.
    boundary: str = ""
    # Lower-priority stops an emergency would displace to fit (see engine.dispatch.displacement).
    displaced: list[Stop] = field(default_factory=list)


@dataclass(slots=True)
class Move:
    """A bounded repair's move: ``request_id`` leaves ``from_technician``'s route for ``to_technician``'s,
    inside the window its customer was promised (see ``engine.dispatch.repair``)."""

    request_id: int
    from_technician: int
    to_technician: int
    stop: Stop
    # The moved job, its windows narrowed to the promised one.
    job: JobRequirements
    insertion: Insertion
    # Minus the travel the move adds on the receiving route (the giving route's saving is the plan's).
    travel_delta_minutes: float


@dataclass(slots=True)
class Decision:
    """The outcome of steps 3 to 5 for one request."""

    request_id: int
    chosen: Candidate | None
    candidates: list[Candidate]
    # Set when nobody could take the job: what the dispatcher reads on the escalation.
    escalation_reason: str | None = None
    arrival_window: TimeWindow | None = None
    # Which boundary placed the job ("hard" | "soft"; None when no territory rule applied).
    boundary: str | None = None
    # Stops the emergency displaced from the chosen route; their requests must be dispatched again.
    displaced: list[Stop] = field(default_factory=list)
    # Set when a "hard_then_soft" boundary was relaxed to place the job: what the dispatcher reads.
    relaxation: str | None = None
    # Rules a dispatcher overrode to make this decision (on resolving an escalation).
    overrides: frozenset[str] = frozenset()
    # Jobs a bounded repair moves to other technicians to make room (committed with the decision).
    moves: list[Move] = field(default_factory=list)

    @property
    def escalated(self) -> bool:
        return self.chosen is None

    def why_not(self) -> dict[int, list[str]]:
        return {c.technician_id: c.reasons for c in self.candidates if not c.eligible or c is not self.chosen}


@dataclass(frozen=True, slots=True)
class JobTypeSpec:
    """A catalogue entry as the engine needs it."""

    name: str
    default_duration_minutes: float
    # complexity ("low" | "medium" | "high") -> {skill: minimum level}
    skill_levels_by_complexity: dict[str, dict[str, int]]
    required_certifications: tuple[str, ...] = ()
    typical_parts: dict[str, int] = field(default_factory=dict)

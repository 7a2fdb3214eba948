"""What the intake service answers (and the dispatcher's resolve input)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.schemas import Id, check_time_bounds


class WindowOut(BaseModel):
    start: datetime
    end: datetime


class AcceptedOut(BaseModel):
    request_id: int
    status: str
    status_url: str
    # False when the Idempotency-Key was seen before: this is the first delivery's request.
    created: bool


class AssignmentOut(BaseModel):
    assignment_id: int
    technician_id: int
    technician_name: str
    scheduled_start: datetime
    scheduled_end: datetime
    status: str


class EscalationOut(BaseModel):
    escalation_id: int
    request_id: int
    reason: str
    # technician id -> {name, reasons}: why each technician could not take it
    details: dict[str, Any]
    created_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    customer_name: str = ""
    address: str = ""
    job_type: str = ""
    priority: int = 5
    time_windows: list[WindowOut] = Field(default_factory=list)


class RequestStatusOut(BaseModel):
    request_id: int
    status: str
    job_type: str
    priority: int
    created_at: datetime
    assignment: AssignmentOut | None = None
    arrival_window: WindowOut | None = None
    escalation: EscalationOut | None = None


class ResolveIn(BaseModel):
    """A dispatcher's decision: this technician, at this start if given (else the best time in their route)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    technician_id: Id
    start: datetime | None = None
    # Default: the signed-in user's name.
    resolved_by: str | None = Field(None, min_length=1, max_length=200)
    note: str = Field("", max_length=2000)
    # Rules the dispatcher overrides for this assignment, with the reason (recorded on the decision).
    overrides: list[Literal["territory", "utilisation", "skill_level", "expired_certification"]] = Field(
        default_factory=list, max_length=4)
    override_reason: str = Field("", max_length=2000)

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return None if v is None else check_time_bounds(v)


class ResolveOut(BaseModel):
    escalation_id: int
    request_id: int
    technician_id: int
    technician_name: str
    scheduled_start: datetime
    scheduled_end: datetime
    arrival_window: WindowOut
    confirmation_id: int
    other_stops_moved: int
    notification_ids: list[int]


class StopOut(BaseModel):
    request_id: int
    start: datetime
    end: datetime
    arrival_window: WindowOut
    travel_minutes: float
    fixed: bool
    customer_name: str
    address: str
    job_type: str


class ShiftOut(BaseModel):
    start: datetime
    end: datetime
    stops: list[StopOut]


class ScheduleOut(BaseModel):
    technician_id: int
    name: str
    date: date
    shifts: list[ShiftOut]

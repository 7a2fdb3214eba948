"""The record of one dispatch decision, in typed columns: why the assignment was made as it was.

One row per assignment the decision (automatic or a dispatcher's) wrote. It replaces the score, boundary and
displaced list that used to sit in the ``Assignment.score`` JSON (dropped in migration 0015).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.sqltypes import UTCDateTime
from models.tables import utcnow


class AssignmentDecision(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id", index=True, unique=True)
    request_id: int = Field(foreign_key="servicerequest.id", index=True)
    # The chosen candidate's score and its components (each 0..1); None when no score was computed.
    score_total: float | None = None
    travel: float | None = None
    skill: float | None = None
    workload: float | None = None
    preference: float | None = None
    value: float | None = None
    added_travel_minutes: float | None = None
    utilisation_before: float | None = None
    utilisation_after: float | None = None
    expected_value: float | None = None
    # How many technicians were considered, and how many could take the job.
    candidates: int = 0
    eligible: int = 0
    # "hard" | "soft" (None: no territory rule applied); the relaxation of a hard_then_soft boundary, if any.
    boundary: str | None = None
    relaxation: str | None = None
    # Requests an emergency displaced, comma-separated ids ("" = none).
    displaced_request_ids: str = ""
    # Jobs a bounded repair moved to make room: "request:from>to", comma-separated ("" = none).
    moved_request_ids: str = ""
    # Rules a dispatcher overrode (comma-separated, of engine.dispatch.eligibility.OVERRIDABLE_RULES), and why.
    overrides: str = ""
    override_reason: str | None = None
    # "dispatch" for the automatic decision, else the dispatcher who resolved the escalation.
    decided_by: str = "dispatch"
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))

    @property
    def displaced(self) -> list[int]:
        return [int(x) for x in self.displaced_request_ids.split(",") if x]


class ReoptimizationNotice(SQLModel, table=True):
    """What a re-optimisation changed in an assignment and whether its customer and technician were told: the
    notice is ``pending`` from the change until the notices are queued (``queued``). The previous window and
    technician are what the customer was promised before the first change not yet told."""

    assignment_id: int = Field(foreign_key="assignment.id", primary_key=True)
    state: str = Field(default="pending", index=True)  # "pending" | "queued"
    changed_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # None for an assignment the re-optimisation created (a request placed from escalation)
    previous_window_start: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    previous_window_end: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    previous_technician_id: int | None = None

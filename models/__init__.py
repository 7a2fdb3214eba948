"""Tables (SQLModel) and the plain domain types the engine works on."""

from models.company_tables import (  # noqa: F401  (registers the company set-up and live-day tables)
    Customer,
    LiveEvent,
    ShiftException,
    ShiftPattern,
    StopProgress,
    TechnicianShiftPattern,
)
from models.decision_tables import AssignmentDecision, ReoptimizationNotice
from models.domain import (
    Candidate,
    Decision,
    Insertion,
    JobRequirements,
    JobTypeSpec,
    Location,
    ScoreBreakdown,
    Stop,
    StopChange,
    TechnicianDay,
    TimeWindow,
)
from models.operations import DispatchLease  # noqa: F401  (registers the lease table)
from models.security_tables import AuditEntry, Credential, User, WebhookDelivery  # noqa: F401
from models.tables import (
    ACTIVE_ASSIGNMENT_STATUSES,
    Assignment,
    AssignmentStatus,
    Channel,
    Confirmation,
    Escalation,
    JobType,
    Notification,
    NotificationAttempt,
    RequestStatus,
    ServiceRequest,
    Shift,
    Technician,
    TravelTimeCache,
    utcnow,
)
from models.territory_tables import (  # noqa: F401  (registers the dispatch-rule tables)
    CustomerClosedHours,
    OperatingHours,
    SchedulingPolicy,
    ShiftScope,
    TechnicianAbsence,
    TechnicianMembership,
    Territory,
    TravelPolicyRecord,
)

__all__ = [
    "DispatchLease",
    "ACTIVE_ASSIGNMENT_STATUSES", "Assignment", "AssignmentDecision", "AssignmentStatus", "Candidate", "Channel",
    "ReoptimizationNotice",
    "Confirmation", "Decision", "Escalation", "Insertion", "JobRequirements", "JobType", "JobTypeSpec", "Location",
    "Notification", "NotificationAttempt", "RequestStatus", "ScoreBreakdown", "ServiceRequest", "Shift", "Stop",
    "StopChange",
    "TechnicianDay", "TimeWindow", "Technician", "TravelTimeCache", "utcnow",
]

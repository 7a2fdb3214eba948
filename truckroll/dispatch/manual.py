"""A dispatcher resolves an escalation by naming the technician (and optionally the start time).

The assignment goes through the same decision as an automatic one (``truckroll.dispatch.decision``), among that
technician alone: qualification, cheapest feasible insertion; ``commit.commit_assignment`` writes it
under the technician's write lock with the decision's record, queues the customer, technician and dispatch
notifications, and the confirmation is written. The utilisation target is waived (the dispatcher decided to go
over it). With a recorded reason the dispatcher may also override the territory boundary and a skill level
below the required one; an expired certification stays hard unless ``dispatch.allow_expired_certification_
override`` is set. A missing skill or certification, the shift, absences and the customer's hours never yield.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from engine.dispatch.eligibility import OVERRIDABLE_RULES
from engine.dispatch.insertion import promised_window
from models import Escalation, JobRequirements, RequestStatus, TimeWindow
from truckroll import store
from truckroll.db import session_scope
from truckroll.dispatch import commit
from truckroll.dispatch import decision as one_decision
from truckroll.dispatch.commit import CommittedAssignment
from truckroll.settings import Settings
from truckroll.travel.provider import get_travel_provider

log = logging.getLogger(__name__)


class EscalationClosed(RuntimeError):
    """The escalation was already resolved (or its request is assigned, cancelled or completed)."""


class ManualAssignmentRejected(RuntimeError):
    """The named technician cannot take the job; ``reasons`` say why, as a dispatcher reads them, and
    ``overridable`` which of the rules behind them the dispatcher may override (with a reason)."""

    def __init__(self, reasons: list[str], overridable: list[str] | None = None) -> None:
        self.reasons = reasons
        self.overridable = overridable or []
        super().__init__("; ".join(reasons))


def _rule_of(reason: str) -> str | None:
    """Which overridable rule a reason comes from (None: a rule that never yields)."""
    if reason.startswith("outside territory"):
        return "territory"
    if " level " in reason and "below the required" in reason:
        return "skill_level"
    if reason.startswith("no ") and "(expired " in reason:
        return "expired_certification"
    if "utilisation" in reason:
        return "utilisation"
    return None


def check_overrides(overrides: Sequence[str], reason: str, *,
                    allow_expired_certification: bool) -> frozenset[str]:
    """The overrides a dispatcher asked for, validated.

    Raises
    ------
    ValueError
        An unknown rule, an override without a reason, or an expired certification while the setting keeps
        it hard.
    """
    unknown = sorted(set(overrides) - set(OVERRIDABLE_RULES))
    if unknown:
        raise ValueError(f"cannot override {', '.join(unknown)}: the rules a dispatcher may override are "
                         f"{', '.join(OVERRIDABLE_RULES)}")
    asked = frozenset(overrides) - {"utilisation"}
    if asked and not reason.strip():
        raise ValueError(f"overriding {', '.join(sorted(asked))} needs a reason (override_reason)")
    if "expired_certification" in asked and not allow_expired_certification:
        raise ValueError("an expired certification stays a hard rule: the setting "
                         "dispatch.allow_expired_certification_override is off")
    return frozenset(overrides)


@dataclasses.dataclass
class Resolution:
    escalation_id: int
    assignment: CommittedAssignment
    confirmation_id: int


def _open_escalation(escalation_id: int, *, session: Session) -> Escalation:
    esc = session.get(Escalation, escalation_id)
    if esc is None:
        raise store.NotFound(f"no escalation {escalation_id}")
    if esc.resolved_at is not None:
        raise EscalationClosed(f"escalation {escalation_id} was resolved by {esc.resolved_by} at "
                               f"{esc.resolved_at.isoformat()}")
    return esc


def _job_at(job: JobRequirements, start: datetime, width_minutes: int,
            rounding_minutes: int) -> tuple[JobRequirements, TimeWindow]:
    """The job pinned to ``start`` and the window to promise the customer around it.

    The promised window is taken inside the customer's own window when ``start`` falls in one; otherwise (the
    dispatcher agreed another time with the customer) it starts at ``start``.
    """
    if start.tzinfo is None:
        raise ValueError("start must include a timezone offset")
    pinned = dataclasses.replace(job, windows=[TimeWindow(start, start + timedelta(seconds=1))])
    customer = next((w for w in job.windows if w.contains(start)),
                    TimeWindow(start, start + timedelta(minutes=width_minutes)))
    return pinned, promised_window(start, customer, width_minutes, rounding_minutes)


def waived_rules(overrides: Sequence[str], override_reason: str, settings: Settings) -> frozenset[str]:
    """The rules a dispatcher's assignment lifts: the overrides asked for (checked, with their reason), and
    always the utilisation target (naming the technician waives it). Raises ``ValueError`` on bad overrides."""
    asked = check_overrides(overrides, override_reason,
                            allow_expired_certification=settings.dispatch.allow_expired_certification_override)
    return asked | {"utilisation"}


def resolve_escalation(escalation_id: int, *, technician_id: int, resolved_by: str, note: str = "",
                       start: datetime | None = None, overrides: Sequence[str] = (),
                       override_reason: str = "",
                       on_resolved: Callable[[Resolution, str], None] | None = None,
                       settings: Settings) -> Resolution:
    """Assign the escalated request to ``technician_id`` and close the escalation.

    ``on_resolved(resolution, resolved_by)`` is called once it is written (the service passes
    ``flows.runs.emit_resolved_event``, which tells Prefect). ``settings``: the caller's (default: the
    environment's).

    ``overrides`` (of ``engine.dispatch.eligibility.OVERRIDABLE_RULES``) with ``override_reason``: the rules the
    dispatcher
    overrides; both are recorded on the decision and in the escalation's resolution.

    Raises
    ------
    store.NotFound
        No such escalation or technician.
    EscalationClosed
        Already resolved, or the request is no longer waiting.
    ManualAssignmentRejected
        The technician is not qualified, not on shift, or has no room (at ``start`` when given).
    ValueError
        Bad overrides (see ``check_overrides``) or a start without a time zone.
    """
    rules, tz = settings.dispatch, settings.company_timezone
    waived = waived_rules(overrides, override_reason, settings)
    asked = waived - {"utilisation"}  # what the dispatcher overrode, recorded with the reason
    travel = get_travel_provider(settings)
    with session_scope() as session:
        esc = _open_escalation(escalation_id, session=session)
        request = store.get_request(esc.request_id, session=session)
        if request.status != RequestStatus.ESCALATED:
            raise EscalationClosed(f"request {request.id} is {request.status}, not waiting for a dispatcher")
        store.get_technician(technician_id, session=session)
        job = one_decision.load_job(esc.request_id, session=session, tz=tz)
    window = None
    if start is not None:
        start = start.astimezone(UTC)
        job, window = _job_at(job, start, rules.arrival_window_minutes, rules.arrival_window_rounding_minutes)
    with session_scope() as session:
        days = one_decision.load_days(job, session=session, travel=travel, tz=tz, technician_ids=[technician_id])
    if not days:
        when = f"at {start.isoformat()}" if start else "in the customer's windows"
        raise ManualAssignmentRejected([f"technician {technician_id} has no shift {when}"])
    decision = one_decision.decide(job, days, travel=travel, rules=rules, overrides=waived, repair=False, tz=tz)
    if decision.chosen is None or decision.displaced:
        reasons = decision.candidates[0].reasons if decision.candidates else []
        if decision.displaced:
            reasons = ["only by displacing " + ", ".join(f"#{s.request_id}" for s in decision.displaced)
                       + "; resolve the displaced requests first"]
        overridable = sorted({r for r in map(_rule_of, reasons) if r and r not in waived
                              and (r != "expired_certification" or rules.allow_expired_certification_override)})
        raise ManualAssignmentRejected(reasons, overridable)
    recorded = f"overrode {', '.join(sorted(asked))}: {override_reason.strip()}" if asked else ""
    try:
        with session_scope() as session:
            # A second resolve racing this one waits on the technician's lock and finds the assignment.
            esc = _open_escalation(escalation_id, session=session)
            result = commit.commit_assignment(decision, job, session=session, travel=travel, settings=settings,
                                              arrival_window=window, decided_by=resolved_by,
                                              override_reason=override_reason.strip() or None)
            conf = commit.write_confirmation(result, session=session)
            esc.resolved_at = datetime.now(UTC)
            esc.resolved_by = resolved_by
            esc.resolution = (f"assigned to technician {technician_id} ({result.technician_name})"
                              + (f" ({recorded})" if recorded else "") + (f": {note}" if note else ""))
            session.add(esc)
            assert esc.id is not None and conf.id is not None
            resolution = Resolution(esc.id, result, conf.id)
    except commit.ScheduleConflict as exc:
        raise ManualAssignmentRejected([str(exc)]) from None
    log.info("escalation %s resolved by %s: request %s -> technician %s", escalation_id, resolved_by,
             result.request_id, technician_id)
    if on_resolved is not None:
        on_resolved(resolution, resolved_by)
    return resolution

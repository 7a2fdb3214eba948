"""The seven steps of the dispatch flow, each a Prefect task named as a dispatcher knows it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import OperationalError

from models import Candidate, Decision, JobRequirements, TechnicianDay
from truckroll import store
from truckroll.db import session_scope
from truckroll.dispatch import commit, displacement
from truckroll.dispatch import decision as one_decision
from truckroll.dispatch.commit import CommittedAssignment
from truckroll.settings import get_settings
from truckroll.travel.provider import get_travel_provider

log = logging.getLogger(__name__)


def _transient_db_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only what may pass: a locked or unreachable database. A schedule conflict is the flow's to
    handle (it decides again on the fresh routes)."""
    try:
        state.result()
    except OperationalError:
        return True
    except Exception:  # noqa: BLE001 - anything else is a real failure
        return False
    return False


DB_RETRIES: dict[str, Any] = dict(retries=3, retry_delay_seconds=[0.5, 2, 5], retry_condition_fn=_transient_db_error,
                                  cache_policy=NO_CACHE)


def _artifact_key(*parts: object) -> str:
    return "-".join(str(p) for p in parts).lower().replace("_", "-")


@dataclass
class ReceivedRequest:
    request_id: int
    status: str


@task(name="Receive service request", **DB_RETRIES)
def receive_service_request(request_id: int | None = None, payload: dict[str, Any] | None = None,
                            idempotency_key: str | None = None) -> ReceivedRequest:
    """Validate and persist a new request (payload), or load one the intake service already persisted."""
    with session_scope() as session:
        if payload is not None:
            row, _ = store.create_request(payload, session=session, idempotency_key=idempotency_key,
                                          horizon_days=get_settings().planning_horizon_days)
        elif request_id is not None:
            row = store.get_request(request_id, session=session)
        else:
            raise ValueError("give a request_id or a payload")
        assert row.id is not None
        return ReceivedRequest(row.id, row.status)


@task(name="Analyse job requirements and location", **DB_RETRIES)
def analyse_job_requirements(request_id: int) -> JobRequirements:
    """Required skills and certifications, duration, parts, windows, location."""
    with session_scope() as session:
        return one_decision.analyse(request_id, session=session, tz=get_settings().company_timezone)


@dataclass
class AvailableTechnicians:
    days: list[TechnicianDay]


@task(name="Retrieve available technicians", **DB_RETRIES)
def retrieve_available_technicians(job: JobRequirements) -> AvailableTechnicians:
    """Shifts overlapping the job's windows, skills, certifications, routes, workload, van stock."""
    settings = get_settings()
    with session_scope() as session:
        # A routing service answers the decision's travel in a few matrix requests, fetched here.
        return AvailableTechnicians(one_decision.load_days(job, session=session, travel=get_travel_provider(settings),
                                                           tz=settings.company_timezone))


def _candidate_rows(candidates: list[Candidate], chosen_id: int | None) -> list[dict[str, Any]]:
    rows = []
    for c in sorted(candidates, key=lambda c: (not c.eligible, -(c.score.total if c.score else 0))):
        rows.append({
            "technician": c.name, "chosen": "yes" if c.technician_id == chosen_id else "",
            "eligible": c.eligible, "utilisation": f"{c.utilisation:.0%}",
            "score": round(c.score.total, 3) if c.score else None,
            "added travel min": round(c.insertion.added_travel_minutes, 1) if c.insertion else None,
            "boundary": c.boundary,
            "why not": "; ".join(c.reasons),
        })
    return rows


@task(name="Check capacity threshold", cache_policy=NO_CACHE)
def check_capacity_threshold(job: JobRequirements, available: AvailableTechnicians) -> list[Candidate]:
    """Qualified technicians under the utilisation target (with room in their route), and why not the others."""
    settings = get_settings()
    return one_decision.evaluate(job, available.days, travel=get_travel_provider(settings), rules=settings.dispatch)


@task(name="Escalate to manual scheduling review", **DB_RETRIES)
def escalate_to_manual_review(job: JobRequirements, candidates: list[Candidate], reason: str) -> int:
    """An Escalation row, an alert to dispatch, a Prefect artifact and event; the request waits for a person."""
    settings = get_settings()
    with session_scope() as session:
        esc_id = commit.escalate(job, reason, candidates, session=session, dispatch_email=settings.dispatch_email,
                                 console_url=settings.console_url)
    create_table_artifact(key=_artifact_key("escalation-request", job.request_id),
                          table=_candidate_rows(candidates, None),
                          description=f"Request #{job.request_id} needs manual scheduling review: {reason}"
                                      + _console_link(job.request_id))
    emit_escalated(job.request_id, esc_id, reason, job.priority)
    return esc_id


@task(name="Escalate a request that keeps failing", **DB_RETRIES)
def escalate_failed_dispatch(request_id: int, reason: str) -> int:
    """A dead letter: the request's dispatch failed too often; a dispatcher takes it, with the error."""
    with session_scope() as session:
        esc_id = commit.escalate_request(request_id, reason, [], session=session,
                                         dispatch_email=get_settings().dispatch_email,
                                         console_url=get_settings().console_url)
        priority = store.get_request(request_id, session=session).priority
    create_table_artifact(key=_artifact_key("escalation-request", request_id),
                          table=[{"request": request_id, "reason": reason}],
                          description=f"Request #{request_id} needs manual scheduling review: {reason}"
                                      + _console_link(request_id))
    emit_escalated(request_id, esc_id, reason, priority)
    return esc_id


def _console_link(request_id: int) -> str:
    """A markdown link to the request's page in the dispatch console (TRUCKROLL_CONSOLE_URL), else ""."""
    from truckroll.notifications.messages import console_link

    url = console_link(request_id, get_settings().console_url)
    return f" [Open request #{request_id} in the dispatch console]({url})" if url else ""


def emit_escalated(request_id: int, escalation_id: int, reason: str, priority: int) -> None:
    """The ``truckroll.request.escalated`` event, for every escalation the dispatch makes."""
    try:
        from prefect.events import emit_event

        emit_event(event="truckroll.request.escalated",
                   resource={"prefect.resource.id": f"truckroll.request.{request_id}"},
                   payload={"reason": reason, "escalation_id": escalation_id, "priority": priority})
    except Exception:  # noqa: BLE001 - an event that cannot be emitted must not lose the escalation
        log.warning("could not emit the escalation event for request %s", request_id, exc_info=True)


@task(name="Calculate optimal assignment", cache_policy=NO_CACHE)
def calculate_optimal_assignment(job: JobRequirements, candidates: list[Candidate]) -> Decision:
    """Score travel, skill match, workload, customer preference and expected value; pick the best."""
    # Nobody by insertion: the bounded repair runs here, within its own budget, before the flow escalates.
    settings = get_settings()
    decision = one_decision.choose(job, candidates, rules=settings.dispatch, travel=get_travel_provider(settings),
                                   tz=settings.company_timezone)
    create_table_artifact(key=_artifact_key("candidates-request", job.request_id),
                          table=_candidate_rows(decision.candidates,
                                                decision.chosen.technician_id if decision.chosen else None),
                          description=f"Candidates for request #{job.request_id}" + "".join(
                              f"; {note}" for note in _decision_notes(decision)))
    return decision


def _decision_notes(decision: Decision) -> list[str]:
    """What the dispatcher should know beyond the scores: a relaxed boundary, a repair's moves."""
    notes = [decision.relaxation] if decision.relaxation else []
    notes += [f"repair: #{m.request_id} moved from technician {m.from_technician} to {m.to_technician} in its "
              f"promised window" for m in decision.moves]
    return notes


@dataclass(frozen=True)
class TimeTaken:
    """Another dispatch took the chosen technician's time first (``commit.ScheduleConflict``): nothing was
    written, and the flow decides again. Expected when requests arrive together, so not a failed task run."""

    reason: str


@task(name="Update schedule and notify", **DB_RETRIES)
def update_schedule_and_notify(decision: Decision, job: JobRequirements) -> CommittedAssignment | TimeTaken:
    """Block the time in the route, move later stops' ETAs, queue the customer, technician and dispatch messages."""
    settings = get_settings()
    try:
        result, escalated = displacement.commit_and_redispatch(decision, job, travel=get_travel_provider(settings),
                                                               settings=settings)
    except commit.ScheduleConflict as exc:
        return TimeTaken(str(exc))
    for o in escalated:
        emit_escalated(o["request_id"], o["escalation_id"], o["reason"], o["priority"])
    return result


@task(name="Generate assignment confirmation", **DB_RETRIES)
def generate_assignment_confirmation(result: CommittedAssignment) -> int:
    """The confirmation record and an artifact that shows it in the UI."""
    tz = get_settings().company_timezone
    with session_scope() as session:
        conf = commit.write_confirmation(result, session=session)
        assert conf.id is not None
        conf_id = conf.id
    from zoneinfo import ZoneInfo

    z = ZoneInfo(tz)
    lines = [
        f"## Request #{result.request_id} assigned to {result.technician_name}",
        "",
        f"- Arrival window told to the customer: **{result.window_start.astimezone(z):%a %d %b %H:%M}"
        f"-{result.window_end.astimezone(z):%H:%M}**",
        f"- Planned start {result.start.astimezone(z):%H:%M}, estimated completion {result.end.astimezone(z):%H:%M}",
        f"- Score: {result.score.get('total', 0):.3f} (travel {result.score.get('travel', 0):.2f}, skill "
        f"{result.score.get('skill', 0):.2f}, workload {result.score.get('workload', 0):.2f}, preference "
        f"{result.score.get('preference', 0):.2f}, value {result.score.get('value', 0):.2f})",
        f"- Other customers moved: {len(result.moved)}",
        *([f"- {_console_link(result.request_id).strip()}"] if _console_link(result.request_id) else []),
        "",
        "| start | end | request |",
        "|---|---|---|",
    ]
    for s in result.route:
        mark = " (new)" if s["request_id"] == result.request_id else ""
        lines.append(f"| {datetime.fromisoformat(s['start']).astimezone(z):%H:%M} | "
                     f"{datetime.fromisoformat(s['end']).astimezone(z):%H:%M} | #{s['request_id']}{mark} |")
    create_markdown_artifact(key=_artifact_key("confirmation-request", result.request_id), markdown="\n".join(lines),
                             description=f"Assignment confirmation for request #{result.request_id}")
    return conf_id

"""Emergency displacement against the database: the displaced requests are dispatched again, and everyone is
told (the customer: the new window, or that dispatch will call; the technician who lost the stops: the route
update; dispatch: the escalation alert).

Which stops move is the engine's decision (``engine.dispatch.displacement``); the commit that cancels them is
``truckroll.dispatch.commit``'s; this module does the rest of the I/O.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.travel import TravelTimeProvider
from models import Decision, JobRequirements, TimeWindow
from truckroll import store
from truckroll.db import session_scope
from truckroll.dispatch import commit
from truckroll.dispatch import decision as one_decision
from truckroll.notifications import messages
from truckroll.settings import Settings

log = logging.getLogger(__name__)


def redispatch_displaced(displaced: list[dict[str, Any]], *, travel: TravelTimeProvider,
                         settings: Settings, notes: list[int] | None = None) -> list[dict[str, Any]]:
    """Dispatch each displaced request again (the one decision, one transaction each) and tell its customer the
    new window; a request nobody can take is escalated, and its customer told that dispatch will call. Each
    technician who lost stops gets the update of their route.

    Returns one outcome per request: {request_id, status, technician_id?, window_start?, window_end?,
    escalation_id?, reason?}; the caller emits an event for each escalation. ``notes`` (when given) receives the
    ids of every message queued here (each displaced request's, the escalation alerts, the route updates), for
    the caller to deliver with its own.
    """
    notes = notes if notes is not None else []
    tz = settings.company_timezone
    queue = list(displaced)
    outcomes = []
    losers: set[tuple[int, datetime]] = set()
    while queue:
        item = queue.pop(0)
        losers.add((int(item["technician_id"]), datetime.fromisoformat(item["window_start"])))
        for attempt in range(1, ATTEMPTS + 1):
            try:
                # The last attempt without the bounded repair: its moves are what another dispatch can take first.
                outcome, told, more = _redispatch_one(item, travel=travel, settings=settings,
                                                      repair=attempt < ATTEMPTS)
                break
            except commit.ScheduleConflict as exc:
                if attempt == ATTEMPTS:
                    raise
                log.info("displaced request %s: %s; deciding again", item["request_id"], exc)
        outcomes.append(outcome)
        notes.extend(told)
        queue.extend(more)
    z = ZoneInfo(tz)
    with session_scope() as session:
        for tech_id, day in sorted({(t, s.astimezone(z).date()) for t, s in losers}):
            note = messages.technician_route_update(session=session, technician_id=tech_id, day=day, tz=z,
                                                    tz_name=tz, live=travel, company_name=settings.company_name,
                                                    key_prefix="displacement-route")
            notes.extend(messages.ids_of(note))
    return outcomes


# A dispatch that took the chosen technician's time first (ScheduleConflict) is met by deciding again, as the
# dispatch flow does.
ATTEMPTS = 3


def _redispatch_one(item: dict[str, Any], *, travel: TravelTimeProvider, settings: Settings,
                    repair: bool) -> tuple[dict[str, Any], list[int], list[dict[str, Any]]]:
    """One displaced request decided and committed (or escalated) in one transaction, its customer told: the
    outcome, the ids of the messages queued, and what this commit displaced in turn.

    Raises
    ------
    commit.ScheduleConflict
        When another dispatch took the chosen time first (nothing written).
    """
    rules, tz = settings.dispatch, settings.company_timezone
    rid = int(item["request_id"])
    old = TimeWindow(datetime.fromisoformat(item["window_start"]), datetime.fromisoformat(item["window_end"]))
    reason = f"an emergency (#{item['emergency_request_id']}) needed your technician"
    with session_scope() as session:
        loaded, decision = one_decision.decide_request(rid, session=session, travel=travel, rules=rules, tz=tz,
                                                       repair=repair)
        job = loaded.job
        request = store.get_request(rid, session=session)
        job_tz = (job.rules.timezone if job.rules else None) or tz
        if decision.chosen is None:
            why = f"displaced by emergency #{item['emergency_request_id']}; {decision.escalation_reason}"
            alerts: list[int] = []
            esc_id = commit.escalate(job, why, decision.candidates, session=session,
                                     dispatch_email=settings.dispatch_email, console_url=settings.console_url,
                                     notes=alerts)
            told = messages.customer_dispatch_will_call(
                session=session, key=f"displaced:{rid}:escalation:{esc_id}", request=request, old=old,
                reason=reason, tz=job_tz, company_name=settings.company_name)
            log.warning("displaced request %s escalated: %s", rid, why)
            return ({"request_id": rid, "status": "escalated", "reason": why, "escalation_id": esc_id,
                     "priority": job.priority}, [*messages.ids_of(told), *alerts], [])
        result = commit.commit_assignment(decision, job, session=session, travel=travel, settings=settings)
        commit.write_confirmation(result, session=session)
        told = messages.customer_reschedule(
            session=session, key=f"displaced:{rid}:{result.assignment_id}", request=request,
            technician_name=result.technician_name, old=old,
            new=TimeWindow(result.window_start, result.window_end), reason=reason, tz=job_tz,
            company_name=settings.company_name)
        return ({"request_id": rid, "status": "assigned", "technician_id": result.technician_id,
                 "window_start": result.window_start.isoformat(), "window_end": result.window_end.isoformat()},
                [*result.notification_ids, *messages.ids_of(told)], list(result.displaced))


def commit_and_redispatch(decision: Decision, job: JobRequirements, *, travel: TravelTimeProvider,
                          settings: Settings) -> tuple[commit.CommittedAssignment, list[dict[str, Any]]]:
    """Step 6 of the dispatch: commit the decision (one transaction), then dispatch again what an emergency
    displaced (one transaction each). Returns the commit and the escalations among the displaced requests (the
    caller tells Prefect about them). A failure after the commit is logged: the requeue sweep retries the rest.

    Raises
    ------
    commit.ScheduleConflict
        When the technician can no longer take the job on the fresh route (nothing written).
    """
    with session_scope() as session:
        result = commit.commit_assignment(decision, job, session=session, travel=travel, settings=settings)
    escalated: list[dict[str, Any]] = []
    if result.displaced:
        try:
            # Their messages go out with the emergency's (the dispatch flow delivers result.notification_ids).
            outcomes = redispatch_displaced(result.displaced, travel=travel, settings=settings,
                                            notes=result.notification_ids)
            log.info("request %s displaced %s", job.request_id, outcomes)
            escalated = [o for o in outcomes if o["status"] == "escalated"]
        except Exception:  # noqa: BLE001 - the emergency is committed; the requeue sweep retries the rest
            log.exception("dispatching the requests displaced by #%s failed; they wait for the requeue",
                          job.request_id)
    return result, escalated

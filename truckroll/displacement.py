"""Emergency displacement against the database: cancel the displaced assignments when the emergency is
committed, dispatch those requests again, and tell their customers (``customer_reschedule``).

Which stops move is the engine's decision (``engine.displacement``); this module does the I/O.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from engine.config import DispatchSettings
from engine.dispatch import decide
from engine.travel import TravelTimeProvider
from models import Assignment, AssignmentStatus, Confirmation, RequestStatus, Stop
from truckroll import notify, store
from truckroll.settings import get_settings

log = logging.getLogger(__name__)


def cancel_displaced(stops: list[Stop], *, technician_id: int, emergency_request_id: int,
                     session: Session) -> list[dict[str, Any]]:
    """Cancel the displaced stops' assignments and put their requests back to "received" (inside the
    emergency's transaction). Returns what the customers were promised, for the reschedule message."""
    out = []
    for s in stops:
        row = session.exec(select(Assignment).where(
            Assignment.request_id == s.request_id, Assignment.technician_id == technician_id,
            col(Assignment.status).notin_([AssignmentStatus.CANCELLED]))).first()
        if row is None:
            continue
        row.status = AssignmentStatus.CANCELLED
        session.add(row)
        request = store.get_request(s.request_id, session=session)
        request.status = RequestStatus.RECEIVED
        request.notes = (request.notes + "\n" if request.notes else "") + \
            f"displaced by emergency #{emergency_request_id}"
        session.add(request)
        # The confirmation described the cancelled assignment; the next dispatch writes a new one.
        for conf in session.exec(select(Confirmation).where(Confirmation.request_id == s.request_id)).all():
            session.delete(conf)
        out.append({"request_id": s.request_id, "assignment_id": row.id, "technician_id": technician_id,
                    "window_start": row.window_start.isoformat(), "window_end": row.window_end.isoformat(),
                    "emergency_request_id": emergency_request_id})
    session.flush()
    return out


def redispatch_displaced(displaced: list[dict[str, Any]], *, travel: TravelTimeProvider, rules: DispatchSettings,
                         tz: str) -> list[dict[str, Any]]:
    """Dispatch each displaced request again (through the engine, one transaction each) and notify its customer
    of the new window; a request nobody can take is escalated to a dispatcher.

    Returns one outcome per request: {request_id, status, technician_id?, window_start?, window_end?}.
    """
    from truckroll import dispatching
    from truckroll.db import session_scope

    settings = get_settings()
    queue = list(displaced)
    outcomes = []
    while queue:
        item = queue.pop(0)
        rid = int(item["request_id"])
        reason = f"an emergency (#{item['emergency_request_id']}) needed your technician"
        with session_scope() as session:
            job = store.requirements_of(rid, session=session)
            start, end = store.job_horizon(job)
            days = store.technician_days(session=session, start=start, end=end)
            decision = decide(job, days, travel, rules)
            request = store.get_request(rid, session=session)
            if decision.chosen is None:
                why = f"displaced by emergency #{item['emergency_request_id']}; {decision.escalation_reason}"
                esc = store.open_escalation(rid, why, {str(c.technician_id): {"name": c.name, "reasons": c.reasons}
                                                       for c in decision.candidates}, session=session)
                notify.queue(session=session, dedupe_key=f"escalation:{esc.id}:dispatch", template="escalation_alert",
                             recipient=settings.dispatch_email, recipient_kind="dispatch", request_id=rid,
                             context=dict(request_id=rid, customer_name=request.customer_name,
                                          address=request.address, job_type=request.job_type,
                                          priority=request.priority, reason=why, escalation_id=esc.id,
                                          why_not=[(c.name, c.reasons) for c in decision.candidates][:25]))
                outcomes.append({"request_id": rid, "status": "escalated", "reason": why})
                log.warning("displaced request %s escalated: %s", rid, why)
                continue
            result = dispatching.commit_assignment(decision, job, session=session, travel=travel, rules=rules, tz=tz)
            dispatching.write_confirmation(result, session=session)
            queue.extend(result.displaced)
            contact = notify.customer_contact(request)
            if contact is not None:
                job_tz = (job.rules.timezone if job.rules else None) or tz
                notify.queue(
                    session=session, dedupe_key=f"displaced:{rid}:{result.assignment_id}",
                    template="customer_reschedule", recipient=contact[0],
                    recipient_kind="customer", request_id=rid, channel=contact[1],
                    context=dict(request_id=rid, tz=job_tz, company_name=settings.company_name,
                                 customer_name=request.customer_name, technician_name=result.technician_name,
                                 old_window_start=datetime.fromisoformat(item["window_start"]),
                                 old_window_end=datetime.fromisoformat(item["window_end"]),
                                 window_start=result.window_start, window_end=result.window_end, reason=reason))
            outcomes.append({"request_id": rid, "status": "assigned", "technician_id": result.technician_id,
                             "window_start": result.window_start.isoformat(),
                             "window_end": result.window_end.isoformat()})
    return outcomes

"""Find accepted requests whose dispatch never finished (a crashed flow run, a process that died with a
backlog) and run them again.

Running a request again is safe: the flow returns early when the request is already assigned or escalated,
the schedule write re-checks for an existing assignment under the technician's write lock, and every
notification has a unique dedupe key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists
from sqlmodel import Session, col, select

from models import Assignment, AssignmentStatus, Escalation, RequestStatus, ServiceRequest

log = logging.getLogger(__name__)

UNFINISHED_STATUSES = (RequestStatus.RECEIVED, RequestStatus.ANALYSED)


@dataclass
class RequeueReport:
    found: list[int] = field(default_factory=list)
    already_running: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def stranded_requests(*, session: Session, older_than_seconds: float, now: datetime | None = None,
                      limit: int = 500) -> list[int]:
    """Requests received or analysed more than ``older_than_seconds`` ago with no assignment and no open
    escalation, oldest first."""
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than_seconds)
    has_assignment = exists().where(col(Assignment.request_id) == ServiceRequest.id,
                                    col(Assignment.status) != AssignmentStatus.CANCELLED)
    has_open_escalation = exists().where(col(Escalation.request_id) == ServiceRequest.id,
                                         col(Escalation.resolved_at).is_(None))
    q = (select(ServiceRequest.id)
         .where(col(ServiceRequest.status).in_(UNFINISHED_STATUSES), ServiceRequest.created_at < cutoff,
                ~has_assignment, ~has_open_escalation)
         .order_by(col(ServiceRequest.id)).limit(limit))
    return [i for i in session.exec(q).all() if i is not None]


def requeue(*, older_than_seconds: float = 300, dry_run: bool = False, skip: Iterable[int] = (),
            submit: Callable[[int], Any] | None = None, limit: int = 500) -> RequeueReport:
    """Run the dispatch flow again for every stranded request.

    Parameters
    ----------
    older_than_seconds:
        Leave younger requests alone: their first flow run may simply not have finished.
    skip:
        Requests the caller knows are queued (the intake service's own backlog).
    submit:
        How to start a run; default: a new flow run of the deployment when flows run on Prefect workers
        (truckroll.flowruns.flow_run_mode), in this process otherwise. With workers, requests that have a flow
        run scheduled or running are left alone whatever ``submit`` is.

    Returns
    -------
    RequeueReport
        What was found, left alone, started and what failed to start.
    """
    from truckroll import flowruns
    from truckroll.db import session_scope

    with session_scope() as session:
        found = stranded_requests(session=session, older_than_seconds=older_than_seconds, limit=limit)
    report = RequeueReport(found=found)
    skipped = set(skip)
    deployment = flowruns.flow_run_mode() == "deployment"
    if deployment:
        skipped |= flowruns.active_flow_run_request_ids(found)
    if submit is None:
        if deployment:

            def submit(rid: int) -> Any:
                return flowruns.submit_to_deployment(rid, attempt=flowruns.new_attempt())
        else:
            submit = flowruns.run_in_process
    for rid in found:
        if rid in skipped:
            report.already_running.append(rid)
            continue
        if dry_run:
            continue
        try:
            submit(rid)
            report.started.append(rid)
        except Exception as exc:  # noqa: BLE001 - report it and go on with the others
            log.warning("could not requeue request %s: %s", rid, exc)
            report.failed[rid] = str(exc)
    if report.started:
        log.info("requeued %d stranded request(s): %s", len(report.started), report.started)
    return report

"""Nothing stranded: leases on a request's dispatch, and the sweep that runs again the requests whose dispatch
never finished (a crashed flow run, a worker or process that died, a service that died with a backlog).

A request handed to a worker is held by a *queued* lease (``mark_queued``), which lasts the requeue delay; the
run that takes it claims the lease (``dispatch_lease``) and renews it every third of ``dispatch_lease_seconds``
while it works (a heartbeat). A run whose process died stops renewing; once its lease has expired the sweep
runs the request again and marks the dead Prefect run Crashed. A request that was claimed more than
``max_dispatch_attempts`` times is escalated with the last error by the flow (a dead letter) instead of being
tried forever.

Running a request again is safe: a live lease keeps a second run out, the flow returns early when the request
is already assigned or escalated, the schedule write re-checks for an existing assignment under the
technician's write lock, and every notification has a unique dedupe key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import exists, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models import Assignment, AssignmentStatus, DispatchLease, Escalation, RequestStatus, ServiceRequest

log = logging.getLogger(__name__)

UNFINISHED_STATUSES = (RequestStatus.RECEIVED, RequestStatus.ANALYSED)


class RunControl(Protocol):
    """How the sweep asks about and starts dispatch runs. The orchestration layer provides it (``flows.runs``, a
    module that has these functions); the application layer never imports Prefect."""

    def flow_run_mode(self) -> str: ...

    def active_flow_run_request_ids(self, request_ids: Iterable[int]) -> set[int]: ...

    def mark_crashed(self, flow_run_ids: Iterable[str], *, message: str) -> list[str]: ...

    def orphaned_dispatch_runs(self, live_holders: Iterable[str], *, older_than_seconds: float) -> list[str]: ...

    def submit(self, request_id: int, *, attempt: str = ..., mode: str | None = ...) -> Any: ...

    def new_attempt(self) -> str: ...


@dataclass
class RequeueReport:
    found: list[int] = field(default_factory=list)
    already_running: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    # Prefect flow runs whose lease expired (their process died) and that were marked Crashed.
    crashed_runs: list[str] = field(default_factory=list)


QUEUED = "queued"


class LeaseHeld(RuntimeError):
    """Another run holds the request's lease and is still renewing it."""


@dataclass(frozen=True)
class Claim:
    request_id: int
    holder: str
    attempt: int
    # The error the previous attempt ended with ("" if none or if it died without saying).
    previous_error: str


def _ensure_row(request_id: int, *, session: Session) -> None:
    if session.get(DispatchLease, request_id) is None:
        try:
            with session.begin_nested():
                session.add(DispatchLease(request_id=request_id))
        except IntegrityError:
            pass  # another run created it first


def mark_queued(request_ids: Iterable[int], *, hold_seconds: float, now: datetime | None = None) -> None:
    """Hold requests just handed to a worker for ``hold_seconds``: the sweep leaves them alone meanwhile."""
    from truckroll.db import session_scope

    now = now or datetime.now(UTC)
    with session_scope() as session:
        for rid in request_ids:
            _ensure_row(rid, session=session)
            session.execute(update(DispatchLease).where(
                col(DispatchLease.request_id) == rid,
                or_(col(DispatchLease.holder).is_(None), col(DispatchLease.holder) == QUEUED,
                    col(DispatchLease.lease_expires_at).is_(None), col(DispatchLease.lease_expires_at) < now))
                .values(holder=QUEUED, lease_expires_at=now + timedelta(seconds=hold_seconds), updated_at=now))


def claim(request_id: int, holder: str, *, lease_seconds: float, now: datetime | None = None) -> Claim:
    """Take the request's lease for ``holder`` (a queued or expired lease can be taken; a live one cannot).

    Raises
    ------
    LeaseHeld
        Another run holds a live lease on the request.
    """
    from truckroll.db import session_scope

    now = now or datetime.now(UTC)
    with session_scope() as session:
        _ensure_row(request_id, session=session)
        took = session.execute(update(DispatchLease).where(
            col(DispatchLease.request_id) == request_id,
            or_(col(DispatchLease.holder).is_(None), col(DispatchLease.holder).in_([QUEUED, holder]),
                col(DispatchLease.lease_expires_at).is_(None), col(DispatchLease.lease_expires_at) < now))
            .values(holder=holder, lease_expires_at=now + timedelta(seconds=lease_seconds),
                    attempts=DispatchLease.attempts + 1, updated_at=now))
        row = session.get(DispatchLease, request_id)
        session.refresh(row)
        assert row is not None
        if took.rowcount == 0:  # type: ignore[attr-defined]
            raise LeaseHeld(f"request {request_id} is being dispatched by {row.holder} "
                            f"(lease until {row.lease_expires_at})")
        return Claim(request_id, holder, row.attempts, row.last_error)


def renew(request_id: int, holder: str, *, lease_seconds: float) -> bool:
    """Extend the holder's lease; False when it is no longer the holder."""
    from truckroll.db import session_scope

    now = datetime.now(UTC)
    with session_scope() as session:
        res = session.execute(update(DispatchLease).where(col(DispatchLease.request_id) == request_id,
                                                          col(DispatchLease.holder) == holder)
                              .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now))
        return bool(res.rowcount)  # type: ignore[attr-defined]


def release(request_id: int, holder: str, *, error: str = "") -> None:
    """Give the lease up (the run finished, or failed with ``error``, which the next attempt sees)."""
    from truckroll.db import session_scope

    with session_scope() as session:
        # The holder stays: it names the request's last run (the resolution event links to it).
        values: dict[str, Any] = dict(lease_expires_at=None, updated_at=datetime.now(UTC))
        if error:
            values["last_error"] = error[:2000]
        session.execute(update(DispatchLease).where(col(DispatchLease.request_id) == request_id,
                                                    col(DispatchLease.holder) == holder).values(**values))


def last_run_id(request_id: int, *, session: Session) -> str | None:
    """The Prefect flow run that last dispatched the request (None if none did, or it ran without Prefect)."""
    row = session.get(DispatchLease, request_id)
    if row is None or not row.holder or row.holder in (QUEUED, "in-process"):
        return None
    return row.holder


@contextmanager
def dispatch_lease(request_id: int, holder: str, *, lease_seconds: float) -> Iterator[Claim]:
    """Hold the request while the block runs, renewing the lease from a heartbeat thread; release it after,
    recording the error if the block raised.

    Raises
    ------
    LeaseHeld
        Another run holds a live lease on the request.
    """
    got = claim(request_id, holder, lease_seconds=lease_seconds)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(lease_seconds / 3):
            try:
                if not renew(request_id, holder, lease_seconds=lease_seconds):
                    return
            except Exception:  # noqa: BLE001 - a missed beat is retried; the lease outlives two of them
                log.warning("could not renew the lease on request %s", request_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"lease-{request_id}", daemon=True)
    thread.start()
    try:
        yield got
    except BaseException as exc:
        stop.set()
        release(request_id, holder, error=f"{type(exc).__name__}: {exc}")
        raise
    else:
        stop.set()
        release(request_id, holder)
    finally:
        thread.join(1)


def stranded_requests(*, session: Session, older_than_seconds: float, now: datetime | None = None,
                      limit: int = 500) -> list[int]:
    """Requests received or analysed with no assignment, no open escalation and no live lease, oldest first:
    those accepted more than ``older_than_seconds`` ago, and at once those whose run's lease expired (the run
    died: its process or worker was killed)."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(seconds=older_than_seconds)
    has_live_lease = exists().where(col(DispatchLease.request_id) == ServiceRequest.id,
                                    col(DispatchLease.lease_expires_at) >= now)
    run_died = exists().where(col(DispatchLease.request_id) == ServiceRequest.id,
                              col(DispatchLease.holder).is_not(None), col(DispatchLease.holder) != QUEUED,
                              col(DispatchLease.lease_expires_at) < now)
    has_assignment = exists().where(col(Assignment.request_id) == ServiceRequest.id,
                                    col(Assignment.status) != AssignmentStatus.CANCELLED)
    has_open_escalation = exists().where(col(Escalation.request_id) == ServiceRequest.id,
                                         col(Escalation.resolved_at).is_(None))
    q = (select(ServiceRequest.id)
         .where(col(ServiceRequest.status).in_(UNFINISHED_STATUSES),
                or_(col(ServiceRequest.created_at) < cutoff, run_died), ~has_assignment, ~has_open_escalation,
                ~has_live_lease)
         .order_by(col(ServiceRequest.id)).limit(limit))
    return [i for i in session.exec(q).all() if i is not None]


def expired_holders(request_ids: Iterable[int], *, session: Session) -> dict[int, str]:
    """Among ``request_ids``, those whose last run's lease expired without a release: the run (a Prefect flow
    run id, or "in-process") died."""
    ids = list(request_ids)
    if not ids:
        return {}
    rows = session.exec(select(DispatchLease.request_id, DispatchLease.holder)
                        .where(col(DispatchLease.request_id).in_(ids), col(DispatchLease.holder).is_not(None),
                               col(DispatchLease.holder) != QUEUED,
                               col(DispatchLease.lease_expires_at).is_not(None))).all()
    return {rid: holder for rid, holder in rows if holder}


def requeue(*, runs: RunControl, lease_seconds: float, older_than_seconds: float = 300, dry_run: bool = False,
            skip: Iterable[int] = (), submit: Callable[[int], Any] | None = None, limit: int = 500) -> RequeueReport:
    """Run the dispatch flow again for every stranded request.

    Parameters
    ----------
    runs:
        Where runs are asked about and started (``flows.runs``).
    lease_seconds:
        The dispatch lease (the setting ``dispatch_lease_seconds``): a Pending or Running dispatch run without a
        live lease older than three leases (at least 60 s) died before it claimed its request.
    older_than_seconds:
        Leave younger requests alone: their first flow run may simply not have started. A request handed over
        again is held (queued) for as long.
    skip:
        Requests the caller knows are queued (the intake service's own backlog).
    submit:
        How to start a run; default ``runs.submit`` (a task worker, a deployment flow run or this
        process, as configured). With deployments, requests that have a flow run scheduled or running in Prefect
        and no expired lease are left alone whatever ``submit`` is.

    Returns
    -------
    RequeueReport
        What was found, left alone, started, what failed to start, and the dead runs marked Crashed.
    """
    from truckroll.db import session_scope

    now = datetime.now(UTC)
    with session_scope() as session:
        found = stranded_requests(session=session, older_than_seconds=older_than_seconds, limit=limit)
        dead = expired_holders(found, session=session)
        # Runs that died after their request was finished (assigned, then killed): no re-run, but their Prefect
        # run must not stay Running for ever.
        finished_dead = {rid: h for rid, h in session.exec(select(DispatchLease.request_id, DispatchLease.holder).where(
            col(DispatchLease.holder).is_not(None), col(DispatchLease.holder) != QUEUED,
            col(DispatchLease.lease_expires_at) < now, col(DispatchLease.request_id).not_in(found or [-1]))).all()
            if h}
        # Live holders (a run that claimed its request and renews its lease), for the runs that never claimed one.
        live = {h for h in session.exec(select(DispatchLease.holder).where(
            col(DispatchLease.holder).is_not(None), col(DispatchLease.lease_expires_at) >= now)).all() if h}
    report = RequeueReport(found=found)
    skipped = set(skip)
    if runs.flow_run_mode() == "deployment":
        skipped |= runs.active_flow_run_request_ids([r for r in found if r not in dead])
    if not dry_run:
        report.crashed_runs = runs.mark_crashed(
            [h for h in {**dead, **finished_dead}.values() if h != "in-process"],
            message="its lease expired: the process running it died")
        # Runs whose process died before they claimed their request hold no lease at all: Prefect shows them
        # Pending or Running for ever unless the sweep ends them (their requests are found above as stranded).
        report.crashed_runs += runs.mark_crashed(
            runs.orphaned_dispatch_runs(live, older_than_seconds=max(60.0, 3 * lease_seconds)),
            message="its process died before the run claimed its request")
        if finished_dead:
            with session_scope() as session:
                session.execute(update(DispatchLease).where(col(DispatchLease.request_id).in_(list(finished_dead)))
                                .values(lease_expires_at=None))
    if submit is None:

        def submit(rid: int) -> Any:
            return runs.submit(rid, attempt=runs.new_attempt())

    for rid in found:
        if rid in skipped:
            report.already_running.append(rid)
            continue
        if dry_run:
            continue
        try:
            mark_queued([rid], hold_seconds=older_than_seconds)
            submit(rid)
            report.started.append(rid)
        except Exception as exc:  # noqa: BLE001 - report it and go on with the others
            log.warning("could not requeue request %s: %s", rid, exc)
            report.failed[rid] = str(exc)
    if report.started:
        log.info("requeued %d stranded request(s): %s", len(report.started), report.started)
    return report

"""The per-request dispatch flow: seven named steps from a new request to a confirmed arrival window."""

from __future__ import annotations

import logging
import threading
import time
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar, cast
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import INPUTS
from prefect.states import Completed, State
from prefect.utilities.annotations import quote

from models import RequestStatus
from tasks.dispatch import (
    TimeTaken,
    analyse_job_requirements,
    calculate_optimal_assignment,
    check_capacity_threshold,
    escalate_failed_dispatch,
    escalate_to_manual_review,
    generate_assignment_confirmation,
    receive_service_request,
    retrieve_available_technicians,
    update_schedule_and_notify,
)
from tasks.notifications import deliver_quietly
from truckroll import store
from truckroll.db import session_scope
from truckroll.dispatch import commit, requeue
from truckroll.settings import get_settings

log = logging.getLogger(__name__)
_T = TypeVar("_T")

if TYPE_CHECKING:
    from truckroll.reports.plan import DayPlan

# How often to decide again when another dispatch took the chosen technician's time first.
MAX_DECISION_ATTEMPTS = 3


def _existing_outcome(request_id: int) -> dict[str, Any] | None:
    """What an earlier run already decided for this request, so a re-run duplicates nothing."""
    with session_scope() as session:
        row = store.get_request(request_id, session=session)
        if row.status == RequestStatus.ASSIGNED:
            a = commit.existing_assignment(request_id, session=session)
            if a is not None:
                return {"request_id": request_id, "status": "assigned", "technician_id": a.technician_id,
                        "assignment_id": a.id, "window_start": a.window_start.isoformat(),
                        "window_end": a.window_end.isoformat(), "already_done": True}
        if row.status == RequestStatus.ESCALATED:
            return {"request_id": request_id, "status": "escalated", "already_done": True}
        if row.status in (RequestStatus.CANCELLED, RequestStatus.COMPLETED):
            return {"request_id": request_id, "status": row.status, "already_done": True}
    return None


class _DayArtifacts:
    """When this process last published each day's plan page and metrics, and which days it left stale.

    A burst dispatches many requests of the same day within seconds; publishing the day's two artifacts after
    each of them would cost the Prefect server four writes per request for pictures nobody reads in between.
    With a refresher running (``truckroll worker`` starts one), a run publishes its day only when the last
    publication is older than ``plan_artifact_seconds``; otherwise it marks the day stale and the refresher
    publishes it when the interval ends, so the pictures lag the schedule by at most that interval.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[date, float] = {}
        self._stale: set[date] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self, day: date, interval: float) -> bool:
        """True when ``day`` should be published now (and records it as published); else marks it stale."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(day)
            if self._thread is not None and interval > 0 and last is not None and now - last < interval:
                self._stale.add(day)
                return False
            self._last[day] = now
            self._stale.discard(day)
            return True

    def take_stale(self, interval: float) -> list[date]:
        now = time.monotonic()
        with self._lock:
            ready = [d for d in self._stale if now - self._last.get(d, 0.0) >= interval]
            for d in ready:
                self._stale.discard(d)
                self._last[d] = now
            return sorted(ready)

    def start_refresher(self, interval: float) -> None:
        if self._thread is not None or interval <= 0:
            return

        def loop() -> None:
            while not self._stop.wait(max(1.0, interval / 3)):
                for day in self.take_stale(interval):
                    try:
                        publish_day_artifacts(day)
                    except Exception:  # noqa: BLE001 - a picture must never stop the worker
                        log.warning("could not refresh the plan artifacts of %s", day, exc_info=True)

        self._thread = threading.Thread(target=loop, name="day-artifacts", daemon=True)
        self._thread.start()

    def stop_refresher(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._thread = None
        self._stop = threading.Event()


DAY_ARTIFACTS = _DayArtifacts()


def publish_plan_artifact(plan: DayPlan) -> str | None:
    """Write the plan's page and attach a Prefect markdown artifact: the metrics, a line per technician and
    the link to the page. Returns the page's path; never raises (a picture must not fail a dispatch)."""
    from prefect.artifacts import create_markdown_artifact

    from truckroll.reports.plan import plan_dir, render_plan_html

    day, metrics = plan.day, plan.metrics
    try:
        path = plan_dir(get_settings().plan_dir) / f"plan-{day.isoformat()}.html"
        path.write_text(render_plan_html(plan), encoding="utf-8")
        lines = [f"## Plan for {day.isoformat()}", "", f"[Open the map and timeline]({path.resolve().as_uri()})", "",
                 "| metric | value |", "|---|---|"]
        lines += [f"| {k.replace('_', ' ')} | {v:,.2f} |" for k, v in metrics.items()]
        lines += ["", "| technician | jobs | busy | travel min | idle min |", "|---|---|---|---|---|"]
        lines += [f"| {t.name} | {len(t.jobs)} | {t.utilisation:.0%} | {t.travel_minutes:.0f} | "
                  f"{t.idle_minutes:.0f} |" for t in plan.technicians]
        create_markdown_artifact(key=f"day-plan-{day.isoformat()}", markdown="\n".join(lines),
                                 description=f"Map and timeline of {day.isoformat()}")
        return str(path)
    except Exception:  # noqa: BLE001
        log.warning("could not publish the plan picture for %s", day, exc_info=True)
        return None


def publish_day_artifacts(request_day: date) -> dict[str, float]:
    """Publish the day's metrics as a keyed artifact (the UI keeps its history), and its plan page."""
    import warnings

    from truckroll.reports.plan import load_day_plan

    # One load of the day serves both artifacts.
    plan = load_day_plan(request_day, get_settings())
    metrics = plan.metrics
    with warnings.catch_warnings():
        # The day's artifacts belong to the day, not to one run: the refresher and the demo's last publication
        # create them outside any run, which Prefect 3.8 warns it will stop supporting (it is pinned here).
        warnings.filterwarnings("ignore", message="Artifact creation outside of a flow or task run",
                                category=FutureWarning)
        create_table_artifact(key=f"day-metrics-{request_day.isoformat()}",
                              table=[{"metric": k, "value": round(v, 3)} for k, v in metrics.items()],
                              description=f"Plan metrics for {request_day.isoformat()}")
        # The map and timeline of the day, linked from a markdown artifact next to the metrics.
        publish_plan_artifact(plan)
    return metrics


def record_day_metrics(request_day: date) -> dict[str, float] | None:
    """After a dispatch: publish the day's artifacts, or leave them to the refresher in a burst (see above)."""
    if not DAY_ARTIFACTS.due(request_day, get_settings().plan_artifact_seconds):
        return None
    return publish_day_artifacts(request_day)


def _run_name() -> str:
    """'dispatch request 42', or for a new payload 'dispatch new leak repair for Dana Reyes'."""
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    if params.get("request_id") is not None:
        return f"dispatch request {params['request_id']}"
    payload = params.get("payload") or {}
    return f"dispatch new {payload.get('job_type', 'request')} for {payload.get('customer_name', 'a customer')}"


@flow(name="dispatch-service-request", flow_run_name=_run_name)
def dispatch_service_request(request_id: int | None = None, payload: dict[str, Any] | None = None,
                             idempotency_key: str | None = None) -> dict[str, Any] | State:
    """Assign one service request to the best technician and time, or escalate it to a dispatcher.

    Parameters
    ----------
    request_id:
        A request the intake service already persisted.
    payload:
        A new request to validate and persist (when no request_id is given).
    idempotency_key:
        With a payload: the same key never creates a second request.
    """
    from prefect.runtime import flow_run

    logger = get_run_logger()
    received = receive_service_request(request_id, payload, idempotency_key)
    rid = received.request_id
    earlier = _existing_outcome(rid)
    if earlier is not None:
        # A booking (or an earlier run) decided it already: its messages still pending go out now.
        deliver_quietly(request_id=rid)
        logger.info("request %s was already handled (%s); its pending messages delivered", rid, earlier["status"])
        return earlier
    settings = get_settings()
    holder = str(flow_run.id or "in-process")
    try:
        with requeue.dispatch_lease(rid, holder, lease_seconds=settings.dispatch_lease_seconds) as claim:
            if claim.attempt > settings.max_dispatch_attempts:
                reason = (f"dispatch failed {claim.attempt - 1} times; last error: "
                          f"{claim.previous_error or 'the run died without a word (process or worker killed)'}")
                esc_id = escalate_failed_dispatch(rid, reason)
                deliver_quietly(request_id=rid)
                logger.error("request %s escalated as a dead letter: %s", rid, reason)
                return Completed(name="Escalated", message=f"Escalated to manual review: {reason}",
                                 data={"request_id": rid, "status": "escalated", "escalation_id": esc_id,
                                       "reason": reason})
            if claim.attempt > 1:
                logger.warning("request %s: attempt %s (previous: %s)", rid, claim.attempt,
                               claim.previous_error or "the run died")
            return _decide_and_commit(rid, logger)
    except requeue.LeaseHeld as exc:
        logger.info("%s; this run leaves it alone", exc)
        return {"request_id": rid, "status": "under way", "already_done": True}


def _decide_and_commit(rid: int, logger: Any) -> dict[str, Any] | State:
    """Steps 2 to 7, deciding again when another dispatch took the chosen technician's time first."""
    tz = ZoneInfo(get_settings().company_timezone)
    job = analyse_job_requirements(rid)
    for attempt in range(1, MAX_DECISION_ATTEMPTS + 1):
        # The technicians' days, the candidates and the decision are large nested values: as_is() hands them to
        # the next step as they are, instead of Prefect walking every route and stop looking for futures (a
        # third of a worker's CPU per request in a burst). The steps still show in order in the run's graph.
        available = retrieve_available_technicians(job)
        candidates = check_capacity_threshold(job, as_is(available))
        decision = calculate_optimal_assignment(job, as_is(candidates))
        if decision.chosen is None:
            reason = decision.escalation_reason or "no technician could take the job"
            esc_id = escalate_to_manual_review(job, as_is(candidates), reason)
            deliver_quietly(request_id=rid)
            logger.warning("request %s escalated to manual review (escalation %s): %s; %d technicians considered",
                           rid, esc_id, reason, len(candidates))
            return Completed(name="Escalated", message=f"Escalated to manual review: {reason}",
                             data={"request_id": rid, "status": "escalated", "escalation_id": esc_id,
                                   "reason": reason})
        committed = update_schedule_and_notify(as_is(decision), job)
        if not isinstance(committed, TimeTaken):
            result = committed
            break
        logger.info("attempt %s: %s; deciding again", attempt, committed.reason)
        if attempt == MAX_DECISION_ATTEMPTS:
            raise commit.ScheduleConflict(committed.reason)
    confirmation_id = generate_assignment_confirmation(result)
    deliver_quietly(notification_ids=result.notification_ids)
    day = result.start.astimezone(tz).date()
    record_day_metrics(day)
    logger.info("request %s assigned to %s (technician %s): arrival window %s-%s %s, start %s, score %s%s",
                rid, result.technician_name, result.technician_id,
                result.window_start.astimezone(tz).strftime("%a %d %b %H:%M"),
                result.window_end.astimezone(tz).strftime("%H:%M"), tz.key,
                result.start.astimezone(tz).strftime("%H:%M"),
                ", ".join(f"{k} {v:.3f}" for k, v in result.score.items() if isinstance(v, int | float)) or "-",
                f"; {len(result.moved)} other stop(s) moved" if result.moved else "")
    return {"request_id": rid, "status": "assigned", "technician_id": result.technician_id,
            "technician": result.technician_name, "assignment_id": result.assignment_id,
            "confirmation_id": confirmation_id, "start": result.start.isoformat(),
            "window_start": result.window_start.isoformat(), "window_end": result.window_end.isoformat(),
            "moved": len(result.moved)}


def as_is(value: _T) -> _T:
    """``value`` handed to a task without Prefect walking it for futures (``quote``), typed as the value."""
    return cast(_T, quote(value))


# (settings, the same without the flow-run heartbeat), the latest first: a few, not one per run.
_NO_HEARTBEAT: list[tuple[Any, Any]] = []
_NO_HEARTBEAT_LOCK = threading.Lock()


def without_flow_heartbeats() -> Any:
    """Settings for a dispatch flow run without Prefect's flow-run heartbeat thread.

    A dead dispatch run is detected by its lease (renewed every third of ``dispatch_lease_seconds``; the sweep
    marks the Prefect run Crashed and runs the request again), so Prefect's heartbeat, every 180 s, adds nothing
    but a thread per run whose join costs up to a second of wall time at the end of every run.

    The copy is made once per distinct settings and reused: ``temporary_settings`` builds Prefect's whole settings
    object again on every call (about 60 ms of CPU, 12% of a worker's in a burst). A task worker gets a new but
    equal settings object with every hand-over (Prefect hydrates it from the intake's context), so the copies
    are found by equality, not identity.
    """
    from prefect.context import SettingsContext, get_settings_context
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY

    context = get_settings_context()
    current = context.settings
    with _NO_HEARTBEAT_LOCK:
        made = next((copy for base, copy in _NO_HEARTBEAT if base is current), None)
        if made is None:
            made = next((copy for base, copy in _NO_HEARTBEAT if base == current), None)
    if made is None:
        made = current.copy_with_update(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})
    with _NO_HEARTBEAT_LOCK:
        _NO_HEARTBEAT[:] = [(current, made)] + [(b, c) for b, c in _NO_HEARTBEAT if b is not current][:3]
    return SettingsContext(profile=context.profile, settings=made)


class _RoutineTaskCompletions(logging.Filter):
    """Drops Prefect's own "Finished in state Completed()" line of each task run (failures, retries, warnings
    and every line of ours pass): the task run's state already shows it, and a burst sent eight of them per
    request to the Prefect API, each a row in its database."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and isinstance(record.msg, str)
                    and record.msg.startswith("Finished in state Completed("))


def quiet_routine_task_logs() -> None:
    """Installs the filter above on Prefect's task-run logger (``truckroll worker`` does, once)."""
    logger = logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, _RoutineTaskCompletions) for f in logger.filters):
        logger.addFilter(_RoutineTaskCompletions())


@task(name="dispatch-requests", task_run_name="dispatch requests {request_ids}", cache_policy=INPUTS,
      persist_result=True)
def dispatch_requests(request_ids: list[int], attempt: str = "intake") -> list[dict[str, Any]]:
    """What a Prefect task worker runs for a hand-over of accepted requests: the dispatch flow for each, every
    one its own flow run, one after the other.

    ``attempt`` names the hand-over (the intake's, or a fresh one from the requeue sweep): the same requests and
    attempt share a cache key, so a hand-over delivered twice runs the flows once. A request whose run fails does
    not stop the others: its lease records the error and the requeue sweep runs it again (a dead letter after
    ``TRUCKROLL_MAX_DISPATCH_ATTEMPTS``).
    """
    outcomes: list[dict[str, Any]] = []
    failed: list[int] = []
    for request_id in request_ids:
        try:
            with without_flow_heartbeats():
                outcome: Any = dispatch_service_request(request_id=request_id)
        except Exception as exc:  # noqa: BLE001 - recorded on the lease; the sweep runs it again
            log.warning("dispatch of request %s failed (%s); the requeue sweep will run it again", request_id, exc)
            failed.append(request_id)
            outcomes.append({"request_id": request_id, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
            continue
        if not isinstance(outcome, dict):
            outcome = {"request_id": request_id, "status": "escalated" if outcome is not None else "unknown"}
        outcomes.append(outcome)
    if failed and len(failed) == len(request_ids):
        raise RuntimeError(f"dispatch failed for every request of the hand-over: {failed}")
    return outcomes

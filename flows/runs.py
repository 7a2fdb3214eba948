"""Starting dispatch flow runs, and which requests already have one under way.

Three ways, chosen by ``TRUCKROLL_FLOW_RUNS`` (``auto`` picks the first when a Prefect server is configured,
the last otherwise):

- ``task-worker``: the request goes to Prefect task workers (``truckroll worker``, started by ``make serve``):
  long-lived processes that run the dispatch flow as soon as the server pushes the request to them, several at
  once each. Every request is still its own flow run with its seven task runs in the Prefect UI. Add workers
  (on this machine or others) to drain faster.
- ``deployment``: a flow run of the ``dispatch`` deployment, run by a process worker of the work pool (a new
  Python process per run: seconds of start-up each, fine for re-runs from the UI, slow for a burst).
- ``in-process``: the flow runs inside this process, one at a time (a laptop without a Prefect server).

Submission is always handed to a background thread, so whoever accepted the request (the intake service)
answers at once. The request is persisted and held by a queued lease before it is handed over: if the process
dies with a backlog, the requeue sweep finds those requests and runs them (truckroll.requeue).
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from truckroll.manual import Resolution

log = logging.getLogger(__name__)

DISPATCH_DEPLOYMENT = "dispatch-service-request/dispatch"
# Flow runs carry this tag, so the sweep can ask Prefect whether a request already has one under way.
REQUEST_TAG = "truckroll-request-{}"
ACTIVE_STATE_TYPES = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")


def prefect_api_configured() -> bool:
    """True when PREFECT_API_URL names a Prefect server (flows then run on its workers)."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def flow_run_mode() -> str:
    """"deployment" or "in-process": TRUCKROLL_FLOW_RUNS, or (auto) whether a Prefect server is configured."""
    from truckroll.settings import get_settings

    mode = get_settings().flow_runs
    if mode == "auto":
        return "task-worker" if prefect_api_configured() else "in-process"
    return mode


_prefect_api_lock = threading.Lock()


def ensure_prefect_api() -> None:
    """Start Prefect's temporary (ephemeral) API once, when no Prefect server is configured.

    Prefect starts it lazily on the first flow run, but its start is not thread-safe: flows started from
    several threads at once (concurrent bookings right after start-up) each saw it "running" before it answered
    and failed. Every in-process flow start in truckroll calls this first, so the first caller starts it and
    the others wait for it. A no-op when PREFECT_API_URL is set or the server is already up.
    """
    if prefect_api_configured():
        return
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_ENABLED

    if not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    with _prefect_api_lock:
        server = SubprocessASGIServer()
        if server.running and server.server_process is not None and server.server_process.poll() is None:
            return
        server.running = False
        server.start()


def request_tag(request_id: int) -> str:
    return REQUEST_TAG.format(request_id)


def submit_to_deployment(request_id: int, *, attempt: str = "intake") -> str:
    """Create a flow run of the dispatch deployment for the request and return its id at once (timeout=0).

    The Prefect idempotency key makes a second submission with the same ``attempt`` a no-op, so a retried
    hand-over never creates two flow runs; the requeue sweep passes a fresh ``attempt``.
    """
    from prefect.deployments import run_deployment

    # Named at creation, so a run that crashes before it starts still says which request it was.
    run = run_deployment(name=DISPATCH_DEPLOYMENT, parameters={"request_id": request_id}, timeout=0,
                         flow_run_name=f"dispatch request {request_id}",
                         as_subflow=False, tags=["truckroll", request_tag(request_id)],
                         idempotency_key=f"dispatch-{request_id}-{attempt}")
    return str(run.id)  # type: ignore[union-attr]


_DELAY_LOCK = threading.Lock()


def submit_to_task_worker(request_id: int, *, attempt: str = "intake") -> str:
    """Hand the request to the Prefect task workers; returns the id of the background task run at once.

    The same request and ``attempt`` give the same cache key, so a retried hand-over runs the flow once.
    """
    from flows.dispatch import dispatch_request

    # One hand-over at a time per process: Prefect 3.8.8's Task.delay deadlocks when several threads call it at
    # once (they all wait in apply_async); a hand-over is a few API calls, well under a second.
    with _DELAY_LOCK:
        future = dispatch_request.delay(request_id, attempt)
    return str(future.task_run_id)


def submit(request_id: int, *, attempt: str = "intake", mode: str | None = None) -> Any:
    """Start a dispatch run of the request the configured way (see the module docstring)."""
    mode = mode or flow_run_mode()
    if mode == "task-worker":
        return submit_to_task_worker(request_id, attempt=attempt)
    if mode == "deployment":
        return submit_to_deployment(request_id, attempt=attempt)
    return run_in_process(request_id)


def mark_crashed(flow_run_ids: Iterable[str], *, message: str) -> list[str]:
    """Set still-active Prefect flow runs to Crashed (their process died); returns the ones changed."""
    ids = [i for i in flow_run_ids if i]
    if not ids or not prefect_api_configured():
        return []
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    changed: list[str] = []
    with get_client(sync_client=True) as client:
        for run_id in ids:
            try:
                run = client.read_flow_run(uuid.UUID(run_id))
                if run.state is None or run.state.type.value not in ACTIVE_STATE_TYPES:
                    continue
                client.set_flow_run_state(run.id, Crashed(message=message), force=True)
                changed.append(run_id)
            except Exception:  # noqa: BLE001 - a run the API cannot find or change is left as it is
                log.warning("could not mark flow run %s crashed", run_id, exc_info=True)
    return changed


def run_in_process(request_id: int) -> Any:
    """Run the dispatch flow here and now; returns its outcome."""
    from flows.dispatch import dispatch_service_request

    ensure_prefect_api()
    outcome: Any = dispatch_service_request(request_id=request_id)
    return outcome.result() if hasattr(outcome, "result") else outcome


def dispatch_now(request_id: int) -> dict[str, Any]:
    """Run the dispatch flow here and now and return its outcome as a dict (a booking waits for it)."""
    return dict(run_in_process(request_id))


def active_flow_run_request_ids(request_ids: Iterable[int]) -> set[int]:
    """The requests among ``request_ids`` with a dispatch flow run scheduled, pending or running in Prefect."""
    ids = list(request_ids)
    if not ids or flow_run_mode() != "deployment":
        return set()
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    tags = {request_tag(i): i for i in ids}
    flt = FlowRunFilter(tags=FlowRunFilterTags(any_=list(tags)),
                        state=FlowRunFilterState(type=FlowRunFilterStateType(
                            any_=[StateType(s) for s in ACTIVE_STATE_TYPES])))
    with get_client(sync_client=True) as client:
        # sort given explicitly: Prefect 3.8.8's client sends null otherwise, which its server refuses (422).
        runs = client.read_flow_runs(flow_run_filter=flt, limit=len(ids) * 4 + 10, sort=FlowRunSort.ID_DESC)
    return {tags[t] for r in runs for t in r.tags if t in tags}


class BackgroundDispatcher:
    """Hands accepted request ids to the dispatch flow from background threads.

    ``task-worker`` and ``deployment`` only hand the request over (workers run it), from ``threads`` threads
    at once (default 8: a hand-over is a few calls to the Prefect API, so a burst is handed over in parallel);
    ``in-process`` runs the flow in this process from one thread, one after the other, so an SQLite database
    has a single flow writer.
    """

    def __init__(self, mode: str | None = None, run: Callable[[int, str], Any] | None = None,
                 threads: int = 8) -> None:
        self.mode = mode or flow_run_mode()
        if self.mode not in ("task-worker", "deployment", "in-process"):
            raise ValueError(f"mode must be 'task-worker', 'deployment' or 'in-process' (got {self.mode!r})")
        self._run = run or self._submit
        self._queue: queue.Queue[tuple[int, str] | None] = queue.Queue()
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._thread_count = 1 if self.mode == "in-process" else max(1, threads)
        self.handled = 0
        self.failed = 0

    def start(self) -> None:
        if not self._threads:
            self._threads = [threading.Thread(target=self._loop, name=f"truckroll-dispatcher-{i}", daemon=True)
                             for i in range(self._thread_count)]
            for t in self._threads:
                t.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the items in hand; what is still queued is picked up later by the sweep."""
        if self._threads:
            with self._queue.mutex:
                self._queue.queue.clear()
            for _ in self._threads:
                self._queue.put(None)
            for t in self._threads:
                t.join(timeout)
            self._threads = []

    def _submit(self, request_id: int, attempt: str) -> Any:
        from truckroll.requeue import mark_queued
        from truckroll.settings import get_settings

        if self.mode != "in-process":
            mark_queued([request_id], hold_seconds=get_settings().requeue_after_seconds)
        return submit(request_id, attempt=attempt, mode=self.mode)

    def submit(self, request_id: int, attempt: str = "intake") -> bool:
        """Queue a request; False when it is already queued or being handled.

        ``attempt`` names the hand-over: the same request and attempt never make two Prefect flow runs; the
        sweep passes a new one (``new_attempt()``) to run a request again.
        """
        with self._lock:
            if request_id in self._pending:
                return False
            self._pending.add(request_id)
        self._queue.put((request_id, attempt))
        return True

    def pending(self) -> set[int]:
        """Requests queued or in hand (the sweep leaves them alone)."""
        with self._lock:
            return set(self._pending)

    def backlog(self) -> int:
        return self._queue.qsize()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            request_id, attempt = item
            try:
                self._run(request_id, attempt)
                with self._lock:
                    self.handled += 1
            except Exception:  # noqa: BLE001 - one failed run must not stop the others; the sweep retries it
                with self._lock:
                    self.failed += 1
                log.exception("dispatch of request %s failed; the requeue sweep will retry it", request_id)
            finally:
                with self._lock:
                    self._pending.discard(request_id)


def new_attempt() -> str:
    return uuid.uuid4().hex[:12]


def emit_resolved_event(resolution: Resolution, resolved_by: str) -> None:
    """Tell Prefect an escalation was resolved by hand (event ``truckroll.escalation.resolved``, related to the
    dispatch run that escalated it); a no-op without a Prefect server, and never raises."""
    if not prefect_api_configured():
        return
    try:
        from prefect.events import emit_event

        from truckroll.db import session_scope
        from truckroll.requeue import last_run_id

        with session_scope() as session:
            run_id = last_run_id(resolution.assignment.request_id, session=session)
        # Related to the dispatch run that escalated it: the event shows on that run's page in the UI.
        related = [{"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.role": "flow-run"}
                   ] if run_id else None
        emit_event(event="truckroll.escalation.resolved", related=related,
                   resource={"prefect.resource.id": f"truckroll.request.{resolution.assignment.request_id}"},
                   payload={"escalation_id": resolution.escalation_id, "resolved_by": resolved_by,
                            "technician_id": resolution.assignment.technician_id})
    except Exception:  # noqa: BLE001 - the assignment is written; an event that cannot be sent must not undo it
        log.debug("could not emit the resolution event", exc_info=True)

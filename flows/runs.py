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
dies with a backlog, the requeue sweep finds those requests and runs them (truckroll.dispatch.requeue).
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from truckroll.dispatch.manual import Resolution

log = logging.getLogger(__name__)

DISPATCH_FLOW = "dispatch-service-request"
DISPATCH_DEPLOYMENT = f"{DISPATCH_FLOW}/dispatch"
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


def submit_to_task_worker(request_ids: list[int], *, attempt: str = "intake") -> str:
    """Hand requests to the Prefect task workers in one background task run; returns its id at once.

    Each request still runs as its own flow run. The same requests and ``attempt`` give the same cache key, so
    a hand-over delivered twice runs them once.
    """
    from flows.dispatch import dispatch_requests

    # One hand-over at a time per process: Prefect 3.8.8's Task.delay deadlocks when several threads call it at
    # once (they all wait in apply_async); a hand-over is a few API calls, well under a second on a quiet server.
    with _DELAY_LOCK:
        future = dispatch_requests.delay(list(request_ids), attempt)
    return str(future.task_run_id)


def submit(request_id: int, *, attempt: str = "intake", mode: str | None = None) -> Any:
    """Start a dispatch run of the request the configured way (see the module docstring)."""
    mode = mode or flow_run_mode()
    if mode == "task-worker":
        return submit_to_task_worker([request_id], attempt=attempt)
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


def orphaned_dispatch_runs(live_holders: Iterable[str], *, older_than_seconds: float) -> list[str]:
    """Dispatch flow runs Prefect still shows Pending or Running, last changed more than ``older_than_seconds``
    ago, that hold no live lease: their process died before the run claimed its request (a worker killed between
    creating the run and its first step). A live run claims its lease within its first step and renews it, so it
    is never among them. Empty without a Prefect server; never raises."""
    if not prefect_api_configured():
        return []
    from datetime import UTC, datetime, timedelta

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    live = set(live_holders)
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
    try:
        with get_client(sync_client=True) as client:
            found = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[DISPATCH_FLOW])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                    any_=[StateType.PENDING, StateType.RUNNING]))),
                sort=FlowRunSort.ID_DESC, limit=200)
    except Exception:  # noqa: BLE001 - the next sweep asks again
        log.warning("could not read the active dispatch runs", exc_info=True)
        return []
    return [str(r.id) for r in found
            if str(r.id) not in live and r.updated is not None and r.updated < cutoff]


def run_in_process(request_id: int) -> Any:
    """Run the dispatch flow here and now; returns its outcome."""
    from flows.dispatch import dispatch_service_request, without_flow_heartbeats

    ensure_prefect_api()
    with without_flow_heartbeats():
        outcome: Any = dispatch_service_request(request_id=request_id)
    return outcome.result() if hasattr(outcome, "result") else outcome


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
    (default 8); to task workers, requests waiting together go in one hand-over of up to ``batch_size``
    (``TRUCKROLL_HANDOVER_BATCH``, default 4), each still its own flow run: a burst costs the Prefect server a
    task run per batch rather than per request, while a lone request is handed over at once;
    ``in-process`` runs the flow in this process from one thread, one after the other, so an SQLite database
    has a single flow writer.
    """

    def __init__(self, mode: str | None = None, run: Callable[[int, str], Any] | None = None,
                 threads: int = 8, batch_size: int | None = None) -> None:
        self.mode = mode or flow_run_mode()
        if self.mode not in ("task-worker", "deployment", "in-process"):
            raise ValueError(f"mode must be 'task-worker', 'deployment' or 'in-process' (got {self.mode!r})")
        self._run = run or self._submit
        if batch_size is None:
            from truckroll.settings import get_settings

            batch_size = get_settings().handover_batch
        self.batch_size = max(1, batch_size)
        # Requests are handed to task workers in batches (see _loop) unless a caller supplied its own runner.
        self._batches = run is None and self.mode == "task-worker"
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
        from truckroll.dispatch.requeue import mark_queued
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
        if self.mode == "in-process" and self._run == self._submit:
            # Import the flow, its tasks and the engine now, not when the first request arrives: the first
            # `truckroll request create --service` after `truckroll serve` started answers as fast as the others
            # (docs/benchmarks.md). A request queued meanwhile waits for it, as it would have anyway.
            try:
                import flows.dispatch  # noqa: F401
            except Exception:  # noqa: BLE001 - the first run reports the same error with its request
                log.exception("warming up the dispatch flow failed")
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            if self._batches:
                # A burst: what waits behind this request goes in the same hand-over (each request is still its
                # own flow run), so the Prefect server creates one task run per batch instead of one per request.
                while len(batch) < self.batch_size:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._queue.put(None)
                        break
                    batch.append(more)
            ids = [rid for rid, _ in batch]
            try:
                if self._batches:
                    self._submit_batch(batch)
                else:
                    self._run(*item)
                with self._lock:
                    self.handled += len(batch)
            except Exception:  # noqa: BLE001 - one failed hand-over must not stop the others; the sweep retries
                with self._lock:
                    self.failed += len(batch)
                log.exception("dispatch of request(s) %s failed; the requeue sweep will retry", ids)
            finally:
                with self._lock:
                    self._pending.difference_update(ids)

    def _submit_batch(self, batch: list[tuple[int, str]]) -> str:
        from truckroll.dispatch.requeue import mark_queued
        from truckroll.settings import get_settings

        ids = [rid for rid, _ in batch]
        mark_queued(ids, hold_seconds=get_settings().requeue_after_seconds)
        # One attempt name for the batch: the same hand-over delivered twice runs once; a new batch runs again.
        attempt = batch[0][1] if len(batch) == 1 else new_attempt()
        return submit_to_task_worker(ids, attempt=attempt)


def new_attempt() -> str:
    return uuid.uuid4().hex[:12]


def request_flow_runs(request_id: int, *, session: Any, limit: int = 20) -> list[dict[str, Any]]:
    """The Prefect flow runs of a request, newest first: ``{id, name, state, url}`` (``url`` in the Prefect UI
    when its address is known). From Prefect (runs tagged with the request) when a server is configured, else
    the run that last held the request's lease; [] when it ran without Prefect. Never raises."""
    from truckroll.dispatch.requeue import last_run_id

    ui = prefect_ui_url()
    runs: list[dict[str, Any]] = []
    if prefect_api_configured():
        try:
            from prefect.client.orchestration import get_client
            from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
            from prefect.client.schemas.sorting import FlowRunSort

            flt = FlowRunFilter(tags=FlowRunFilterTags(all_=[request_tag(request_id)]))
            with get_client(sync_client=True) as client:
                for fr in client.read_flow_runs(flow_run_filter=flt, limit=limit, sort=FlowRunSort.START_TIME_DESC):
                    runs.append({"id": str(fr.id), "name": fr.name, "state": fr.state.name if fr.state else None})
        except Exception:  # noqa: BLE001 - the console shows what the database knows
            log.warning("could not read the flow runs of request %s", request_id, exc_info=True)
    last = last_run_id(request_id, session=session)
    if last and all(r["id"] != last for r in runs):
        runs.append({"id": last, "name": None, "state": None})
    for r in runs:
        r["url"] = f"{ui}/runs/flow-run/{r['id']}" if ui else None
    return runs


def prefect_ui_url() -> str | None:
    """Where the Prefect UI is: TRUCKROLL_PREFECT_UI_URL, else Prefect's own PREFECT_UI_URL (None: unknown)."""
    from truckroll.settings import get_settings

    url: str | None = get_settings().prefect_ui_url
    if not url:
        try:
            from prefect.settings import PREFECT_UI_URL

            url = PREFECT_UI_URL.value()
        except Exception:  # noqa: BLE001
            url = None
    return url.rstrip("/") if url else None


def emit_resolved_event(resolution: Resolution, resolved_by: str) -> None:
    """Tell Prefect an escalation was resolved by hand (event ``truckroll.escalation.resolved``, related to the
    dispatch run that escalated it); a no-op without a Prefect server, and never raises."""
    if not prefect_api_configured():
        return
    try:
        from prefect.events import emit_event

        from truckroll.db import session_scope
        from truckroll.dispatch.requeue import last_run_id

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

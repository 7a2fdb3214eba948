"""The demo's replay: a stream of requests through the dispatch flow, and the re-optimisation runs of each day,
as a company's day would run them (``truckroll demo``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from demo.company import TZ, DemoRequest

log = logging.getLogger(__name__)


# How often the replay runs a request's dispatch flow when the run itself fails.
DISPATCH_ATTEMPTS = 3
# The re-optimisation's runs in the replay: at night for the horizon, and again after the morning's
# emergencies (they arrive 06:00-07:30) for the day, as a schedule of runs during the day does.
NIGHT_REOPTIMISATION = time(5)
MORNING_REOPTIMISATION = time(8)


@dataclass
class ReplayDay:
    day: date
    dispatched: int
    assigned: int
    escalated: int
    reoptimized: str
    # the 08:00 run after the morning's emergencies ("" when none arrived)
    reoptimized_after_emergencies: str = ""


def share_escalated(session: Session) -> tuple[int, int]:
    """(requests without an active assignment, requests) of the database: what a dispatcher must handle."""
    from sqlmodel import col

    from models import ACTIVE_ASSIGNMENT_STATUSES, Assignment, ServiceRequest

    total = len(session.exec(select(ServiceRequest.id)).all())
    served = set(session.exec(select(Assignment.request_id).where(
        col(Assignment.status).in_(ACTIVE_ASSIGNMENT_STATUSES))).all())
    return total - len(served), total


def start_prefect_server() -> Callable[[], None]:
    """Without ``PREFECT_API_URL``, the first flow run starts Prefect's temporary server, which takes 10-30 s on
    this machine (importing Prefect's server, checking its database). Start it now in a thread, so that it
    overlaps what the caller does next (setting up the company); returns the wait for it. With a server
    configured, nothing is started."""
    import threading

    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return lambda: None
    from prefect.server.api.server import SubprocessASGIServer

    # The server the flow runs will use (one per process: Prefect keeps it for the same port key), stopped at exit.
    thread = threading.Thread(target=SubprocessASGIServer().start, name="prefect-temporary-server", daemon=True)
    thread.start()
    return thread.join


def _in_threads(items: list[DemoRequest], one: Callable[[DemoRequest], str], concurrency: int) -> Iterator[str]:
    """``one(item)`` for every item on ``concurrency`` threads, yielding each result as it is ready (for the
    progress bar); an item whose ``one`` raises counts as "failed". Each thread keeps one Prefect client for
    all its flow runs: a flow run started outside any client context opens a client of its own, with a new
    verified TLS context (certifi's bundle loaded, about 40 ms of CPU), which was a tenth of the replay's CPU."""
    import threading
    from queue import Empty, SimpleQueue

    from prefect.context import SyncClientContext

    todo: SimpleQueue[DemoRequest] = SimpleQueue()
    for item in items:
        todo.put(item)
    done: SimpleQueue[str] = SimpleQueue()

    def work() -> None:
        context: Any = SyncClientContext.get_or_create()
        try:
            context.__enter__()
        except Exception:  # noqa: BLE001 - without a client of its own each run opens one, as before
            log.warning("a replay thread could not open its Prefect client", exc_info=True)
            context = None
        try:
            while True:
                try:
                    item = todo.get_nowait()
                except Empty:
                    return
                try:
                    done.put(one(item))
                except Exception:  # noqa: BLE001 - counted as failed, never lost (the caller waits for each)
                    log.warning("the replay of a request failed", exc_info=True)
                    done.put("failed")
        finally:
            if context is not None:
                context.__exit__(None, None, None)

    threads = [threading.Thread(target=work, name=f"replay-{i}", daemon=True)
               for i in range(max(1, min(concurrency, len(items))))]
    for t in threads:
        t.start()
    for _ in items:
        yield done.get()
    for t in threads:
        t.join()


def replay(stream: list[DemoRequest], days: list[date], *, reoptimize_seconds: float = 10.0,
           on_request: Any = None, concurrency: int = 1) -> list[ReplayDay]:
    """Replay ``stream`` as it would arrive: before each day's 05:00 re-optimisation, every request that
    arrived by then goes through the dispatch flow; then the reoptimize flow re-plans that day and the next
    working days (moving unpromised work between them). The morning's emergencies come after it, then an
    08:00 re-optimisation of the day re-places what they displaced.

    ``on_request(status)`` is called after each dispatch (for a progress bar). With ``concurrency`` > 1,
    that many requests are in the dispatch flow at once, in arrival order, as when several customers book
    at the same time (the dispatch flow's write lock keeps a technician from being double-booked).
    """
    from flows.dispatch import DAY_ARTIFACTS, dispatch_service_request, publish_day_artifacts, without_flow_heartbeats
    from flows.reoptimize import reoptimize_day
    from truckroll.settings import get_settings

    tz = ZoneInfo(TZ)
    out: list[ReplayDay] = []
    pending = list(stream)
    # As a task worker does: the day's plan page and metrics are refreshed once per interval, not per request;
    # each day's are published once more when the replay ends.
    DAY_ARTIFACTS.start_refresher(get_settings().plan_artifact_seconds)
    try:
        for n, day in enumerate(days):
            batches: list[list[DemoRequest]] = []
            for hour in (NIGHT_REOPTIMISATION, MORNING_REOPTIMISATION):
                cutoff = datetime.combine(day, hour, tzinfo=tz)
                batches.append([r for r in pending if r.arrives_at < cutoff])
                pending = [r for r in pending if r.arrives_at >= cutoff]
            if n == len(days) - 1:
                batches[-1] += pending
                pending = []
            counts = {"assigned": 0, "escalated": 0}
            outcome = after = ""
            def one(item: DemoRequest) -> str:
                # The idempotency key lets a run that failed (e.g. the temporary Prefect API answering 503 while
                # its SQLite file is locked) be tried again without creating the request twice.
                key = f"demo-{item.payload['customer_email']}"
                for attempt in range(1, DISPATCH_ATTEMPTS + 1):
                    try:
                        with without_flow_heartbeats():
                            state: Any = dispatch_service_request(payload=item.payload, idempotency_key=key)
                        data = state.result() if hasattr(state, "result") else state
                        return str(data["status"])
                    except Exception as exc:  # noqa: BLE001 - a failed run is tried again, then counted, not fatal
                        log.warning("the dispatch of %s's request failed (attempt %d of %d): %s",
                                    item.payload.get("customer_name"), attempt, DISPATCH_ATTEMPTS, exc)
                return "failed"

            for b, batch in enumerate(batches):
                # The first run alone: it starts Prefect's temporary server, which threads must not race to start.
                head, rest = (batch[:1], batch[1:]) if n == 0 and b == 0 else ([], batch)
                for status in [one(item) for item in head] + list(_in_threads(rest, one, concurrency)):
                    counts[status] = counts.get(status, 0) + 1
                    if on_request is not None:
                        on_request(status)
                if b == 0 or batch:
                    # 05:00: the day and the next working days; 08:00, after the morning's emergencies: the day,
                    # re-placing what they displaced (the escalated requests are offered to the model).
                    res: Any = reoptimize_day(day=day.isoformat(), time_limit_seconds=reoptimize_seconds,
                                              horizon_days=min(3, len(days) - n) if b == 0 else 1, return_state=True)
                    got = res.result(raise_on_failure=False)
                    message = res.message if isinstance(got, dict) else f"failed: {res.message}"
                    outcome, after = (message, after) if b == 0 else (outcome, message)
            out.append(ReplayDay(day, sum(len(b) for b in batches), counts["assigned"], counts["escalated"], outcome,
                                 after))
    finally:
        DAY_ARTIFACTS.stop_refresher()
    for day in days:
        try:
            publish_day_artifacts(day)
        except Exception as exc:  # noqa: BLE001 - the pictures must not fail the demo
            log.warning("could not publish the plan artifacts of %s: %s", day, exc)
    return out

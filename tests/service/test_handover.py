"""A burst is handed to the task workers in batches (each request still its own flow run), a failing request does
not stop the rest of its batch, and a burst refreshes the day's pictures once per interval, not per request."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest
from sqlmodel import select

from flows import dispatch as dispatch_flow
from flows import runs as flowruns
from models.operations import DispatchLease
from tests import factories as f
from truckroll import store
from truckroll.db import session_scope
from truckroll.dispatch.requeue import QUEUED
from truckroll.settings import get_settings


def _persist(n: int) -> list[int]:
    with session_scope() as s:
        return [store.create_request(f.request_payload(), session=s,
                                     horizon_days=get_settings().planning_horizon_days)[0].id or 0 for _ in range(n)]


def test_waiting_requests_go_to_the_task_workers_in_batches(company: dict[str, int],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _persist(9)
    handed: list[list[int]] = []
    first_in_hand, release = threading.Event(), threading.Event()

    def fake_delay(request_ids: list[int], *, attempt: str = "intake") -> str:
        handed.append(list(request_ids))
        first_in_hand.set()
        release.wait(10)  # the first hand-over is slow: the rest of the burst queues up behind it
        return "task-run"

    monkeypatch.setattr(flowruns, "submit_to_task_worker", fake_delay)
    dispatcher = flowruns.BackgroundDispatcher(mode="task-worker", threads=1, batch_size=4)
    dispatcher.start()
    try:
        dispatcher.submit(ids[0])
        assert first_in_hand.wait(10)
        for rid in ids[1:]:
            dispatcher.submit(rid)
        release.set()
        deadline = time.monotonic() + 10
        while dispatcher.handled < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        dispatcher.stop()
    assert handed == [ids[:1], ids[1:5], ids[5:9]]
    assert dispatcher.pending() == set()
    with session_scope() as s:
        leases = {lease.request_id: lease.holder for lease in s.exec(select(DispatchLease)).all()}
    # Every request was held by a queued lease before its hand-over, so a lost batch is found by the sweep.
    assert leases == {rid: QUEUED for rid in ids}


def test_a_failing_request_does_not_stop_its_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[int] = []

    def flow(request_id: int) -> dict[str, object]:
        ran.append(request_id)
        if request_id == 2:
            raise RuntimeError("database unreachable")
        return {"request_id": request_id, "status": "assigned"}

    monkeypatch.setattr(dispatch_flow, "dispatch_service_request", flow)
    outcomes = dispatch_flow.dispatch_requests.fn([1, 2, 3], "intake")
    assert ran == [1, 2, 3]
    assert [o["status"] for o in outcomes] == ["assigned", "failed", "assigned"]
    assert "database unreachable" in str(outcomes[1]["error"])
    with pytest.raises(RuntimeError, match="every request"):
        dispatch_flow.dispatch_requests.fn([2], "intake")


def test_a_burst_refreshes_the_day_pictures_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[date] = []
    monkeypatch.setattr(dispatch_flow, "publish_day_artifacts", published.append)
    day, other = date(2026, 12, 1), date(2026, 12, 2)
    # Without a refresher (a flow run in the service or the CLI) every dispatch publishes its day.
    plain = dispatch_flow._DayArtifacts()
    assert plain.due(day, 1.0) and plain.due(day, 1.0)
    artifacts = dispatch_flow._DayArtifacts()
    artifacts.start_refresher(1.0)
    try:
        assert artifacts.due(day, 1.0)          # the first of the burst publishes
        assert not artifacts.due(day, 1.0)      # the next ones within the interval leave it stale
        assert not artifacts.due(day, 1.0)
        assert artifacts.due(other, 1.0)        # another day is its own
        deadline = time.monotonic() + 10
        while not published and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)
    finally:
        artifacts.stop_refresher()
    assert published == [day]                   # the refresher published the stale day once, the other not at all

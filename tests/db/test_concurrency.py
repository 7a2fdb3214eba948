"""Two dispatches at the same moment never double-book a technician: enforced in the database transaction
(write lock on the technician row, route re-read and insertion re-evaluated under it), on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import col, select

from engine.dispatch.decision import choose, evaluate_candidates
from models import Assignment, AssignmentStatus, Decision, JobRequirements, RequestStatus
from tests import factories as f
from truckroll import store
from truckroll.db import session_scope
from truckroll.dispatch import commit
from truckroll.settings import get_settings
from truckroll.travel.provider import get_travel_provider

pytestmark = pytest.mark.postgres

REQUESTS = 10


def _decide(job: JobRequirements, technician_ids: list[int] | None = None) -> Decision:
    lo, hi = store.job_horizon(job)
    with session_scope() as s:
        days = store.technician_days(session=s, start=lo, end=hi, tz=get_settings().company_timezone,
                                     live=get_travel_provider(get_settings()), technician_ids=technician_ids)
    return choose(job, evaluate_candidates(job, days, get_travel_provider(get_settings()), get_settings().dispatch),
                  get_settings().dispatch)


def _commit(decision: Decision, job: JobRequirements) -> commit.CommittedAssignment:
    settings = get_settings()
    with session_scope() as s:
        return commit.commit_assignment(decision, job, session=s, travel=get_travel_provider(settings),
                                        settings=settings)


def _seed(n_requests: int) -> tuple[list[int], list[int]]:
    with session_scope() as s:
        f.add_job_type(s)
        techs = [f.add_technician(s, name).id for name in ("Ana", "Ben")]
        reqs = [store.create_request(f.request_payload(customer_name=f"C{i}"), session=s,
                                     horizon_days=get_settings().planning_horizon_days)[0].id
                for i in range(n_requests)]
    return [t for t in techs if t is not None], [r for r in reqs if r is not None]


def test_simultaneous_dispatches_never_overlap(pg_db: str) -> None:
    """10 requests for the same 08:00-12:00 window, decided on the same snapshot (all threads decide, then all
    commit at once): the commits serialise per technician, losers decide again, and no technician's jobs
    overlap; every request ends assigned or escalated."""
    _, rids = _seed(REQUESTS)
    with session_scope() as s:
        jobs = {rid: store.requirements_of(rid, session=s, tz=get_settings().company_timezone) for rid in rids}
    barrier = threading.Barrier(REQUESTS)
    conflicts = Counter[int]()

    def dispatch(rid: int) -> str:
        job = jobs[rid]
        decision = _decide(job)
        barrier.wait(timeout=60)  # everyone holds a decision made before any commit
        for _ in range(REQUESTS + 1):
            if decision.chosen is None:
                with session_scope() as s:
                    store.open_escalation(rid, decision.escalation_reason or "none", {}, session=s)
                return "escalated"
            try:
                _commit(decision, job)
                return "assigned"
            except commit.ScheduleConflict:
                conflicts[rid] += 1
                decision = _decide(job)
        raise AssertionError(f"request {rid} never settled")

    with ThreadPoolExecutor(REQUESTS) as pool:
        outcomes = list(pool.map(dispatch, rids))

    assert sum(conflicts.values()) > 0  # the stale decisions really collided
    with session_scope() as s:
        active = s.exec(select(Assignment).where(col(Assignment.status) != AssignmentStatus.CANCELLED)).all()
        statuses = {r.id: r.status for r in s.exec(select(store.ServiceRequest)).all()}
    assert Counter(a.request_id for a in active).most_common(1)[0][1] == 1
    assert {rid for rid, o in zip(rids, outcomes, strict=True) if o == "assigned"} == {a.request_id for a in active}
    assert all(statuses[rid] in (RequestStatus.ASSIGNED, RequestStatus.ESCALATED) for rid in rids)
    by_tech: dict[int, list[Assignment]] = defaultdict(list)
    for a in active:
        by_tech[a.technician_id].append(a)
    for jobs_of_tech in by_tech.values():
        jobs_of_tech.sort(key=lambda a: a.scheduled_start)
        for a, b in zip(jobs_of_tech, jobs_of_tech[1:], strict=False):
            assert a.scheduled_end <= b.scheduled_start, (a, b)
    assert len(active) >= 4  # both technicians took work: the test exercised real contention


def test_two_runs_for_one_request_assign_it_once(pg_db: str) -> None:
    """A requeued run racing the original (each chose a different technician) cannot assign the request twice:
    the request's row lock makes the second commit find the first assignment."""
    techs, (rid,) = _seed(1)
    with session_scope() as s:
        job = store.requirements_of(rid, session=s, tz=get_settings().company_timezone)
    decisions = [_decide(job, [t]) for t in techs]
    assert all(d.chosen is not None for d in decisions)
    barrier = threading.Barrier(2)

    def commit_one(decision: Decision) -> str:
        barrier.wait(timeout=60)
        try:
            _commit(decision, job)
            return "assigned"
        except commit.ScheduleConflict:
            return "conflict"

    with ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(commit_one, decisions))
    assert results == ["assigned", "conflict"]
    with session_scope() as s:
        assert len(s.exec(select(Assignment).where(Assignment.request_id == rid)).all()) == 1

"""The one dispatch decision against the database: load -> evaluate -> choose.

Every caller that needs to know who can take a request, and who should, goes through here: the dispatch flow's
tasks (one step each: ``load``, ``evaluate``, ``choose``), the commit's re-check under the technician's lock
(``truckroll.dispatch.commit``), the re-dispatch of displaced requests (``truckroll.dispatch.displacement``), a
dispatcher's manual resolution (``truckroll.dispatch.manual``), why-not (``truckroll.dispatch.whynot``) and booking
availability (through ``engine.dispatch.decision.decide``, which is ``choose(evaluate(...))`` on plain data).
The job is always built by ``store.requirements_of`` and the days by ``store.technician_days`` over
``store.job_horizon``, so two callers can never answer differently for the same request and routes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session

from engine.config import DispatchSettings
from engine.dispatch import decision as engine_dispatch
from engine.dispatch import repair as engine_repair
from engine.travel import TravelTimeProvider
from models import Candidate, Decision, JobRequirements, RequestStatus, TechnicianDay
from truckroll import store

log = logging.getLogger(__name__)

@dataclass
class Loaded:
    """What the decision is made on: the analysed request and the shifts overlapping its windows."""

    job: JobRequirements
    days: list[TechnicianDay]


def load_job(request_id: int, *, session: Session, tz: str) -> JobRequirements:
    """Step 2: the request and its catalogue entry, territory and hours (the only way a job is built); ``tz`` is
    the company's time zone (the setting ``company_timezone``), for a job outside every territory."""
    return store.requirements_of(request_id, session=session, tz=tz)


def analyse(request_id: int, *, session: Session, tz: str) -> JobRequirements:
    """Step 2 of the dispatch flow: the job (``load_job``), and a received request marked analysed."""
    job = load_job(request_id, session=session, tz=tz)
    row = store.get_request(request_id, session=session)
    if row.status == RequestStatus.RECEIVED:
        row.status = RequestStatus.ANALYSED
        session.add(row)
    return job


def load_days(job: JobRequirements, *, session: Session, travel: TravelTimeProvider, tz: str,
              technician_ids: Iterable[int] | None = None) -> list[TechnicianDay]:
    """Step 3: the work blocks overlapping the job's windows with their live routes (of ``technician_ids`` only
    when given). A routing service fetches the decision's travel in a few matrix requests here, before the
    decision."""
    start, end = store.job_horizon(job)
    days = store.technician_days(session=session, start=start, end=end, tz=tz, live=travel,
                                 technician_ids=technician_ids)
    prefetch = getattr(travel, "prefetch", None)
    if prefetch is not None and days:
        prefetch([job.location] + [d.home for d in days] + [s.location for d in days for s in d.stops])
    return days


def load(request_id: int, *, session: Session, travel: TravelTimeProvider, tz: str,
         technician_ids: Iterable[int] | None = None) -> Loaded:
    job = load_job(request_id, session=session, tz=tz)
    return Loaded(job, load_days(job, session=session, travel=travel, tz=tz, technician_ids=technician_ids))


def evaluate(job: JobRequirements, days: list[TechnicianDay], *, travel: TravelTimeProvider,
             rules: DispatchSettings, overrides: frozenset[str] = frozenset()) -> list[Candidate]:
    """Step 4: qualification, threshold and cheapest insertion per technician (``engine.dispatch.decision``)."""
    return engine_dispatch.evaluate_candidates(job, days, travel, rules, overrides)


def choose(job: JobRequirements, candidates: list[Candidate], *, rules: DispatchSettings,
           overrides: frozenset[str] = frozenset(), travel: TravelTimeProvider | None = None,
           session: Session | None = None, repair: bool = True, tz: str) -> Decision:
    """Step 5: score and choose, relaxing boundaries and displacing in the engine's order; when nobody can take
    the job that way, the bounded repair (``engine.dispatch.repair``, within ``rules.repair_budget_seconds``) before
    escalating. The repair needs ``travel`` and reads the moved jobs' requirements (in ``session``, else in a
    session of its own; ``tz``: the company's time zone)."""
    decision = engine_dispatch.choose(job, candidates, rules)
    if decision.chosen is None and repair and travel is not None and rules.repair_budget_seconds > 0:
        repaired = _repair(job, candidates, travel=travel, rules=rules, overrides=overrides, session=session, tz=tz)
        if repaired is not None:
            decision = repaired
    decision.overrides = frozenset(overrides)
    return decision


def _repair(job: JobRequirements, candidates: list[Candidate], *, travel: TravelTimeProvider,
            rules: DispatchSettings, overrides: frozenset[str], session: Session | None, tz: str) -> Decision | None:
    days = [c.day for c in candidates if c.day is not None]
    if session is None:
        from truckroll.db import session_scope

        with session_scope() as own:
            return _repair(job, candidates, travel=travel, rules=rules, overrides=overrides, session=own, tz=tz)
    cache: dict[int, JobRequirements | None] = {}

    def requirements(request_id: int) -> JobRequirements | None:
        if request_id not in cache:
            try:
                cache[request_id] = store.requirements_of(request_id, session=session, tz=tz)
            except (store.NotFound, ValueError):
                cache[request_id] = None
        return cache[request_id]

    plan = engine_repair.repair(job, days, candidates, requirements, travel, rules,
                                budget_seconds=rules.repair_budget_seconds, overrides=overrides)
    if plan is None:
        return None
    decision = plan.decision
    giver = decision.chosen
    assert giver is not None
    # The record lists everyone the decision considered; the giver's candidacy is the repaired one.
    decision.candidates = [giver if c.technician_id == giver.technician_id else c for c in candidates]
    log.info("request %s placed by a repair: %s (%d moves tried in %.3f s)", job.request_id,
             ", ".join(f"#{m.request_id} from {m.from_technician} to {m.to_technician}" for m in plan.moves),
             plan.tried, plan.elapsed_seconds)
    return decision


def decide(job: JobRequirements, days: list[TechnicianDay], *, travel: TravelTimeProvider, rules: DispatchSettings,
           tz: str, overrides: frozenset[str] = frozenset(), session: Session | None = None,
           repair: bool = True) -> Decision:
    """Steps 4 and 5 on loaded data: ``choose(evaluate(...))``."""
    return choose(job, evaluate(job, days, travel=travel, rules=rules, overrides=overrides), rules=rules,
                  overrides=overrides, travel=travel, session=session, repair=repair, tz=tz)


def decide_request(request_id: int, *, session: Session, travel: TravelTimeProvider, rules: DispatchSettings,
                   tz: str, technician_ids: Iterable[int] | None = None, overrides: frozenset[str] = frozenset(),
                   repair: bool = True) -> tuple[Loaded, Decision]:
    """The whole decision for a stored request: load -> evaluate -> choose (among ``technician_ids`` when
    given). Returns what was loaded and the decision."""
    loaded = load(request_id, session=session, travel=travel, tz=tz, technician_ids=technician_ids)
    return loaded, decide(loaded.job, loaded.days, travel=travel, rules=rules, overrides=overrides,
                          session=session, repair=repair, tz=tz)

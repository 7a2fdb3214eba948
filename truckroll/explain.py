"""Why (not) a technician for a request: the engine's reasons, from the database, for the API and the CLI."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from engine.config import DispatchSettings
from engine.dispatch import choose, evaluate_candidates
from engine.travel import TravelTimeProvider
from truckroll import store


def why_not(request_id: int, technician_id: int, *, session: Session, travel: TravelTimeProvider,
            rules: DispatchSettings) -> dict[str, Any]:
    """Every reason the technician cannot take the request now, in a dispatcher's words, as the decision would
    give them (qualification, territory and radius, availability, visiting and closed hours, threshold, route).

    Returns
    -------
    dict
        {request_id, technician_id, technician, territory, boundary_mode, eligible, boundary, reasons}.

    Raises
    ------
    store.NotFound
        For an unknown request or technician.
    """
    tech = store.get_technician(technician_id, session=session)
    job = store.requirements_of(request_id, session=session)
    start, end = store.job_horizon(job)
    days = store.technician_days(session=session, start=start, end=end, technician_ids=[technician_id])
    out: dict[str, Any] = {
        "request_id": request_id, "technician_id": technician_id, "technician": tech.name,
        "territory": job.rules.territory_name if job.rules and job.rules.territory_name else None,
        "boundary_mode": job.rules.boundary if job.rules and job.rules.territory_id else None,
    }
    if not days:
        return out | {"eligible": False, "boundary": None, "reasons": ["no shift covers the window"]}
    candidates = evaluate_candidates(job, days, travel, rules)
    decision = choose(job, candidates, rules)
    cand = candidates[0]
    eligible = decision.chosen is not None
    reasons = [] if eligible else cand.reasons
    if eligible and decision.displaced:
        reasons = ["only by displacing " + ", ".join(f"#{s.request_id}" for s in decision.displaced)]
    return out | {"eligible": eligible, "boundary": (decision.boundary if eligible else cand.boundary) or None,
                  "reasons": reasons}

"""Why (not) a technician for a request: the full decision among every technician
(``truckroll.dispatch.decision``), read
for one of them, for the API and the CLI. It names the rule that rules the technician out, or the technician
who won and by how much on which score components."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from engine.config import DispatchSettings
from engine.dispatch.decision import score_gap
from engine.travel import TravelTimeProvider
from truckroll import store
from truckroll.dispatch import decision as one_decision


def why_not(request_id: int, technician_id: int, *, session: Session, travel: TravelTimeProvider,
            rules: DispatchSettings, tz: str) -> dict[str, Any]:
    """Every reason the technician would not get the request now, in a dispatcher's words, from the same
    decision the dispatch makes (qualification, territory and radius, availability, visiting and closed hours,
    threshold, route; or the better candidate).

    Returns
    -------
    dict
        {request_id, technician_id, technician, territory, boundary_mode, eligible (could take it), chosen
        (would get it), boundary, reasons, winner ({technician_id, name, score} or None), score_gap
        ({component: weighted points the winner is ahead by}), escalation_reason}.

    Raises
    ------
    store.NotFound
        For an unknown request or technician.
    """
    tech = store.get_technician(technician_id, session=session)
    loaded, decision = one_decision.decide_request(request_id, session=session, travel=travel, rules=rules, tz=tz)
    return _explain(request_id, technician_id, tech.name, loaded, decision, rules)


def ranking(request_id: int, *, session: Session, travel: TravelTimeProvider,
            rules: DispatchSettings, tz: str) -> list[dict[str, Any]]:
    """Why (not) every active technician, from one decision: the one who would get the request first, then
    those who could take it by score (best first), then those ruled out; each as ``why_not`` answers it, with
    ``score`` (the candidate's total, or None)."""
    from sqlmodel import col, select

    from models import Technician

    loaded, decision = one_decision.decide_request(request_id, session=session, travel=travel, rules=rules, tz=tz)
    techs = session.exec(select(Technician).where(col(Technician.active).is_(True)).order_by(col(Technician.id)))
    scores = {c.technician_id: (round(c.score.total, 3) if c.score else None) for c in decision.candidates}
    rows = [_explain(request_id, t.id, t.name, loaded, decision, rules) | {"score": scores.get(t.id)}
            for t in techs if t.id is not None]

    def rank(row: dict[str, Any]) -> tuple[int, float, int]:
        group = 0 if row["chosen"] else 1 if row["eligible"] else 2
        return group, -(row["score"] if row["score"] is not None else float("-inf")), row["technician_id"]

    return sorted(rows, key=rank)


def _explain(request_id: int, technician_id: int, tech_name: str, loaded: one_decision.Loaded, decision: Any,
             rules: DispatchSettings) -> dict[str, Any]:
    job = loaded.job
    out: dict[str, Any] = {
        "request_id": request_id, "technician_id": technician_id, "technician": tech_name,
        "territory": job.rules.territory_name if job.rules and job.rules.territory_name else None,
        "boundary_mode": job.rules.boundary if job.rules and job.rules.territory_id else None,
        "winner": None, "score_gap": {}, "escalation_reason": decision.escalation_reason,
    }
    cand = next((c for c in decision.candidates if c.technician_id == technician_id), None)
    if cand is None:
        return out | {"eligible": False, "chosen": False, "boundary": None,
                      "reasons": ["no shift covers the window"]}
    chosen = decision.chosen
    if chosen is not None and chosen.technician_id == technician_id:
        reasons = []
        if decision.displaced:
            reasons.append("only by displacing " + ", ".join(f"#{s.request_id}" for s in decision.displaced))
        if decision.relaxation:
            reasons.append(decision.relaxation)
        return out | {"eligible": True, "chosen": True, "boundary": decision.boundary, "reasons": reasons}
    if chosen is not None:
        out["winner"] = {"technician_id": chosen.technician_id, "name": chosen.name,
                         "score": round(chosen.score.total, 3) if chosen.score else None}
    if not cand.eligible or chosen is None:
        return out | {"eligible": False, "chosen": False, "boundary": cand.boundary or None,
                      "reasons": list(cand.reasons)}
    # Could take it, but someone else won: by how much, on which components.
    gap = score_gap(chosen, cand, rules)
    out["score_gap"] = {name: round(d, 3) for name, d in gap}
    if chosen.score is not None and cand.score is not None:
        ahead = ", ".join(f"{name} {d:+.3f}" for name, d in gap if d > 0) or "no component"
        reasons = [f"{chosen.name} won: score {chosen.score.total:.3f} against {cand.score.total:.3f} "
                   f"(ahead by {chosen.score.total - cand.score.total:.3f}; ahead on {ahead})"]
    else:
        reasons = [f"{chosen.name} won: " + "; ".join(cand.reasons)] if cand.reasons else [f"{chosen.name} won"]
    return out | {"eligible": True, "chosen": False, "boundary": cand.boundary or None, "reasons": reasons}

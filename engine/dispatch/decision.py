"""Steps 3 to 5 on plain data: eligibility, the capacity threshold, insertion, scoring and the choice."""

from __future__ import annotations

from engine.config import DispatchSettings
from engine.dispatch.displacement import displacement_plan, may_displace
from engine.dispatch.eligibility import ineligibility_reasons, missing_parts
from engine.dispatch.insertion import apply_insertion, best_insertion, promised_window, utilisation
from engine.dispatch.scoring import score_candidate
from engine.rules.availability import on_date
from engine.rules.territories import territory_boundary
from engine.travel import TravelTimeProvider
from models.domain import Candidate, Decision, JobRequirements, Stop, TechnicianDay


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def evaluate_day(
    day: TechnicianDay, job: JobRequirements, travel: TravelTimeProvider, rules: DispatchSettings,
    overrides: frozenset[str] = frozenset(),
) -> Candidate:
    """Eligibility, capacity threshold and cheapest feasible insertion for one technician shift.

    ``overrides``: rules a dispatcher overrode (``engine.dispatch.eligibility.OVERRIDABLE_RULES``).
    """
    cand = Candidate(day.technician_id, day.name, eligible=False, day=day)
    cand.reasons = ineligibility_reasons(day, job, parts_policy=rules.missing_parts_policy, travel=travel,
                                         overrides=overrides)
    if cand.reasons:
        cand.rejected_at = "qualification"
        return cand
    if "territory" not in overrides:
        cand.boundary, _ = territory_boundary(day.rules, job.rules,
                                              on_date(day, job.rules.timezone if job.rules else None))
    target = 1.0 if "utilisation" in overrides else rules.utilisation_target
    cand.utilisation = utilisation(day, travel)
    detour = _parts_detour(day, job, rules)
    if cand.utilisation >= target:
        cand.reasons.append(f"already at {_pct(cand.utilisation)} utilisation (target {_pct(target)})")
        cand.rejected_at = "threshold"
        return cand
    ins = best_insertion(day, job, travel, parts_detour_minutes=detour,
                         allow_broken_promises=rules.promised_window_policy == "notify")
    if ins is None:
        cand.reasons.append("no room in the route inside the customer's window")
        cand.rejected_at = "route"
        return cand
    cand.utilisation_after = cand.utilisation + (job.duration_minutes + ins.added_travel_minutes) / max(
        day.available_minutes, 1e-9)
    if rules.count_new_job_in_utilisation and cand.utilisation_after > target and "utilisation" not in overrides:
        cand.reasons.append(f"would exceed {_pct(target)} utilisation ({_pct(cand.utilisation_after)})")
        cand.rejected_at = "threshold"
        return cand
    cand.eligible = True
    cand.insertion = ins
    return cand


def _parts_detour(day: TechnicianDay, job: JobRequirements, rules: DispatchSettings) -> float:
    return rules.parts_detour_minutes if missing_parts(day, job) else 0.0


def _try_displacement(cand: Candidate, day: TechnicianDay, job: JobRequirements, travel: TravelTimeProvider,
                      rules: DispatchSettings, detour: float, overrides: frozenset[str] = frozenset()) -> Candidate:
    """For an emergency that does not fit: the displacement of less urgent work that would make room.

    The candidate stays ineligible; ``choose`` uses the plan only when nobody can take the job without one.
    The utilisation target still holds on the route after the displacement.
    """
    if not may_displace(job):
        return cand
    plan = displacement_plan(day, job, travel, parts_detour_minutes=detour,
                             allow_broken_promises=rules.promised_window_policy == "notify")
    if plan is None:
        return cand
    after = utilisation(plan.day, travel, job.duration_minutes + plan.insertion.added_travel_minutes)
    if rules.count_new_job_in_utilisation and after > rules.utilisation_target and "utilisation" not in overrides:
        return cand
    cand.day, cand.insertion, cand.displaced = plan.day, plan.insertion, plan.removed
    cand.utilisation_after = after
    cand.reasons.append("could take it by displacing " + ", ".join(
        f"#{s.request_id} (priority {s.priority})" for s in plan.removed))
    return cand


def _better_shift(a: Candidate, b: Candidate) -> bool:
    """Of two shifts of one technician, prefer the feasible one, then the earlier start."""
    if a.eligible != b.eligible:
        return a.eligible
    if a.insertion and b.insertion:
        return a.insertion.start < b.insertion.start
    return False


def escalation_reason(candidates: list[Candidate], rules: DispatchSettings) -> str:
    """Why nobody could take the job, as the escalation says it."""
    if not candidates:
        return "no technician is on shift in the customer's windows"
    qualified = [c for c in candidates if c.rejected_at in ("threshold", "route")]
    if not qualified:
        # When the job itself cannot be served (visiting hours, closed hours), every technician says so: say it.
        shared = [r for r in set.intersection(*(set(c.reasons) for c in candidates))
                  if r.startswith(("territory visited only", "the customer is closed"))]
        return f"no qualified technician ({shared[0]})" if shared else "no qualified technician"
    if all(c.rejected_at == "threshold" for c in qualified):
        return f"no qualified technician below the {_pct(rules.utilisation_target)} utilisation target"
    return "no qualified technician has room inside the customer's window"


def evaluate_candidates(
    job: JobRequirements, days: list[TechnicianDay], travel: TravelTimeProvider, rules: DispatchSettings,
    overrides: frozenset[str] = frozenset(),
) -> list[Candidate]:
    """Step 4: qualification, the capacity threshold and the cheapest feasible insertion, per technician.

    A technician with several shifts in the job's windows is one candidate: their best shift counts.
    """
    by_tech: dict[int, Candidate] = {}
    for day in days:
        cand = evaluate_day(day, job, travel, rules, overrides)
        prev = by_tech.get(cand.technician_id)
        if prev is None or _better_shift(cand, prev):
            by_tech[cand.technician_id] = cand
    candidates = list(by_tech.values())
    # Displacement is the last resort of an emergency, so it is searched only when nobody can take the job
    # without it (it costs a re-insertion per removable stop and candidate). Under "hard_then_soft" it is
    # searched when nobody inside the hard boundary can: displacing comes before relaxing the boundary.
    relaxing = _relaxation_mode(job)
    if may_displace(job) and not any(c.eligible and (not relaxing or c.boundary != "soft") for c in candidates):
        for c in candidates:
            if c.rejected_at in ("threshold", "route") and c.day is not None:
                _try_displacement(c, c.day, job, travel, rules, _parts_detour(c.day, job, rules), overrides)
    return candidates


def _relaxation_mode(job: JobRequirements) -> bool:
    return job.rules is not None and job.rules.boundary == "hard_then_soft"


def _boundary_tier(c: Candidate) -> int:
    return 1 if c.boundary == "soft" else 0


def _inside_hard_first(job: JobRequirements, cands: list[Candidate]) -> list[Candidate]:
    """Boundary relaxation: candidates inside their hard boundary (primary or relocation territory) first;
    those only inside a secondary (soft) territory count only when nobody inside the hard boundary can."""
    if not cands:
        return cands
    tier = min(_boundary_tier(c) for c in cands)
    for c in cands:
        if _boundary_tier(c) > tier:
            name = job.rules.territory_name if job.rules else "the territory"
            c.reasons = [f"{name} is only a secondary territory; someone with it as home territory can take it"]
    return [c for c in cands if _boundary_tier(c) == tier]


def _displacement_choice(job: JobRequirements, candidates: list[Candidate]) -> list[Candidate]:
    """Step 5 for an emergency nobody can fit: the candidate whose displacement harms least (fewest stops,
    the least urgent ones, then the least added travel) becomes the only feasible one."""
    if not may_displace(job):
        return []
    plans = _inside_hard_first(job, [c for c in candidates if c.displaced and c.insertion is not None
                                     and not c.eligible])
    if not plans:
        return []
    best = min(plans, key=lambda c: (len(c.displaced), -min(s.priority for s in c.displaced),
                                     c.insertion.added_travel_minutes if c.insertion else 0.0, c.technician_id))
    best.eligible, best.rejected_at = True, ""
    best.reasons = []
    return [best]


def choose(job: JobRequirements, candidates: list[Candidate], rules: DispatchSettings) -> Decision:
    """Step 5: score the eligible candidates and choose the best; escalate when there is none.

    Boundaries relax in order: inside the hard boundary, then the soft one (when the day's policy allows),
    then, for an emergency, displacing less urgent work, then escalation.
    """
    relaxation = None
    if _relaxation_mode(job):
        # Hard, then displacement inside the hard boundary, and only then the secondaries (recorded).
        inside = [c for c in candidates if c.boundary != "soft"]
        feasible = [c for c in inside if c.eligible] or _displacement_choice(job, inside)
        if not feasible:
            feasible = ([c for c in candidates if c.eligible and c.boundary == "soft"]
                        or _displacement_choice(job, [c for c in candidates if c.boundary == "soft"]))
            if feasible:
                name = job.rules.territory_name if job.rules else "the territory"
                relaxation = (f"hard boundary relaxed: nobody with {name} as home territory could take it, so "
                              f"technicians with it as a secondary territory were considered")
        else:
            for c in candidates:
                if c.boundary == "soft" and c.eligible:
                    name = job.rules.territory_name if job.rules else "the territory"
                    c.reasons = [f"{name} is only a secondary territory; someone with it as home territory "
                                 f"can take it"]
    else:
        feasible = (_inside_hard_first(job, [c for c in candidates if c.eligible])
                    or _displacement_choice(job, candidates))
    if not feasible:
        return Decision(job.request_id, None, candidates, escalation_reason=escalation_reason(candidates, rules))
    best_value = max(job.estimated_value * c.day.upsell_multiplier for c in feasible if c.day)
    for c in feasible:
        assert c.day is not None and c.insertion is not None
        c.score = score_candidate(
            c.day, job, c.insertion, utilisation_before=c.utilisation, utilisation_after=c.utilisation_after,
            best_expected_value=best_value, weights=rules.weights,
            travel_reference_minutes=rules.travel_reference_minutes,
        )
    feasible.sort(key=lambda c: (-(c.score.total if c.score else 0.0), c.technician_id))
    chosen = feasible[0]
    assert chosen.insertion is not None and chosen.score is not None
    for c in feasible[1:]:
        if c.score:
            c.reasons = [f"scored {c.score.total:.3f} against {chosen.score.total:.3f} for {chosen.name}"]
    window = promised_window(chosen.insertion.start, chosen.insertion.customer_window,
                             rules.arrival_window_minutes, rules.arrival_window_rounding_minutes)
    return Decision(job.request_id, chosen, candidates, arrival_window=window, boundary=chosen.boundary or None,
                    displaced=list(chosen.displaced), relaxation=relaxation)


def score_gap(chosen: Candidate, other: Candidate, rules: DispatchSettings) -> list[tuple[str, float]]:
    """How much ``other`` lost to ``chosen`` by, per weighted score component, largest loss first.

    Returns (component, weighted difference chosen - other) for the components where they differ.
    """
    if chosen.score is None or other.score is None:
        return []
    w = rules.weights
    parts = [(name, getattr(w, name) * (getattr(chosen.score, name) - getattr(other.score, name)))
             for name in ("travel", "skill", "workload", "preference", "value")]
    return sorted(((n, d) for n, d in parts if abs(d) >= 0.0005), key=lambda x: -x[1])


def decide(
    job: JobRequirements, days: list[TechnicianDay], travel: TravelTimeProvider, rules: DispatchSettings,
    overrides: frozenset[str] = frozenset(),
) -> Decision:
    """Steps 4 and 5: choose the best technician and time for the job, or escalate when nobody can.

    Parameters
    ----------
    job:
        The analysed request (step 2).
    days:
        The shifts of the technicians that overlap the job's windows, with their current routes (step 3).
    travel:
        Minutes between places.
    rules:
        Threshold, scoring weights and policies.
    overrides:
        Rules a dispatcher overrode on resolving an escalation (``engine.dispatch.eligibility.OVERRIDABLE_RULES``).

    Returns
    -------
    Decision
        ``chosen`` is None when the request must go to a dispatcher; ``escalation_reason`` says why and each
        candidate carries its reasons.
    """
    decision = choose(job, evaluate_candidates(job, days, travel, rules, overrides), rules)
    decision.overrides = frozenset(overrides)
    return decision


def apply_decision(decision: Decision, job: JobRequirements, travel: TravelTimeProvider) -> Stop:
    """The route update: insert the chosen job into the chosen technician's route (in place)."""
    if decision.chosen is None or decision.chosen.insertion is None or decision.chosen.day is None:
        raise ValueError(f"request {decision.request_id} has no chosen technician to apply")
    assert decision.arrival_window is not None
    # A displacement plan's day is already the route without the displaced stops.
    return apply_insertion(decision.chosen.day, job, decision.chosen.insertion, decision.arrival_window, travel)

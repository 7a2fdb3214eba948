"""The engine's rules, as plain validated data (read from the environment by truckroll.settings)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ScoringWeights(BaseModel):
    """Weights of the candidate score; each component is normalised to 0..1 before weighting.

    travel: 1 - added travel minutes / ``travel_reference_minutes`` (closer is better).
    skill: mean of the technician's level over the required level, capped at 1, for each required skill.
    workload: 1 - the technician's utilisation after the job (spreads work).
    preference: 1 for the customer's preferred technician, 0.5 otherwise (excluded ones are ineligible).
    value: expected value (estimated value x upsell multiplier) over the best candidate's.
    """

    travel: float = 0.35
    skill: float = 0.15
    workload: float = 0.20
    preference: float = 0.10
    value: float = 0.20


class DispatchSettings(BaseModel):
    """Rules of the per-request decision."""

    utilisation_target: float = Field(0.85, gt=0, le=1.0)
    # True: the candidate's utilisation *with* the new job must stay at or under the target.
    # False: only technicians already under the target may take it (the job may take them over).
    count_new_job_in_utilisation: bool = True
    arrival_window_minutes: int = Field(120, ge=30)
    arrival_window_rounding_minutes: int = Field(30, ge=1)
    travel_reference_minutes: float = Field(60.0, gt=0)
    # Parts the van does not carry: "detour" adds a trip to the nearest depot, "ineligible" rules it out.
    missing_parts_policy: str = Field("detour", pattern="^(detour|ineligible)$")
    parts_detour_minutes: float = Field(30.0, ge=0)
    # When an insertion would move another customer's arrival out of the window they were promised:
    # "reject" never chooses it; "notify" allows it and notifies that customer of the new window.
    promised_window_policy: str = Field("reject", pattern="^(reject|notify)$")
    weights: ScoringWeights = ScoringWeights()
    # An expired certification stays a hard rule even for a dispatcher resolving an escalation, unless this
    # allows overriding it (with a recorded reason).
    allow_expired_certification_override: bool = False
    # Wall time of the bounded repair (moving one job not yet under way to another technician, inside its
    # promised window) tried before escalating; 0 turns it off.
    repair_budget_seconds: float = Field(1.0, ge=0, le=30)

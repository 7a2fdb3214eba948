"""Step 5: score the candidates that can take the job, with a breakdown the dispatcher can read."""

from __future__ import annotations

from engine.config import ScoringWeights
from models.domain import Insertion, JobRequirements, ScoreBreakdown, TechnicianDay


def skill_match(day: TechnicianDay, job: JobRequirements) -> float:
    """Mean over the required skills of the technician's level over the required level, capped at 1.

    A job with no required skill matches everybody fully.
    """
    if not job.required_skills:
        return 1.0
    return sum(min(1.0, day.skills.get(s, 0) / max(lvl, 1)) for s, lvl in job.required_skills.items()) / len(
        job.required_skills
    )


def score_candidate(
    day: TechnicianDay,
    job: JobRequirements,
    insertion: Insertion,
    *,
    utilisation_before: float,
    utilisation_after: float,
    best_expected_value: float,
    weights: ScoringWeights,
    travel_reference_minutes: float,
) -> ScoreBreakdown:
    """Weighted score of one candidate; every component lies in 0..1 (see ``ScoringWeights``)."""
    travel = max(0.0, 1.0 - max(insertion.added_travel_minutes, 0.0) / travel_reference_minutes)
    skill = skill_match(day, job)
    workload = max(0.0, 1.0 - utilisation_after)
    preference = 1.0 if day.technician_id in job.preferred_technician_ids else 0.5
    expected = job.estimated_value * day.upsell_multiplier
    value = expected / best_expected_value if best_expected_value > 0 else 1.0
    total = (weights.travel * travel + weights.skill * skill + weights.workload * workload
             + weights.preference * preference + weights.value * value)
    return ScoreBreakdown(
        travel=travel, skill=skill, workload=workload, preference=preference, value=value, total=total,
        added_travel_minutes=insertion.added_travel_minutes, utilisation_before=utilisation_before,
        utilisation_after=utilisation_after, expected_value=expected,
    )

"""Step 3: which technicians may do a job at all, and why not, in a dispatcher's words."""

from __future__ import annotations

from engine.rules.availability import absence_reasons, effective_windows, on_date, window_reasons
from engine.rules.territories import radius_reasons, territory_boundary
from engine.travel import TravelTimeProvider
from models.domain import JobRequirements, TechnicianDay


def missing_parts(day: TechnicianDay, job: JobRequirements) -> dict[str, int]:
    """Parts the job needs that the van does not carry enough of (part -> quantity short)."""
    return {
        part: qty - day.van_inventory.get(part, 0)
        for part, qty in job.parts_needed.items()
        if day.van_inventory.get(part, 0) < qty
    }


# Rules a dispatcher may override when resolving an escalation (see truckroll.dispatch.manual): the territory boundary,
# the utilisation target, a skill level below the required one, and (only when a setting allows it) an expired
# certification. A missing skill or certification, the shift, absences and the customer's hours never yield.
OVERRIDABLE_RULES = ("territory", "utilisation", "skill_level", "expired_certification")


def ineligibility_reasons(day: TechnicianDay, job: JobRequirements, *, parts_policy: str = "detour",
                          travel: TravelTimeProvider | None = None,
                          overrides: frozenset[str] = frozenset()) -> list[str]:
    """Every reason this technician's shift cannot take the job, before looking at the route.

    Parameters
    ----------
    overrides:
        Rules a dispatcher overrode (of ``OVERRIDABLE_RULES``): their reasons are not given.

    Returns
    -------
    list[str]
        Empty when eligible. Certifications must be valid on the day of the shift; territory, radius,
        absences, visiting hours and closed hours apply when the day and the job carry rules
        (``travel`` is needed only for a radius in minutes).
    """
    reasons: list[str] = []
    if not day.active:
        reasons.append("technician is inactive")
    if day.technician_id in job.excluded_technician_ids:
        reasons.append("excluded by the customer")
    if day.max_priority is not None and job.priority > day.max_priority:
        reasons.append(f"on-call shift takes only priority {day.max_priority} or more urgent (job is {job.priority})")
    for skill, level in sorted(job.required_skills.items()):
        have = day.skills.get(skill, 0)
        if have == 0:
            reasons.append(f"no {skill} skill")
        elif have < level and "skill_level" not in overrides:
            reasons.append(f"{skill} level {have} below the required {level}")
    shift_day = day.shift_start.date()
    for cert in job.required_certifications:
        expiry = day.certifications.get(cert)
        if expiry is None:
            reasons.append(f"no {cert} certification")
        elif expiry < shift_day and "expired_certification" not in overrides:
            reasons.append(f"no {cert} certification (expired {expiry.isoformat()})")
    if parts_policy == "ineligible":
        short = missing_parts(day, job)
        if short:
            reasons.append("van lacks " + ", ".join(f"{q} x {p}" for p, q in sorted(short.items())))
    job_tz = job.rules.timezone if job.rules else None
    on = on_date(day, job_tz)
    if "territory" not in overrides:
        reasons += territory_boundary(day.rules, job.rules, on)[1]
    reasons += radius_reasons(day.rules, job.rules, job.location, on, travel)
    blocked = window_reasons(job)
    reasons += blocked
    windows = effective_windows(job) if not blocked else job.windows
    if not any(w.start < day.shift_end and w.end > day.shift_start for w in windows):
        reasons.append("no shift covers the window")
    elif not blocked:
        reasons += absence_reasons(day, windows)
    return reasons

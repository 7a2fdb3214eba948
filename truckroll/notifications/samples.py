"""Sample data for every notification template (``truckroll notifications preview``, tests)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from models import StopChange, TimeWindow

TEMPLATES = ("customer_arrival_window", "customer_eta_update",
             "customer_reschedule", "customer_dispatch_will_call", "technician_job_card", "dispatch_summary",
             "escalation_alert")


def sample_context(template: str, tz: str = "America/Chicago", company_name: str = "Lone Star Home Services",
                   **overrides: Any) -> dict[str, Any]:
    """A realistic context for ``template``; ``overrides`` replace any value (e.g. ``customer_name``).

    Raises
    ------
    ValueError
        For a template name that is not one of ``TEMPLATES``.
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; one of: {', '.join(TEMPLATES)}")
    z = ZoneInfo(tz)
    day = datetime(2030, 1, 7, tzinfo=z)
    ws, we = day.replace(hour=10), day.replace(hour=12)
    start, end = day.replace(hour=10, minute=40), day.replace(hour=11, minute=40)
    base: dict[str, Any] = dict(
        request_id=1042, tz=tz, company_name=company_name, customer_name="Dana Reyes",
        address="100 Main St, Dallas, TX 75201", job_type="leak repair", description="kitchen sink drips",
        technician_name="Ana Flores", window_start=ws, window_end=we, start=start, end=end, priority=3)
    extra: dict[str, dict[str, Any]] = {
        "customer_arrival_window": {},
        "customer_eta_update": dict(eta=day.replace(hour=11, minute=25), reason="the previous job ran long"),
        "customer_reschedule": dict(old_window_start=day.replace(hour=8), old_window_end=day.replace(hour=10),
                                    reason="an urgent job (#1040) was added before yours"),
        "customer_dispatch_will_call": dict(old_window_start=day.replace(hour=8), old_window_end=day.replace(hour=10),
                                            reason="an emergency (#1040) needed your technician"),
        "technician_job_card": dict(
            lat=32.78014, lon=-96.80045, customer_phone="+1-469-555-0100", parts={"p-trap": 1, "teflon tape": 2},
            missing_parts={"p-trap": 1}, notes="Dog in the yard; gate code 4417.",
            route=[dict(request_id=1031, start=day.replace(hour=8, minute=15), end=day.replace(hour=9, minute=30)),
                   dict(request_id=1042, start=start, end=end),
                   dict(request_id=1037, start=day.replace(hour=13), end=day.replace(hour=14, minute=30))]),
        "dispatch_summary": dict(
            channel="portal", added_travel_minutes=14.2, utilisation_before=0.55, utilisation_after=0.68,
            score_total=0.812, candidates=25, eligible=7,
            moved=[StopChange(request_id=1037, old_start=day.replace(hour=12, minute=30),
                              new_start=day.replace(hour=13), new_end=day.replace(hour=14, minute=30),
                              window=TimeWindow(day.replace(hour=12), day.replace(hour=14)), breaks_promise=False)]),
        "escalation_alert": dict(
            reason="no qualified technician has room before the window closes", escalation_id=77,
            why_not=[("Ana Flores", ["utilisation 92% is over the 85% target"]),
                     ("Ben Ortiz", ["missing certification: gas-safe"])]),
    }
    ctx = base | extra[template]
    if template == "escalation_alert":
        # The dispatch flow renders the alert without the company name; the sample does the same.
        del ctx["company_name"]
    ctx.update(overrides)
    return ctx

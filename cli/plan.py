"""Plan pictures: a map of the day's routes and a timeline per technician."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.app import app, console, fail

plan_app = typer.Typer(help="Pictures of a day's plan.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")


@plan_app.command("show")
def plan_show(day: str = typer.Option(..., "--date", help="The day, YYYY-MM-DD, in the company's time zone."),
              html: Path = typer.Option(Path("plan.html"), "--html", help="Where to write the page."),
              leaflet: bool = typer.Option(False, help="Add a Leaflet street map too (the viewer needs internet).")
              ) -> None:
    """Write an HTML page with every technician's route on a map and a timeline of jobs, travel and idle time."""
    from datetime import date

    from truckroll.db import init_db
    from truckroll.reports.plan import write_plan

    try:
        d = date.fromisoformat(day)
    except ValueError:
        raise fail(f"--date must be YYYY-MM-DD (got {day!r})") from None
    from truckroll.settings import get_settings

    init_db()
    plan = write_plan(d, html, settings=get_settings(), leaflet=leaflet)
    jobs = sum(len(t.jobs) for t in plan.technicians)
    console.print(f"wrote {html} ({len(plan.technicians)} technicians, {jobs} jobs, "
                  f"average utilisation {plan.metrics.get('average_utilisation', 0):.0%})")

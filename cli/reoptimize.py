"""``truckroll reoptimize``: re-plan a day now, or serve the flow on its schedule."""

from __future__ import annotations

import json
from typing import Any

import typer

from bench import reoptimize as _bench_reoptimize  # noqa: F401  (registers `truckroll bench reoptimize`)
from cli.app import app, console, fail

reoptimize_app = typer.Typer(help="Daily re-optimisation of the routes.", invoke_without_command=True)
app.add_typer(reoptimize_app, name="reoptimize")


def reoptimize_schedules() -> list[Any]:
    """The cron from the settings in the company's time zone, plus the in-day interval when one is set."""
    from prefect.schedules import Cron, Interval

    from truckroll.settings import get_settings

    s = get_settings()
    schedules = [Cron(s.reoptimize_cron, timezone=s.company_timezone)]
    if s.reoptimize_interval_minutes:
        schedules.append(Interval(s.reoptimize_interval_minutes * 60, timezone=s.company_timezone))
    return schedules


@reoptimize_app.callback()
def reoptimize(ctx: typer.Context,
               day: str | None = typer.Option(None, "--date", help="YYYY-MM-DD (default: today, company time)."),
               time_limit: float | None = typer.Option(None, "--time-limit", help="CBC time limit in seconds."),
               mip_gap: float | None = typer.Option(None, "--mip-gap", help="Relative MIP gap CBC may stop at."),
               allow_window_changes: bool | None = typer.Option(
                   None, "--allow-window-changes/--keep-windows",
                   help="Let visits leave their promised windows (re-promised and notified)."),
               no_rescue: bool = typer.Option(False, "--no-rescue", help="Leave escalated requests out."),
               dry_run: bool = typer.Option(False, "--dry-run", help="Compare only; write nothing."),
               horizon_days: int | None = typer.Option(
                   None, "--horizon-days", help="Days re-planned together (default: today + 2 working days)."),
               as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON.")) -> None:
    """Re-optimise a day's routes through the reoptimize-day flow (applied only if strictly better)."""
    if ctx.invoked_subcommand is not None:
        return
    from datetime import date

    if day is not None:
        try:
            date.fromisoformat(day)
        except ValueError:
            raise fail(f"--date must be YYYY-MM-DD (got {day!r})") from None
    if time_limit is not None and not time_limit > 0:
        raise fail(f"--time-limit must be > 0 (got {time_limit})")
    from flows.reoptimize import reoptimize_day
    from truckroll.db import init_db
    from truckroll.reoptimize.day import HorizonTooLong, horizon_dates
    from truckroll.settings import get_settings

    s = get_settings()
    try:
        horizon_dates(date.today(), s.reoptimize_horizon_days if horizon_days is None else horizon_days,
                      maximum=s.reoptimize_max_horizon_days)
    except HorizonTooLong as exc:
        raise fail(str(exc)) from None
    init_db()
    state: Any = reoptimize_day(day=day, time_limit_seconds=time_limit or s.reoptimize_time_limit_seconds,
                                mip_gap=s.reoptimize_mip_gap if mip_gap is None else mip_gap,
                                rescue_escalations=s.reoptimize_rescue_escalations and not no_rescue,
                                allow_window_changes=allow_window_changes, dry_run=dry_run,
                                horizon_days=horizon_days, return_state=True)
    out = state.result(raise_on_failure=False)
    if not isinstance(out, dict):
        raise fail(f"re-optimisation failed: {state.message or out}")
    if as_json:
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    from rich.table import Table

    t = Table(title=f"Re-optimisation of {out['day']}: {state.name}")
    for c in ("measure", "before", "proposed"):
        t.add_column(c, justify="left" if c == "measure" else "right")
    for k, b in out["before"].items():
        a = out["after"][k]
        f = (lambda v: f"{v:.1%}") if "utilisation" in k else (lambda v: f"{v:,.1f}")
        t.add_row(k, f(b), f(a))
    console.print(t)
    console.print(state.message)
    console.print(f"notifications queued: {out['notifications']}, escalations: {len(out['escalations'])}")
    for conflict in out.get("conflicts", []):
        console.print(f"[bold yellow]pinned visit cannot be kept:[/] {conflict}")


@reoptimize_app.command("serve")
def serve() -> None:
    """Serve the reoptimize-day flow on the schedule from the settings (TRUCKROLL_REOPTIMIZE_CRON,
    TRUCKROLL_REOPTIMIZE_INTERVAL_MINUTES), without a work pool."""
    from flows.reoptimize import reoptimize_day

    reoptimize_day.serve(name="reoptimize", schedules=reoptimize_schedules(), tags=["truckroll", "reoptimize"])

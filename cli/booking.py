"""Booking commands: availability, capacity, simulate, and ``bench availability``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cli.app import app, bench_app, console, fail, read_json_file


def _print_errors(exc: Any) -> None:
    for e in exc.errors:
        console.print(f"[red]invalid[/] {e.field}: {e.message}")


@app.command()
def availability(file: Path = typer.Option(..., "--file", help="A JSON prospective job (see docs/booking.md)."),
                 as_json: bool = typer.Option(False, "--json", help="Print the full JSON answer.")) -> None:
    """The bookable arrival windows for a prospective job, graded 0-100 with their reasons."""
    payload = read_json_file(file)
    from models.schemas import RequestValidationError
    from truckroll.booking import windows as booking
    from truckroll.db import init_db
    from truckroll.settings import get_settings

    init_db()
    try:
        answer = booking.availability_for(payload, settings=get_settings())
    except RequestValidationError as exc:
        _print_errors(exc)
        raise fail("job refused") from None
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    offered = {o["start"] for o in answer["offered"]}
    t = Table(title="Bookable windows")
    for c in ("window", "grade", "offered", "technician", "free", "displaced", "reasons"):
        t.add_column(c)
    for o in answer["options"]:
        t.add_row(f"{o['start'][:16]}-{o['end'][11:16]}", str(o["grade"]), "yes" if o["start"] in offered else "",
                  o["technician"], str(o["free_technicians"]), f"${o['displaced_value']:,.0f}",
                  "\n".join(o["reasons"]))
    console.print(t)
    if answer["reason"]:
        console.print(answer["reason"])


@app.command()
def capacity(day: str = typer.Option(..., "--date", help="YYYY-MM-DD in the company's time zone."),
             skill: str | None = typer.Option(None, help="Only technicians with this skill."),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """Per arrival window: the share of technician time already booked and the technicians still free."""
    from datetime import date

    try:
        d = date.fromisoformat(day)
    except ValueError:
        raise fail(f"--date must be YYYY-MM-DD (got {day!r})") from None
    from models.schemas import RequestValidationError
    from truckroll.booking import windows as booking
    from truckroll.db import init_db
    from truckroll.settings import get_settings

    init_db()
    try:
        rows = booking.capacity(d, skill=skill, settings=get_settings())
    except RequestValidationError as exc:
        _print_errors(exc)
        raise fail("refused") from None
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    t = Table(title=f"Capacity on {d.isoformat()}" + (f" ({skill})" if skill else ""))
    for c in ("window", "technicians", "free", "booked", "free units", "per skill (free/on shift)"):
        t.add_column(c)
    for r in rows:
        per = ", ".join(f"{s} {v['free_technicians']}/{v['technicians']}" for s, v in r["by_skill"].items())
        t.add_row(r["window"], str(r["technicians"]), str(r["free_technicians"]), f"{r['booked_share']:.0%}",
                  str(r["free_units"]), per)
    console.print(t)


@app.command()
def simulate(days: int = typer.Option(30, min=1, max=120, help="Service days to replay."),
             policy: str = typer.Option("both", help="first-available | value-aware | both"),
             seed: int = typer.Option(1, help="Seed of the company and the booking stream."),
             technicians: int = typer.Option(12, min=1),
             per_day: float = typer.Option(60.0, help="Mean booking requests per service day."),
             order: str = typer.Option("earliest", help="value-aware offer order: earliest | grade"),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """Replay a seeded stream of booking requests under each policy (in memory) and compare them."""
    from demo.simulate import simulate as run
    from engine.booking.windows import POLICIES, BookingSettings

    if policy not in (*POLICIES, "both"):
        raise fail(f"--policy must be first-available, value-aware or both (got {policy!r})")
    if order not in ("earliest", "grade"):
        raise fail(f"--order must be earliest or grade (got {order!r})")
    policies = POLICIES if policy == "both" else (policy,)
    out = run(days=days, policies=policies, seed=seed, technicians=technicians, per_day=per_day,
              settings=BookingSettings(horizon_days=4, value_aware_order=order))
    if as_json:
        typer.echo(json.dumps(out, indent=2, default=float))
        return
    res = out["results"]
    t = Table(title=f"Booking simulation: {days} days, {technicians} technicians, seed {seed}, "
                    f"{out['requests']} requests")
    t.add_column("metric")
    for r in res:
        t.add_column(r["policy"], justify="right")
    rows = [("booked", "{:.0f}", "booked"), ("revenue", "${:,.0f}", "revenue"),
            ("revenue x upsell multiplier", "${:,.0f}", "revenue_with_upsell"),
            ("high-value booked / requested", None, None), ("lost: no window", "{:.0f}", "lost_no_window"),
            ("lost: refused the offers", "{:.0f}", "lost_refused"), ("escalations", "{:.0f}", "escalations"),
            ("utilisation", "{:.1%}", "utilisation"), ("travel per job", "{:.1f} min", "travel_per_job_minutes"),
            ("jobs per technician per day", "{:.2f}", "jobs_per_technician_day"),
            ("booked by window 08/10/12/14/16", None, None), ("seconds", "{:.1f}", "seconds")]
    for label, fmt, key in rows:
        if key is None and label.startswith("high"):
            t.add_row(label, *[f"{r['high_value_booked']} / {r['high_value_requests']}" for r in res])
        elif key is None:
            t.add_row(label, *["/".join(str(x) for x in r["booked_by_window"]) for r in res])
        else:
            assert fmt is not None
            t.add_row(label, *[fmt.format(r[key]) for r in res])
    console.print(t)


@bench_app.command("availability")
def bench_availability(repeats: int = typer.Option(20, min=1), technicians: int = typer.Option(25, min=1),
                       booked_per_day: int = typer.Option(80, min=0), seed: int = typer.Option(1)) -> None:
    """Time one availability answer (7 days x 5 windows) on a loaded in-memory company."""
    from bench.availability import run

    typer.echo(json.dumps(run(repeats=repeats, technicians=technicians, booked_per_day=booked_per_day, seed=seed),
                          indent=2))

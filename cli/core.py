"""Core commands: demo, request, schedule, metrics."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from bench import dispatch as _bench_dispatch  # noqa: F401  (registers `truckroll bench dispatch`)
from cli.app import app, cli_command, console, fail, prefect_server_defaults, read_json_file

request_app = typer.Typer(help="Service requests.", no_args_is_help=True)
schedule_app = typer.Typer(help="Technicians' schedules.", no_args_is_help=True)
app.add_typer(request_app, name="request")
app.add_typer(schedule_app, name="schedule")


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"--date must be YYYY-MM-DD (got {value!r})") from None


def _tz() -> ZoneInfo:
    from truckroll.settings import get_settings

    return ZoneInfo(get_settings().company_timezone)


def _init() -> None:
    from truckroll.db import init_db

    init_db()


def print_metrics(metrics: dict[str, float], title: str) -> None:
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("technicians on shift", f"{metrics['technicians']:.0f}")
    t.add_row("jobs scheduled", f"{metrics['jobs']:.0f}")
    t.add_row("average utilisation", f"{metrics['average_utilisation']:.1%}")
    t.add_row("jobs per technician", f"{metrics['jobs_per_technician']:.2f}")
    t.add_row("average travel between jobs", f"{metrics['average_travel_between_jobs_minutes']:.1f} min")
    t.add_row("travel per job (home legs included)", f"{metrics['travel_per_job_minutes']:.1f} min")
    t.add_row("revenue served", f"${metrics['revenue']:,.0f}")
    t.add_row("escalations", f"{metrics['escalations']:.0f}")
    console.print(t)


def compute_day_metrics(day: date) -> dict[str, float]:
    from truckroll.reports.plan import load_day_plan
    from truckroll.settings import get_settings

    return load_day_plan(day, get_settings()).metrics


@app.command()
def metrics(day: str = typer.Option(..., "--date", help="The day, YYYY-MM-DD, in the company's time zone."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Utilisation, jobs per technician, travel between jobs, revenue and escalations of a day."""
    d = _parse_day(day)
    _init()
    m = compute_day_metrics(d)
    if as_json:
        typer.echo(json.dumps(m, indent=2))
    else:
        print_metrics(m, f"Metrics for {d.isoformat()}")


@request_app.command("create")
def request_create(file: Path = typer.Option(..., "--file", exists=False, help="A JSON service request."),
                   idempotency_key: str | None = typer.Option(None, "--idempotency-key"),
                   via: str = typer.Option("auto", "--via", help="auto: this process (reported to the Prefect "
                                                                 "server when PREFECT_API_URL is set); deployment: "
                                                                 "a flow run on the workers, waited for."),
                   wait: float = typer.Option(120.0, "--wait", help="Seconds to wait for the outcome "
                                                                    "(deployment, service)."),
                   service: str | None = typer.Option(None, "--service", envvar="TRUCKROLL_SERVICE_URL",
                                                      help="A running intake service (truckroll serve): send the "
                                                           "request there, signed, and wait for its outcome."),
                   as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON.")) -> None:
    """Validate a request, persist it, dispatch it, and say what was decided.

    Fastest with a running intake service (``--service`` / TRUCKROLL_SERVICE_URL): this process only sends
    the request and reads the outcome. Otherwise the flow runs in this process: against the Prefect server of
    PREFECT_API_URL when set, else Prefect first starts a temporary server for this process. See
    docs/live-day.md.
    """
    payload = read_json_file(file)
    if service:
        _create_via_service(service.rstrip("/"), payload, idempotency_key, wait, as_json)
        return
    from flows.runs import prefect_api_configured
    from models.schemas import RequestValidationError
    from truckroll import store
    from truckroll.db import session_scope
    from truckroll.settings import get_settings

    if via not in ("auto", "deployment"):
        raise fail(f"--via must be auto or deployment (got {via!r})")
    if via == "deployment" and not prefect_api_configured():
        raise fail("--via deployment needs a Prefect server: set PREFECT_API_URL")
    _init()
    try:
        with session_scope() as session:
            row, created = store.create_request(payload, session=session, idempotency_key=idempotency_key,
                                                horizon_days=get_settings().planning_horizon_days)
            rid = row.id
    except RequestValidationError as exc:
        for e in exc.errors:
            console.print(f"[red]invalid[/] {e.field}: {e.message}")
        raise fail("request refused; nothing was written") from None
    assert rid is not None
    if via == "deployment":
        _run_on_deployment(rid, wait)
    else:
        from flows.runs import run_in_process

        run_in_process(rid)
    result = describe_outcome(rid)
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        console.print(result["summary"], soft_wrap=True)


def _run_on_deployment(request_id: int, wait: float) -> None:
    """Hand the request to the dispatch deployment and wait for its flow run to finish."""
    from prefect.client.orchestration import get_client

    from flows.runs import submit_to_deployment

    run_id = submit_to_deployment(request_id, attempt="cli")
    import time as clock
    from uuid import UUID

    deadline = clock.monotonic() + wait
    with get_client(sync_client=True) as client:
        while clock.monotonic() < deadline:
            state = client.read_flow_run(UUID(run_id)).state
            if state is not None and state.is_final():
                return
            clock.sleep(0.2)
    raise fail(f"request #{request_id} is accepted; its flow run {run_id} did not finish within {wait:.0f} s "
               "(are workers running?)")


def _create_via_service(url: str, payload: Any, idempotency_key: str | None, wait: float, as_json: bool) -> None:
    """POST the request to the intake service (signed like any webhook delivery), then poll its status.

    The standard library's HTTP client, not httpx: this command is a light client whose time is mostly the
    process start, and importing httpx (with httpcore and its async back-ends) costs more than the two requests
    (docs/benchmarks.md, "request create").
    """
    import time as clock
    from zoneinfo import ZoneInfo

    from truckroll.client import SIGNATURE_HEADER, ClientSettings, sign

    settings = ClientSettings()
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, settings.webhook_secret)}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    try:
        code, answer = _http(f"{url}/service-requests", body, headers)
        if code == 422:
            detail = answer.get("detail", []) if isinstance(answer, dict) else []
            for e in detail if isinstance(detail, list) else []:
                console.print(f"[red]invalid[/] {e.get('field')}: {e.get('message')}")
            raise fail("request refused; nothing was written")
        if code != 202:
            raise fail(f"the intake service answered {code}: {json.dumps(answer)[:300]}")
        rid = int(answer["request_id"])
        deadline = clock.monotonic() + wait
        auth = {"X-API-Key": settings.api_key} if settings.api_key else {}
        pause = 0.05
        while True:
            code, data = _http(f"{url}/service-requests/{rid}", None, auth)
            if code in (401, 403):
                raise fail(f"request #{rid} accepted; reading its outcome needs a dispatcher's key: set "
                           "TRUCKROLL_API_KEY (truckroll users key NAME)")
            if code != 200:
                raise fail(f"request #{rid} accepted; its status answered {code}: {json.dumps(data)[:300]}")
            if data["status"] not in ("received", "analysed") or clock.monotonic() > deadline:
                break
            clock.sleep(pause)
            pause = min(pause * 1.5, 0.3)
    except OSError as exc:  # refused, unreachable, timed out (urllib's URLError is an OSError)
        raise fail(f"cannot reach the intake service at {url}: {getattr(exc, 'reason', exc)}") from None
    a, w, esc = data.get("assignment") or {}, data.get("arrival_window") or {}, data.get("escalation") or {}
    result = {"request_id": rid, "status": data["status"], "technician_id": a.get("technician_id"),
              "technician": a.get("technician_name"), "start": a.get("scheduled_start"),
              "window_start": w.get("start"), "window_end": w.get("end"), "reason": esc.get("reason")}
    result = {k: v for k, v in result.items() if v is not None}
    result["summary"] = outcome_summary(result, ZoneInfo(settings.company_timezone))
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        console.print(result["summary"], soft_wrap=True)


def _http(url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
    """POST ``body`` (or GET without one); the status code and the JSON answer (None when it is not JSON)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - the URL is the operator's service
            code, raw = r.status, r.read()
    except urllib.error.HTTPError as exc:
        code, raw = exc.code, exc.read()
    try:
        return code, json.loads(raw) if raw else None
    except ValueError:
        return code, None


def outcome_summary(out: dict[str, Any], tz: ZoneInfo | None = None) -> str:
    """One line: "request #4 assigned to Ana: arrival window Mon 07 Jan 08:00-10:00, planned start 08:10"."""
    from datetime import datetime

    rid, status = out["request_id"], out["status"]
    if status == "assigned" and out.get("window_start"):
        tz = tz or _tz()
        ws, we, start = (datetime.fromisoformat(str(out[k])).astimezone(tz)
                         for k in ("window_start", "window_end", "start"))
        return (f"request #{rid} assigned to {out['technician']}: arrival window {ws:%a %d %b %H:%M}-{we:%H:%M}, "
                f"planned start {start:%H:%M}")
    if status == "escalated":
        return f"request #{rid} escalated to a dispatcher: {out.get('reason', '')}"
    if status in ("received", "analysed"):
        return f"request #{rid} is accepted and still being dispatched ({status})"
    return f"request #{rid} is {status}"


def describe_outcome(request_id: int) -> dict[str, Any]:
    """What was decided for the request, from the database: assigned (to whom, when) or escalated (why)."""
    from sqlmodel import col, select

    from models import Escalation
    from truckroll import store
    from truckroll.db import session_scope
    from truckroll.dispatch import commit

    with session_scope() as session:
        row = store.get_request(request_id, session=session)
        out: dict[str, Any] = {"request_id": request_id, "status": row.status}
        a = commit.existing_assignment(request_id, session=session)
        if a is not None and row.status == "assigned":
            tech = store.get_technician(a.technician_id, session=session)
            out |= {"technician_id": a.technician_id, "technician": tech.name, "start": a.scheduled_start.isoformat(),
                    "window_start": a.window_start.isoformat(), "window_end": a.window_end.isoformat()}
        elif row.status == "escalated":
            esc = session.exec(select(Escalation).where(Escalation.request_id == request_id)
                               .order_by(col(Escalation.id).desc())).first()
            out["reason"] = esc.reason if esc else ""
    out["summary"] = outcome_summary(out)
    return out


@schedule_app.command("show")
def schedule_show(technician: int = typer.Option(..., "--technician", help="Technician id."),
                  day: str = typer.Option(..., "--date", help="YYYY-MM-DD")) -> None:
    """A technician's route for a day: stops, times, promised windows and travel."""
    d = _parse_day(day)
    from truckroll import store
    from truckroll.db import session_scope
    from truckroll.settings import get_settings
    from truckroll.travel.provider import get_travel_provider

    _init()
    tz = _tz()
    with session_scope() as session:
        try:
            tech = store.get_technician(technician, session=session)
        except store.NotFound as exc:
            raise fail(str(exc)) from None
        start, end = store.day_bounds(d, tz)
        days = store.technician_days(session=session, start=start, end=end, tz=tz.key,
                                     live=get_travel_provider(get_settings()), technician_ids=[technician])
        requests = {s.request_id: store.get_request(s.request_id, session=session) for dd in days for s in dd.stops}
    if not days:
        console.print(f"{tech.name} has no shift on {d.isoformat()}")
        return
    for dd in days:
        shift = f"{dd.shift_start.astimezone(tz):%a %d %b %H:%M}-{dd.shift_end.astimezone(tz):%H:%M}"
        t = Table(title=f"{tech.name}: {shift}")
        for col in ("start", "end", "window told", "travel", "request", "job", "address"):
            t.add_column(col)
        for s in dd.stops:
            r = requests[s.request_id]
            t.add_row(f"{s.start.astimezone(tz):%H:%M}", f"{s.end.astimezone(tz):%H:%M}",
                      f"{s.window.start.astimezone(tz):%H:%M}-{s.window.end.astimezone(tz):%H:%M}",
                      f"{s.travel_minutes:.0f} min", f"#{s.request_id}", r.job_type, r.address)
        console.print(t)


@app.command()
def demo(requests: int | None = typer.Option(
             None, help="Requests per working day (default: 4 per technician, a residential company's load)."),
         technicians: int = typer.Option(25, help="How many technicians the sample company has."),
         days: int = typer.Option(3, help="Working days replayed (each morning's re-optimisation plans that "
                                          "day and the next two)."),
         reoptimize_seconds: float = typer.Option(
             5.0, help="Budget of each of the replay's re-optimisations (the scheduled one: prefect.yaml)."),
         concurrency: int = typer.Option(3, help="Requests in the dispatch flow at once (customers booking "
                                                "at the same time)."),
         reset: bool = typer.Option(True, help="Start from an empty database."),
         seed: int = typer.Option(11, help="Random seed of the requests.")) -> None:
    """Seed a sample company and replay working days of requests through the dispatch flow and the
    re-optimisation; print the share escalated."""
    import os
    import time as clock

    # Flow-run logs (escalations are warnings) go to the Prefect UI; the terminal shows the progress bar,
    # which counts escalations.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
    # The temporary Prefect server the replay starts records its runs as `make serve`'s does (batched
    # recorders, longer lock waits, client retries): with Prefect's defaults its SQLite file stays locked.
    prefect_server_defaults()
    # Nor does it evaluate automations: it has no worker to run their actions, and the operators' alerts
    # (`make serve`'s automations, in the same Prefect database) are not about a replayed demo.
    os.environ.setdefault("PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_SERVICES_ACTIONS_ENABLED", "false")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlmodel import SQLModel

    from demo import company as demo_data
    from demo import scenario
    from demo.replay import replay, share_escalated, start_prefect_server
    from truckroll.db import get_engine, init_db, session_scope

    if days < 1 or days > 10:
        raise fail(f"--days must be 1 to 10 (got {days})")
    if concurrency < 1 or concurrency > 8:
        raise fail(f"--concurrency must be 1 to 8 (got {concurrency})")
    prefect_ready = start_prefect_server()  # in the background, while the company is set up
    engine = get_engine()
    if reset:
        SQLModel.metadata.drop_all(engine)
    init_db(engine)
    first = demo_data.next_service_day()
    dates = scenario.working_days(first, days)
    with session_scope() as session:
        if not demo_data.is_empty(session):
            raise fail("the database already holds a company; run with --reset to start again")
        demo_data.seed_company(session, first, technicians=technicians, rules=True, weeks=3)
    per_day = requests if requests is not None else round(technicians * demo_data.JOBS_PER_TECHNICIAN_DAY)
    stream = demo_data.generate_stream(dates, per_day, seed=seed)
    console.print(f"[bold]{technicians} technicians, {len(stream)} requests for {len(dates)} working days from "
                  f"{first:%A %d %B %Y} ({demo_data.TZ}), {demo_data.season_of(first)} trade mix[/]")
    outcomes: dict[str, int] = {"assigned": 0, "escalated": 0}
    started = clock.perf_counter()
    prefect_ready()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        bar = progress.add_task("dispatching", total=len(stream))

        def tick(status: str) -> None:
            outcomes[status] = outcomes.get(status, 0) + 1
            progress.update(bar, advance=1, description=f"dispatching ({outcomes['assigned']} assigned, "
                                                        f"{outcomes['escalated']} escalated)")

        replayed = replay(stream, dates, reoptimize_seconds=reoptimize_seconds, on_request=tick,
                                    concurrency=concurrency)
    took = clock.perf_counter() - started
    for r in replayed:
        console.print(f"{r.day:%a %d %b}: {r.dispatched} requests dispatched ({r.assigned} assigned, "
                      f"{r.escalated} escalated); re-optimisation at 05:00: {r.reoptimized}"
                      + (f"; at 08:00, after the morning's emergencies: {r.reoptimized_after_emergencies}"
                         if r.reoptimized_after_emergencies else ""))
    for d in dates:
        print_technician_table(d)
    print_metrics(compute_day_metrics(first), f"Metrics for {first.isoformat()}")
    with session_scope() as session:
        escalated, total = share_escalated(session)
    console.print(f"[bold]Escalated: {escalated} of {total} requests ({escalated / max(total, 1):.1%}) after "
                  f"dispatch and re-optimisation; replay took {took:.0f} s[/]")
    if outcomes.get("failed"):
        console.print(f"[red]{outcomes['failed']} dispatch runs failed (counted above as escalated: nobody "
                      f"serves them); see the warnings[/]")
    console.print(f"Try: {cli_command()} schedule show --technician 1 --date {first.isoformat()}")


def print_technician_table(day: date) -> None:
    from engine.dispatch.insertion import route_travel_minutes, utilisation
    from truckroll import store
    from truckroll.db import session_scope
    from truckroll.settings import get_settings
    from truckroll.travel.provider import get_travel_provider

    tz = _tz()
    travel = get_travel_provider(get_settings())
    with session_scope() as session:
        days, values, _ = store.day_plan(day, tz, session=session, live=travel)
    t = Table(title=f"Technicians on {day.isoformat()}")
    for col in ("technician", "shift", "jobs", "first start", "last end", "travel", "utilisation", "revenue"):
        t.add_column(col, justify="right" if col not in ("technician", "shift") else "left")
    for d in sorted(days, key=lambda d: d.name):
        if not d.on_shift and not d.stops:  # absent the whole shift: not on shift (engine.metrics)
            t.add_row(d.name, "absent", "0", "-", "-", "-", "-", "-")
            continue
        t.add_row(d.name, f"{d.shift_start.astimezone(tz):%H:%M}-{d.shift_end.astimezone(tz):%H:%M}",
                  str(len(d.stops)),
                  f"{d.stops[0].start.astimezone(tz):%H:%M}" if d.stops else "-",
                  f"{d.stops[-1].end.astimezone(tz):%H:%M}" if d.stops else "-",
                  f"{route_travel_minutes(d, travel):.0f} min", f"{utilisation(d, travel):.0%}",
                  f"${sum(values.get(s.request_id, 0) for s in d.stops):,.0f}")
    console.print(t)

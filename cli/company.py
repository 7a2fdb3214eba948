"""Company set-up: import (a declarative sync) and export of technicians, job types, customers, shift patterns
and rules; and the live day's status events."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer

from bench import create as _bench_create  # noqa: F401  (registers `truckroll bench create`)
from cli.app import app, console, err_console, fail

company_app = typer.Typer(help="Company set-up: technicians, job types, customers, shift patterns, rules.",
                          no_args_is_help=True)
live_app = typer.Typer(help="The live day: status events from technicians, dispatchers and portals.",
                       no_args_is_help=True)
app.add_typer(company_app, name="company")
app.add_typer(live_app, name="live")


@company_app.command("import")
def company_import(file: Path = typer.Argument(..., help="A .yaml or .json company file, one section's .csv, or a "
                                                         "folder or .zip of section CSVs (docs/company-setup.md)."),
                   prune: bool = typer.Option(False, "--prune", help="Remove items of each listed section that the "
                                                                    "file does not name."),
                   section: str | None = typer.Option(None, "--section", help="For one CSV file not named after "
                                                                              "its section: technicians, "
                                                                              "memberships, ..."),
                   dry_run: bool = typer.Option(False, "--dry-run",
                                                help="Validate and report; write nothing.")) -> None:
    """Make the database say what the file says; the same file twice changes nothing. Any error refuses all of it."""
    from truckroll.company.sync import CompanyImportError, sync_file
    from truckroll.db import init_db, session_scope
    from truckroll.rules.config import RulesConfigError
    from truckroll.settings import get_settings

    init_db()

    class _DryRun(Exception):
        pass

    try:
        with session_scope() as session:
            report = sync_file(file, session=session, tz=get_settings().company_timezone, prune=prune,
                               section=section)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    except (CompanyImportError, RulesConfigError) as exc:
        for e in exc.errors:
            console.print(f"[red]invalid[/] {e}", soft_wrap=True)
        raise fail(f"{file}: refused; nothing was changed") from None
    parts = []
    for what in ("created", "updated", "removed"):
        for k, n in getattr(report, what).items():
            if n:
                parts.append(f"{n} {k.replace('_', ' ')} {what}")
    for k, n in report.rules.items():
        if k not in report.created and k not in report.updated:  # counted above as created or updated
            parts.append(f"{n} {k.replace('_', ' ')} loaded")
    prefix = "dry run, nothing written: " if dry_run else ""
    console.print(prefix + (", ".join(parts) if parts else "nothing changed"), soft_wrap=True)
    for note in report.notes:
        console.print(f"[yellow]note[/] {note}", soft_wrap=True)


@company_app.command("export")
def company_export(file: Path = typer.Argument(..., help="Where to write: .yaml, .json, .csv (one section), "
                                                         ".zip or a folder (every section as SECTION.csv)."),
                   section: str | None = typer.Option(None, "--section",
                                                      help="For one .csv file: technicians, memberships, ...")
                   ) -> None:
    """Write the company in the format `company import` reads (importing it back changes nothing)."""
    import yaml

    from truckroll.company.sync import CompanyImportError, csv_section, export_csv, export_csv_files, export_document
    from truckroll.db import init_db, session_scope
    from truckroll.settings import get_settings

    init_db()
    if file.suffix.lower() == ".zip" or file.is_dir() or not file.suffix:
        try:
            with session_scope() as session:
                names = export_csv_files(file, session=session, tz=get_settings().company_timezone)
        except OSError as exc:
            raise fail(f"cannot write {file}: {exc.strerror or exc}") from None
        console.print(f"wrote {file}: {', '.join(names)}", soft_wrap=True)
        return
    with session_scope() as session:
        try:
            if file.suffix.lower() == ".csv":
                text = export_csv(csv_section(file, section), session=session, tz=get_settings().company_timezone)
            else:
                doc = export_document(session=session, tz=get_settings().company_timezone)
                text = json.dumps(doc, indent=2) if file.suffix.lower() == ".json" else \
                    yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        except CompanyImportError as exc:
            raise fail("; ".join(exc.errors)) from None
    try:
        file.write_text(text)
    except OSError as exc:
        raise fail(f"cannot write {file}: {exc.strerror or exc}") from None
    console.print(f"wrote {file}")


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"--{name} must be a date-time with offset, e.g. 2030-01-07T09:15:00-06:00 (got {value!r})") \
            from None


@live_app.command("report")
def live_report(request: int = typer.Option(..., "--request", help="Service request id."),
                kind: str = typer.Option(..., "--event", help="en_route, arrived, completed, late, cannot_complete, "
                                                               "not_home, cancel"),
                at: str | None = typer.Option(None, "--at", help="When it happened (default now), with offset."),
                eta: str | None = typer.Option(None, "--eta", help="en_route: expected arrival (default computed)."),
                minutes: float | None = typer.Option(None, "--minutes", help="late: minutes behind."),
                note: str = typer.Option("", "--note"),
                by: str = typer.Option("cli", "--by", help="Who reports it.")) -> None:
    """Report a status event; the technician's route, the customers' ETAs and the day's metrics follow."""
    from truckroll import store
    from truckroll.db import init_db
    from truckroll.live import EventRefused, apply_event
    from truckroll.settings import get_settings

    init_db()
    try:
        outcome = apply_event(request, kind, settings=get_settings(), at=_when(at, "at"), eta=_when(eta, "eta"),
                              minutes=minutes, note=note, by=by)
    except (EventRefused, store.NotFound) as exc:
        raise fail(str(exc)) from None
    if outcome.dispatch:
        from flows.runs import run_in_process

        for rid in outcome.dispatch:
            console.print(f"dispatching request #{rid}: {run_in_process(rid)}")
    if outcome.notification_ids:  # the customers and technicians concerned are told now, as the service does
        from truckroll.notifications import delivery

        report = delivery.deliver_pending(settings=get_settings(), notification_ids=outcome.notification_ids)
        left = len(report.retry_later) + len(report.unrouted) + len(report.failed)
        err_console.print(f"messages sent: {len(report.sent)}" + (
            f"; {left} left in the outbox (no channel configured, or the send failed: the deliver-notifications "
            "deployment or `truckroll notifications send` retries them)" if left else ""))
    typer.echo(json.dumps(outcome.as_dict(), indent=2, default=str))

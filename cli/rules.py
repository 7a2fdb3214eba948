"""Dispatch rules: load a configuration file, and ask why a technician cannot take a request."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cli.app import app, console, fail

rules_app = typer.Typer(help="Dispatch rules: territories, memberships, hours, policies.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@rules_app.command("load")
def rules_load(file: Path = typer.Argument(..., help="A YAML or JSON rules file (see docs/rules.md).")) -> None:
    """Validate the whole file, then write it in one transaction; any error refuses all of it."""
    from truckroll.db import init_db, session_scope
    from truckroll.rules.config import RulesConfigError, load_file
    from truckroll.settings import get_settings

    init_db()
    try:
        with session_scope() as session:
            report = load_file(file, session=session, tz=get_settings().company_timezone)
    except RulesConfigError as exc:
        for e in exc.errors:
            console.print(f"[red]invalid[/] {e}")
        raise fail(f"{file}: refused; nothing was changed") from None
    console.print(", ".join(f"{n} {k.replace('_', ' ')}" for k, n in report.counts.items() if n) or "nothing to load")


@rules_app.command("why-not")
def rules_why_not(request: int = typer.Option(..., "--request", help="Service request id."),
                  technician: int = typer.Option(..., "--technician", help="Technician id."),
                  as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Why this technician cannot take this request, in a dispatcher's words."""
    from truckroll import store
    from truckroll.db import init_db, session_scope
    from truckroll.dispatch.whynot import why_not
    from truckroll.settings import get_settings
    from truckroll.travel.provider import get_travel_provider

    init_db()
    try:
        with session_scope() as session:
            answer = why_not(request, technician, session=session, travel=get_travel_provider(get_settings()),
                             rules=get_settings().dispatch, tz=get_settings().company_timezone)
    except store.NotFound as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    where = f" in {answer['territory']} ({answer['boundary_mode']} boundaries)" if answer["territory"] else ""
    if answer["chosen"]:
        via = f" (through a {answer['boundary']} boundary)" if answer["boundary"] else ""
        console.print(f"{answer['technician']} would get request #{request}{where}{via}"
                      + (f": {'; '.join(answer['reasons'])}" if answer["reasons"] else ""))
        return
    if answer["eligible"]:
        console.print(f"{answer['technician']} could take request #{request}{where}, but "
                      f"{answer['reasons'][0] if answer['reasons'] else 'someone else won'}")
        return
    console.print(f"{answer['technician']} cannot take request #{request}{where}:")
    for r in answer["reasons"]:
        console.print(f"  - {r}")

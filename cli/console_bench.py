"""``truckroll bench console``: the dispatcher's console's cost per poll and per click (docs/console.md)."""

from __future__ import annotations

import json

import typer

from cli.app import bench_app


@bench_app.command("console")
def bench_console(technicians: int = typer.Option(25, min=1, help="Technicians of the demo company."),
                  requests: int = typer.Option(110, min=1, help="Demo requests dispatched on the day first."),
                  repeat: int = typer.Option(20, min=1, help="Calls of each view measured."),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    """Milliseconds per call of the console's views on a dispatched day: the board (full and 304), an
    escalation's ranking, a request's timeline (through the ASGI app in this process)."""
    from bench.console import as_dict, run_console_bench

    r = as_dict(run_console_bench(technicians=technicians, requests=requests, repeat=repeat))
    if as_json:
        typer.echo(json.dumps(r, indent=2))
        return
    typer.echo(f"{r['technicians']} technicians, {r['requests']} requests ({r['assigned']} assigned, "
               f"{r['escalated']} escalated); medians (p95) of {r['repeat']} calls each:")
    typer.echo(f"  board, full ({r['board_bytes']} bytes): {r['board_ms']} ms ({r['board_p95_ms']})")
    typer.echo(f"  board, 304 (poll cache):   {r['not_modified_ms']} ms ({r['not_modified_p95_ms']})")
    typer.echo(f"  board, 304 (no cache):     {r['not_modified_uncached_ms']} ms ({r['not_modified_uncached_p95_ms']})")
    typer.echo(f"  escalation ranking:        {r['ranking_ms']} ms ({r['ranking_p95_ms']})")
    typer.echo(f"  request timeline:          {r['timeline_ms']} ms ({r['timeline_p95_ms']})")

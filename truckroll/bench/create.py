"""`truckroll bench create`: wall time of `truckroll request create --file` as a user runs it (a new process
each time), with the Prefect server this environment configures (PREFECT_API_URL) or none."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time as clock
from pathlib import Path

import typer

from truckroll.cli.app import bench_app, console


@bench_app.command("create")
def bench_create(requests: int = typer.Option(5, help="Requests to create, one process each."),
                 technicians: int = typer.Option(10, help="Technicians of the sample company."),
                 seed: int = typer.Option(5, help="Random seed of the requests.")) -> None:
    """Seed the demo company in a scratch SQLite file, then time each `truckroll request create`."""
    from truckroll import demo
    from truckroll.db import make_engine, session_scope, upgrade_db

    api = os.environ.get("PREFECT_API_URL", "")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade_db(engine)
        day = demo.next_service_day()
        with session_scope(engine) as session:
            demo.seed_company(session, day, technicians=technicians, rules=True)
        engine.dispose()
        env = dict(os.environ, TRUCKROLL_DATABASE_URL=url)
        times: list[float] = []
        cpu: list[float] = []
        outcomes: dict[str, int] = {}
        for i, item in enumerate(demo.generate_requests(day, requests, seed=seed)):
            path = Path(tmp) / f"r{i}.json"
            path.write_text(json.dumps(item.payload))
            t0 = clock.perf_counter()
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = subprocess.run([sys.executable, "-m", "truckroll.cli.__main__", "request", "create", "--file",
                                str(path), "--json"], capture_output=True, text=True, env=env, timeout=600)
            times.append(clock.perf_counter() - t0)
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            # CPU seconds of the command (and of a temporary Prefect server it starts): less noisy than wall time.
            cpu.append(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
            if r.returncode != 0:
                console.print(f"[red]request {i} failed[/]: {r.stderr.strip()[-400:]}")
                continue
            status = json.loads(r.stdout).get("status", "?")
            outcomes[status] = outcomes.get(status, 0) + 1
    where = f"Prefect server at {api}" if api else "no Prefect server configured (temporary server per process)"
    console.print(f"truckroll request create x{len(times)}, {where}: median {statistics.median(times):.2f} s, "
                  f"min {min(times):.2f} s, max {max(times):.2f} s; CPU median {statistics.median(cpu):.2f} s; "
                  f"outcomes {outcomes}", soft_wrap=True)

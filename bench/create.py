"""`truckroll bench create`: wall time of `truckroll request create --file` as a user runs it (a new process
each time), with the Prefect server this environment configures (PREFECT_API_URL) or none."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time as clock
from pathlib import Path

import typer

from cli.app import bench_app, console


def _start_service(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """`truckroll serve` on a free port, running dispatch flows in its own process; waits until it answers."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "cli.__main__", "serve", "--port", str(port),
                             "--sweep-seconds", "0", "--log-level", "warning"],
                            env=dict(env, TRUCKROLL_FLOW_RUNS="in-process"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = clock.monotonic() + 180
    while clock.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        clock.sleep(0.5)
    proc.kill()
    proc.wait()
    raise RuntimeError("truckroll serve did not come up within 180 s")


@bench_app.command("create")
def bench_create(requests: int = typer.Option(5, help="Requests to create, one process each."),
                 technicians: int = typer.Option(10, help="Technicians of the sample company."),
                 seed: int = typer.Option(5, help="Random seed of the requests."),
                 through_service: bool = typer.Option(False, "--through-service",
                                                      help="Start `truckroll serve` (flows in its process) on the "
                                                           "scratch database and send each request there.")) -> None:
    """Seed the demo company in a scratch SQLite file, then time each `truckroll request create`."""
    from demo import company as demo
    from models.security_tables import CredentialKind
    from truckroll import auth
    from truckroll.db import make_engine, session_scope, upgrade_db

    api = os.environ.get("PREFECT_API_URL", "")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade_db(engine)
        day = demo.next_service_day()
        with session_scope(engine) as session:
            demo.seed_company(session, day, technicians=technicians, rules=True)
            # The command reads the outcome from the service with a dispatcher's key (TRUCKROLL_API_KEY).
            user = auth.create_user("bench-dispatcher", "dispatcher", session=session)
            key, _ = auth.issue(user, CredentialKind.API_KEY, session=session)
        engine.dispose()
        env = dict(os.environ, TRUCKROLL_DATABASE_URL=url, TRUCKROLL_WEBHOOK_SECRET="bench-secret",
                   TRUCKROLL_API_KEY=key)
        server, service = (_start_service(env) if through_service else (None, None))
        times: list[float] = []
        cpu: list[float] = []
        outcomes: dict[str, int] = {}
        asked: dict[int | None, float] = {}  # request id -> the command's wall time
        for i, item in enumerate(demo.generate_requests(day, requests, seed=seed)):
            path = Path(tmp) / f"r{i}.json"
            path.write_text(json.dumps(item.payload))
            t0 = clock.perf_counter()
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            extra = ["--service", service] if service else []
            r = subprocess.run([sys.executable, "-m", "cli.__main__", "request", "create", "--file",
                                str(path), "--json", *extra], capture_output=True, text=True, env=env, timeout=600)
            times.append(clock.perf_counter() - t0)
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            # CPU seconds of the command (and of a temporary Prefect server it starts): less noisy than wall time.
            cpu.append(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
            if r.returncode != 0:
                console.print(f"[red]request {i} failed[/]: {r.stderr.strip()[-400:]}")
                continue
            answer = json.loads(r.stdout)
            status = answer.get("status", "?")
            asked[answer.get("request_id")] = times[-1]
            outcomes[status] = outcomes.get(status, 0) + 1
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        decided = {rid: d for rid, d in _decision_seconds(url).items() if rid in asked}
    where = f"intake service at {service}" if service else (
        f"Prefect server at {api}" if api else "no Prefect server configured (temporary server per process)")
    console.print(f"truckroll request create x{len(times)}, {where}: median {statistics.median(times):.2f} s, "
                  f"min {min(times):.2f} s, max {max(times):.2f} s; CPU median {statistics.median(cpu):.2f} s; "
                  f"outcomes {outcomes}", soft_wrap=True)
    if decided:
        # Where the time goes: from the request stored to its assignment committed (the flow run, wherever it
        # runs), and the rest of the command's wall time (Python's start, imports, HTTP, waiting to see it).
        rest = [asked[rid] - d for rid, d in decided.items() if rid in asked]
        console.print(f"  of which stored -> assigned (the flow run): median "
                      f"{statistics.median(decided.values()):.2f} s; "
                      f"the rest (process start, imports, HTTP, polling): median {statistics.median(rest):.2f} s",
                      soft_wrap=True)


def _decision_seconds(url: str) -> dict[int | None, float]:
    """Per assigned request: seconds from the request stored to its first assignment committed."""
    from sqlmodel import col, select

    from models import Assignment, ServiceRequest
    from truckroll.db import make_engine, session_scope

    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            first = {a.request_id: a.created_at for a in session.exec(
                select(Assignment).order_by(col(Assignment.id).desc())).all()}
            return {r.id: (first[r.id] - r.created_at).total_seconds() for r in session.exec(
                select(ServiceRequest)).all() if r.id in first}
    finally:
        engine.dispose()

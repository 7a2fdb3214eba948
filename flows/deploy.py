"""``truckroll deploy``: ``prefect deploy`` of prefect.yaml, with a work-around for Prefect 3.8.8.

Prefect 3.8.8's client asks for the pool's online workers with ``"limit": null, "offset": null`` after it has
created each deployment; the server (with the FastAPI versions it allows) answers 422, so ``prefect deploy``
exits with an error after the first deployment and ``--all`` stops there. The deployments it wrote are fine.
This sends the server's own defaults instead, then runs Prefect's own ``deploy`` command unchanged.
"""

from __future__ import annotations

import sys
from typing import Any

# The server's defaults for the workers filter (prefect/server/api/workers.py).
_LIMIT, _OFFSET = 200, 0


def patch_prefect_worker_filter() -> None:
    """Make ``read_workers_for_work_pool`` send integers instead of null for limit and offset."""
    from prefect.client.orchestration._work_pools.client import WorkPoolAsyncClient, WorkPoolClient

    if getattr(WorkPoolAsyncClient.read_workers_for_work_pool, "_truckroll_patched", False):
        return
    async_orig = WorkPoolAsyncClient.read_workers_for_work_pool
    sync_orig = WorkPoolClient.read_workers_for_work_pool

    async def read_async(self: Any, work_pool_name: str, worker_filter: Any = None, offset: int | None = None,
                         limit: int | None = None) -> Any:
        return await async_orig(self, work_pool_name, worker_filter, _OFFSET if offset is None else offset,
                                _LIMIT if limit is None else limit)

    def read_sync(self: Any, work_pool_name: str, worker_filter: Any = None, offset: int | None = None,
                  limit: int | None = None) -> Any:
        return sync_orig(self, work_pool_name, worker_filter, _OFFSET if offset is None else offset,
                         _LIMIT if limit is None else limit)

    read_async._truckroll_patched = True  # type: ignore[attr-defined]
    WorkPoolAsyncClient.read_workers_for_work_pool = read_async  # type: ignore[method-assign]
    WorkPoolClient.read_workers_for_work_pool = read_sync  # type: ignore[method-assign]


def patch_subscription_timeouts(open_timeout: float = 60.0, ping_timeout: float = 120.0) -> None:
    """Give a task worker's subscription to the Prefect server patience on a busy machine.

    Prefect 3.8.8 opens it with the websockets defaults (10 s to open, 20 s for a pong). A worker whose threads
    are busy dispatching, on a loaded machine, misses a pong; the server closes the connection, the reconnect
    times out, and the worker exits silently (``serve`` swallows the ``TimeoutError``), cancelling the runs in
    hand. Longer timeouts keep it connected; ``make serve`` restarts a worker that exits anyway and the requeue
    sweep recovers what it held.
    """
    import prefect.client.subscriptions as subscriptions

    original = subscriptions.websocket_connect
    if getattr(original, "_truckroll_patched", False):
        return

    def connect(uri: str, **kwargs: Any) -> Any:
        kwargs.setdefault("open_timeout", open_timeout)
        kwargs.setdefault("ping_timeout", ping_timeout)
        return original(uri, **kwargs)

    connect._truckroll_patched = True  # type: ignore[attr-defined]
    subscriptions.websocket_connect = connect  # type: ignore[assignment]


ALERT_DEPLOYMENT = "notify-operators/notify-operators"
# The flows whose failures operators hear about (not the alert flow itself: no loop).
WATCHED_FLOWS = ["dispatch-service-request", "reoptimize-day", "requeue-sweep", "deliver-notifications"]
AUTOMATION_PREFIX = "truckroll: "


def automations(alert_deployment_id: Any) -> list[Any]:
    """The operators' automations: each runs the notify-operators deployment with the event in its parameters.

    - a watched flow's run crashed, failed or timed out -> operators;
    - a scheduled run is late (no worker picked it up) -> operators;
    - a re-optimisation could not be applied (``truckroll.reoptimize.not-applied``) -> operators;
    - 5 or more requests escalated within 10 minutes -> dispatch (each escalation also has its own alert).
    """
    from datetime import timedelta

    from prefect.automations import Automation, EventTrigger, Posture, RunDeployment

    def run(subject: str, body: str, to: str) -> Any:
        return RunDeployment(source="selected", deployment_id=alert_deployment_id,
                             # A lone "{{ x }}" renders through tojson (a UUID cannot): the key has text around it.
                             parameters={"subject": subject, "body": body, "to": to,
                                         "automation": "{{ automation.name }}", "key": "event {{ event.id }}"})

    watched = {"prefect.resource.role": "flow", "prefect.resource.name": WATCHED_FLOWS}
    return [
        Automation(name=AUTOMATION_PREFIX + "a run crashed or failed", description="Operators hear of every "
                   "crashed, failed or timed-out run of truckroll's flows.",
                   trigger=EventTrigger(expect={"prefect.flow-run.Crashed", "prefect.flow-run.Failed",
                                                "prefect.flow-run.TimedOut"},
                                        match={"prefect.resource.id": "prefect.flow-run.*"},
                                        match_related=watched, posture=Posture.Reactive, threshold=1),
                   actions=[run("{{ event.resource.name }}: {{ event.event }}",
                                "Flow run {{ event.resource.name }} ({{ event.resource.id }}): {{ event.event }} "
                                "at {{ event.occurred }}.", "operators")]),
        Automation(name=AUTOMATION_PREFIX + "a scheduled run is late", description="A scheduled run nobody "
                   "picked up (no worker on truckroll-pool?).",
                   trigger=EventTrigger(expect={"prefect.flow-run.Late"},
                                        match={"prefect.resource.id": "prefect.flow-run.*"},
                                        posture=Posture.Reactive, threshold=1),
                   actions=[run("late run {{ event.resource.name }}",
                                "Flow run {{ event.resource.name }} is late: is a worker running on the "
                                "truckroll-pool work pool?", "operators")]),
        Automation(name=AUTOMATION_PREFIX + "re-optimisation not applied", description="The re-optimisation "
                   "could not produce or apply a plan.",
                   trigger=EventTrigger(expect={"truckroll.reoptimize.not-applied"},
                                        match={"prefect.resource.id": "truckroll.reoptimize.*"},
                                        posture=Posture.Reactive, threshold=1),
                   actions=[run("re-optimisation of {{ event.payload.day }} not applied",
                                "{{ event.payload.reason }}", "operators")]),
        Automation(name=AUTOMATION_PREFIX + "escalations are piling up", description="Many requests need a "
                   "dispatcher at once: technicians missing, rules too tight, or a surge.",
                   trigger=EventTrigger(expect={"truckroll.request.escalated"},
                                        match={"prefect.resource.id": "truckroll.request.*"},
                                        posture=Posture.Reactive, threshold=5, within=timedelta(minutes=10)),
                   actions=[run("5 or more requests escalated within 10 minutes",
                                "The last one: {{ event.resource.id }}: {{ event.payload.reason }}", "dispatch")]),
    ]


def create_automations() -> list[str]:
    """Create (or replace, by name) the operators' automations; returns their names."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(ALERT_DEPLOYMENT)
        except ObjectNotFound:
            return []  # only some deployments were deployed (--name ...): the alerts come with --all
        # Read through the API directly: Prefect 3.8.8's read_automations sends null limit and sort (422).
        http = client._client  # noqa: SLF001 - the client's own authenticated HTTP session
        found = http.post("/automations/filter", json={"limit": 200, "offset": 0, "sort": "NAME_ASC"})
        found.raise_for_status()
        for existing in found.json():
            if existing["name"].startswith(AUTOMATION_PREFIX):
                client.delete_automation(existing["id"])
    names = []
    for automation in automations(deployment.id):
        automation.create()
        names.append(automation.name)
    return names


def main(argv: list[str] | None = None) -> int:
    """Run ``prefect --no-prompt deploy ARGV`` (default ``--all``) from the current directory, then create the
    operators' automations."""
    patch_prefect_worker_filter()
    from prefect.cli import app

    args = argv if argv else ["--all"]
    sys.argv = ["prefect", "--no-prompt", "deploy", *args]
    try:
        app()
    except SystemExit as exc:
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
        if code:
            return code
    names = create_automations()
    print(f"automations: {', '.join(names)}" if names else
          f"automations not created: the {ALERT_DEPLOYMENT} deployment is not deployed (deploy --all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

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


def main(argv: list[str] | None = None) -> int:
    """Run ``prefect --no-prompt deploy ARGV`` (default ``--all``) from the current directory."""
    patch_prefect_worker_filter()
    from prefect.cli import app

    args = argv if argv else ["--all"]
    sys.argv = ["prefect", "--no-prompt", "deploy", *args]
    try:
        app()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

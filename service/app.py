"""The intake service: ``create_app()`` builds it; ``truckroll serve`` runs it under uvicorn.

To add a resource, write ``service/routers/NAME.py`` with a ``router`` and add one line to ``ROUTERS``; give
it a role check (docs/security.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from flows.runs import BackgroundDispatcher, new_attempt
from service.console import router as console_router
from service.errors import ErrorOut
from service.limits import BodyLimitMiddleware
from service.routers import (
    auth,
    booking,
    company,
    escalations,
    live,
    reoptimize,
    rules,
    service_requests,
    technicians,
)
from service.security import insecure_default_secret

log = logging.getLogger(__name__)

# The routers the service serves, in the order the docs list them: add one line per new router.
ROUTERS: list[APIRouter] = [
    service_requests.router,
    escalations.router,
    technicians.router,
    booking.router,
    rules.router,
    auth.router,
    company.router,
    live.router,
    reoptimize.router,
    console_router,
]


class RequeueSweep:
    """Every ``interval_seconds``, re-runs accepted requests whose dispatch never finished
    (truckroll.dispatch.requeue)."""

    def __init__(self, dispatcher: BackgroundDispatcher, interval_seconds: float, older_than_seconds: float,
                 lease_seconds: float) -> None:
        self.dispatcher = dispatcher
        self.interval_seconds = interval_seconds
        self.older_than_seconds = older_than_seconds
        self.lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="truckroll-requeue-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def sweep_once(self) -> list[int]:
        from flows import runs
        from truckroll.dispatch.requeue import requeue

        report = requeue(runs=runs, lease_seconds=self.lease_seconds, older_than_seconds=self.older_than_seconds,
                         skip=self.dispatcher.pending(),
                         submit=lambda rid: self.dispatcher.submit(rid, attempt=new_attempt()))
        return report.started

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                self.sweep_once()
            except Exception:  # noqa: BLE001 - the next sweep tries again
                log.exception("requeue sweep failed")


def create_app(*, dispatcher: BackgroundDispatcher | None = None, init_database: bool = True,
               sweep_interval_seconds: float | None = None) -> FastAPI:
    """The FastAPI application.

    Parameters
    ----------
    dispatcher:
        Where accepted requests go; default: the Prefect deployment when PREFECT_API_URL is set, a background
        thread in this process otherwise.
    init_database:
        Bring the schema to the latest migration at start-up.
    sweep_interval_seconds:
        How often to requeue stranded requests; default from settings, 0 = no sweep in this process.

    Raises
    ------
    RuntimeError
        When the webhook secret is the default one and TRUCKROLL_DEVELOPMENT is not set.
    """
    from truckroll.settings import get_settings

    settings = get_settings()
    problem = insecure_default_secret(settings)
    if problem:
        raise RuntimeError(f"refusing to start: {problem}")
    interval = settings.requeue_sweep_interval_seconds if sweep_interval_seconds is None else sweep_interval_seconds

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if init_database:
            from truckroll.db import init_db

            init_db()
        d = app.state.dispatcher
        d.start()
        sweep = RequeueSweep(d, interval, settings.requeue_after_seconds,
                             settings.dispatch_lease_seconds) if interval > 0 else None
        if sweep is not None:
            sweep.start()
        log.info("intake service up: flows start %s", "on Prefect workers" if d.mode == "deployment"
                 else "in this process")
        try:
            yield
        finally:
            if sweep is not None:
                sweep.stop()
            d.stop()

    app = FastAPI(title="truckroll intake", version="0.1.0", lifespan=lifespan,
                  description="Service requests in (signed webhook), their status, escalations for dispatchers, "
                              "technicians' schedules. Dispatch runs as Prefect flows.")
    app.state.dispatcher = dispatcher or BackgroundDispatcher()
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    _document_shared_errors(app, settings.max_body_bytes)
    _allow_every_method_of_a_path(app)

    @app.get("/healthz", tags=["service"], summary="Liveness and the dispatch backlog")
    def healthz() -> dict[str, object]:
        d: BackgroundDispatcher = app.state.dispatcher
        return {"ok": True, "flows": d.mode, "backlog": d.backlog(), "handled": d.handled, "failed": d.failed}

    return app


def _allow_every_method_of_a_path(app: FastAPI) -> None:
    """A 405 names in ``Allow`` every method the path has (Starlette names only those of the first route that
    matched, e.g. GET of /territories but not its POST)."""
    import re

    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import Request
    from starlette.responses import Response

    patterns: list[tuple[re.Pattern[str], set[str]]] = []

    async def handler(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, StarletteHTTPException):  # registered for HTTPException only
            raise exc
        if exc.status_code == 405:
            if not patterns:
                for path, item in app.openapi().get("paths", {}).items():
                    regex = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path))
                    patterns.append((re.compile(f"^{regex}$"), {m.upper() for m in item}))
            methods = set().union(*(m for p, m in patterns if p.match(request.url.path)))
            if methods:
                exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(methods))}
        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, handler)


def _document_shared_errors(app: FastAPI, max_body_bytes: int) -> None:
    """Add to the OpenAPI schema what BodyLimitMiddleware answers on every route (413, 422), and give every
    error answer the one error shape (``{"detail": ...}``)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorOut", ErrorOut.model_json_schema())
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        for item in schema.get("paths", {}).values():
            for method, op in item.items():
                responses = op.setdefault("responses", {})
                responses.setdefault("422", {"description": "Bad input (a NUL character, a non-finite number, a "
                                                            "value out of range), each named"})
                if method in ("post", "put", "patch"):
                    responses.setdefault("413", {"description": f"Body over {max_body_bytes} bytes"})
                    responses.setdefault("400", {"description": "The body does not parse"})
                for code, response in responses.items():
                    if code.startswith("4"):
                        response["content"] = error
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

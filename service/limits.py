"""Input bounds every endpoint shares: id ranges, dates, body size, NUL characters and non-finite numbers.

``BodyLimitMiddleware`` (pure ASGI) sits in front of every route: it refuses a body over the limit (413)
while it streams in, and refuses a JSON body holding a NUL character or a non-finite number (NaN, Infinity,
1e309) with 422 naming where; query strings and paths with a NUL character get the same 422. The body is
then handed on byte for byte, so the webhook's signature still covers what was sent.
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from fastapi import HTTPException, Path, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.schemas import MAX_ID

# Every id path parameter: 1..2^31-1, the range of an integer column on PostgreSQL (and well inside SQLite's),
# so an id outside it is a 422 and never reaches the database.
DbId = Annotated[int, Path(ge=1, le=MAX_ID, description="An id (1..2147483647)")]


def check_day(day: date, field: str = "date") -> date:
    """422 unless ``day`` lies within the API's date range (TRUCKROLL_API_DATE_RANGE_DAYS around today)."""
    from truckroll.settings import get_settings

    span = get_settings().api_date_range_days
    today = date.today()
    if not today - timedelta(days=span) <= day <= today + timedelta(days=span):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "field": field, "message": f"must be within {span} days of today ({today.isoformat()})"}])
    return day


def _bad_value(node: Any, where: str = "body") -> str | None:
    """Where the first NUL character or non-finite number in a parsed JSON value is, or None."""
    stack: list[tuple[Any, str]] = [(node, where)]
    while stack:
        value, at = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return f"{at}: NUL characters are not allowed"
        elif isinstance(value, float):
            if not math.isfinite(value):
                return f"{at}: numbers must be finite"
        elif isinstance(value, dict):
            for k, v in value.items():
                if "\x00" in k:
                    return f"{at}: NUL characters are not allowed in keys"
                stack.append((v, f"{at}.{k}"))
        elif isinstance(value, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(value))
    return None


def _reject_constant(name: str) -> float:
    # NaN, Infinity, -Infinity: kept as floats so the walk reports them.
    return float(name.replace("Infinity", "inf"))


def check_json(body: bytes) -> str | None:
    """A message when ``body`` is JSON holding a NUL character or a non-finite number; None otherwise (also when
    it is not JSON at all: the route answers that)."""
    if not body:
        return None
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    return _bad_value(data)


async def _send_json(send: Send, code: int, detail: Any) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """413 over ``max_body_bytes``; 422 for a NUL character (body, path, query) or a non-finite JSON number."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope.get("path", "").encode()
        if b"\x00" in unquote_to_bytes(raw_path) or b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
            await _send_json(send, 422, [{"field": "url", "message": "NUL characters are not allowed"}])
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        limit = self.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, f"body over {limit} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _send_json(send, 413, f"body over {limit} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if body and content_type.endswith(b"json"):
            problem = check_json(body)
            if problem is not None:
                field, _, what = problem.partition(": ")
                await _send_json(send, 422, [{"field": field, "message": what}])
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


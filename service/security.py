"""Webhook authentication and body checks: size, content type, timestamped HMAC-SHA256 signature, JSON.

``X-Truckroll-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``. The signature covers
the timestamp and the raw bytes of the body, so it is checked before the body is parsed: a changed body or
timestamp fails here. A signature older or newer than the tolerance is refused, and one already seen (a
replayed delivery) is refused too: the seen signatures are kept in the database, so every instance agrees.
Several secrets may be active at once (``TRUCKROLL_WEBHOOK_SECRETS``) so a secret can be rotated.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from truckroll.client import SIGNATURE_HEADER, sign
from truckroll.settings import DEFAULT_WEBHOOK_SECRET, Settings, get_settings, webhook_secrets

__all__ = ["MAX_BODY_BYTES", "SIGNATURE_HEADER", "sign", "verify_signature"]

MAX_BODY_BYTES = 64 * 1024
SIGNATURE_FORMAT = 't=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">'


class SignatureError(ValueError):
    """Why a webhook signature is refused."""


def parse_signature(header: str | None) -> tuple[int, list[str]]:
    """The timestamp and the ``v1`` signatures of a header (a sender may send several during a rotation)."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER}")
    t: int | None = None
    v1: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            t = int(value)
        elif key == "v1" and value:
            v1.append(value.strip().lower())
    if t is None or not v1:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} (expected {SIGNATURE_FORMAT})")
    return t, v1


def verify_signature(body: bytes, header: str | None, secrets: list[str], *, tolerance_seconds: int,
                     now: float | None = None) -> tuple[int, str]:
    """The timestamp and the matching signature, once the header is fresh and made with an active secret.

    Raises
    ------
    SignatureError
        Missing, malformed, outside the tolerance, or made with no active secret.
    """
    t, candidates = parse_signature(header)
    now = time.time() if now is None else now
    if abs(now - t) > tolerance_seconds:
        raise SignatureError(f"{SIGNATURE_HEADER} timestamp is more than {tolerance_seconds} s from now")
    for secret in secrets:
        expected = sign(body, secret, t).split("v1=", 1)[1]
        for sent in candidates:
            if hmac.compare_digest(expected.encode(), sent.encode()):
                return t, expected
    raise SignatureError(f"wrong {SIGNATURE_HEADER} (expected {SIGNATURE_FORMAT})")


def insecure_default_secret(settings: Settings) -> str | None:
    """A message when the webhook would accept the default secret outside a development set-up."""
    if DEFAULT_WEBHOOK_SECRET in webhook_secrets(settings) and not settings.development:
        return (f"the webhook secret is the default {DEFAULT_WEBHOOK_SECRET!r}: set TRUCKROLL_WEBHOOK_SECRET (or "
                "TRUCKROLL_WEBHOOK_SECRETS) to a secret of your own, or TRUCKROLL_DEVELOPMENT=true on a "
                "development machine")
    return None


async def read_limited_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refusing (413) anything over ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "Content-Length is not a number") from None
        if too_big:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def require_json_content_type(request: Request) -> None:
    """415 unless the body is declared as JSON (``application/json``, optionally with a charset)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            f"Content-Type must be application/json (got {media_type or 'none'!r})")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message)


async def signed_json_body(request: Request) -> dict[str, Any]:
    """The body of a webhook call, once it is small enough, JSON, freshly signed with an active secret, not
    seen before, and an object.

    Raises
    ------
    HTTPException
        413 too large, 415 not JSON, 401 missing, wrong, stale or replayed signature, 400 malformed JSON or not
        an object.
    """
    from starlette.concurrency import run_in_threadpool

    from truckroll.dispatch.intake import record_signature

    body = await read_limited_body(request)
    require_json_content_type(request)
    settings = get_settings()
    try:
        t, signature = verify_signature(body, request.headers.get(SIGNATURE_HEADER), webhook_secrets(settings),
                                        tolerance_seconds=settings.webhook_tolerance_seconds)
    except SignatureError as exc:
        raise _unauthorized(str(exc)) from None
    if not await run_in_threadpool(record_signature, t, signature,
                                   tolerance_seconds=settings.webhook_tolerance_seconds):
        raise _unauthorized(f"replayed delivery: this {SIGNATURE_HEADER} was accepted before (sign every "
                            "delivery afresh, with a new timestamp)")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "body must be a JSON object")
    return data


SignedJSON = Annotated[dict[str, Any], Depends(signed_json_body)]

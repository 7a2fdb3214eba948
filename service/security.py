"""Webhook authentication and body checks: size, content type, HMAC-SHA256 signature, JSON.

The signature covers the raw bytes of the body, so it is checked before the body is parsed: a replayed
signature with a changed body fails here and nothing downstream ever sees the body.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from truckroll.client import SIGNATURE_HEADER, SIGNATURE_PREFIX, sign
from truckroll.settings import get_settings

__all__ = ["MAX_BODY_BYTES", "SIGNATURE_HEADER", "SIGNATURE_PREFIX", "sign", "signature_is_valid"]

MAX_BODY_BYTES = 64 * 1024


def signature_is_valid(body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time comparison of the sent signature with the expected one."""
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    return hmac.compare_digest(sign(body, secret).encode(), header.strip().encode())


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


async def signed_json_body(request: Request) -> dict[str, Any]:
    """The body of a webhook call, once it is small enough, JSON, signed with the shared secret and an object.

    Raises
    ------
    HTTPException
        413 too large, 415 not JSON, 401 missing or wrong signature, 400 malformed JSON or not an object.
    """
    body = await read_limited_body(request)
    require_json_content_type(request)
    if not signature_is_valid(body, request.headers.get(SIGNATURE_HEADER), get_settings().webhook_secret):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            f"missing or wrong {SIGNATURE_HEADER} (expected sha256=<hex HMAC of the body>)")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "body must be a JSON object")
    return data


SignedJSON = Annotated[dict[str, Any], Depends(signed_json_body)]

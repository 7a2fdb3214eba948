"""Accepting a request from outside (the webhook): refuse replayed signatures, validate, persist once per
idempotency key (the IETF Idempotency-Key draft: the same key and body answer the first request; the same key
with another body is refused)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from models import ServiceRequest
from models.security_tables import WebhookDelivery
from truckroll import store
from truckroll.db import session_scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    request_id: int
    created: bool


class IdempotencyKeyReused(ValueError):
    """The idempotency key was used before with another body."""


def fingerprint(payload: dict[str, Any]) -> str:
    """SHA-256 of the body as canonical JSON (key order and spacing do not matter)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _replayed_answer(row: ServiceRequest, fp: str, key: str) -> Accepted:
    if row.idempotency_fingerprint is not None and row.idempotency_fingerprint != fp:
        raise IdempotencyKeyReused(f"Idempotency-Key {key!r} was used with another body (request {row.id}); "
                                   "use a new key for a new request")
    assert row.id is not None
    return Accepted(row.id, False)


def accept_request(payload: dict[str, Any], *, horizon_days: int, idempotency_key: str | None = None) -> Accepted:
    """Validate and persist ``payload`` in one transaction (windows within ``horizon_days``, the setting
    ``planning_horizon_days``).

    The same ``idempotency_key`` with the same body answers with the first request's id and writes nothing,
    also when two deliveries race: the unique index on the key lets one insert win and the other reads the
    winner.

    Raises
    ------
    RequestValidationError
        Naming every failing field; nothing has been written.
    IdempotencyKeyReused
        The key was used before with another body; nothing has been written.
    """
    fp = fingerprint(payload)
    try:
        with session_scope() as session:
            row, created = store.create_request(payload, session=session, idempotency_key=idempotency_key,
                                                horizon_days=horizon_days)
            assert row.id is not None
            if not created:
                assert idempotency_key is not None
                return _replayed_answer(row, fp, idempotency_key)
            if idempotency_key:
                row.idempotency_fingerprint = fp
                session.add(row)
                session.flush()
            return Accepted(row.id, True)
    except IntegrityError:
        if not idempotency_key:
            raise
    with session_scope() as session:
        existing = session.exec(select(ServiceRequest)
                                .where(ServiceRequest.idempotency_key == idempotency_key)).first()
    if existing is None:  # the violation was something else
        raise RuntimeError(f"could not store the request with idempotency key {idempotency_key!r}")
    return _replayed_answer(existing, fp, idempotency_key)


def signature_digest(signed_at: int, signature: str) -> str:
    return hashlib.sha256(f"{signed_at}.{signature}".encode()).hexdigest()


def record_signature(signed_at: int, signature: str, *, tolerance_seconds: int, now: datetime | None = None) -> bool:
    """Remember an accepted webhook signature; False when it was seen before (a replay).

    Signatures older than twice the tolerance are forgotten meanwhile: the tolerance refuses them anyway.
    """
    now = now or datetime.now(UTC)
    when = datetime.fromtimestamp(signed_at, UTC)
    try:
        with session_scope() as session:
            session.execute(delete(WebhookDelivery).where(
                col(WebhookDelivery.signed_at) < now - timedelta(seconds=2 * tolerance_seconds)))
            session.add(WebhookDelivery(signature_hash=signature_digest(signed_at, signature), signed_at=when,
                                        received_at=now))
    except IntegrityError:
        return False
    return True

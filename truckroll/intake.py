"""Accepting a request from outside (the webhook): validate, persist once per idempotency key."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from models import ServiceRequest
from truckroll import store
from truckroll.db import session_scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    request_id: int
    created: bool


def accept_request(payload: dict[str, Any], *, idempotency_key: str | None = None) -> Accepted:
    """Validate and persist ``payload`` in one transaction.

    The same ``idempotency_key`` always answers with the first request's id and writes nothing, also when two
    deliveries race: the unique index on the key lets one insert win and the other reads the winner.

    Raises
    ------
    RequestValidationError
        Naming every failing field; nothing has been written.
    """
    try:
        with session_scope() as session:
            row, created = store.create_request(payload, session=session, idempotency_key=idempotency_key)
            assert row.id is not None
            return Accepted(row.id, created)
    except IntegrityError:
        if not idempotency_key:
            raise
    with session_scope() as session:
        existing = session.exec(select(ServiceRequest.id)
                                .where(ServiceRequest.idempotency_key == idempotency_key)).first()
    if existing is None:  # the violation was something else
        raise RuntimeError(f"could not store the request with idempotency key {idempotency_key!r}")
    return Accepted(existing, False)

"""Operational state of a request's dispatch: who holds it, how often it was tried, the last error.

One row per request that a dispatch run ever claimed. A run holds the request by a lease that it renews while it
works (a heartbeat); a run whose process or worker died stops renewing, the lease expires, and the requeue sweep
runs the request again. After ``max_dispatch_attempts`` failed tries the request is escalated with the error (a
dead letter a dispatcher sees) instead of being tried forever.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.sqltypes import UTCDateTime
from models.tables import utcnow


class DispatchLease(SQLModel, table=True):
    request_id: int = Field(foreign_key="servicerequest.id", primary_key=True)
    # How many runs claimed the request (the first run is attempt 1).
    attempts: int = 0
    # Who holds it now (a Prefect flow run id, or "in-process") and until when; None once released.
    holder: str | None = None
    lease_expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True,
                                                                             index=True))
    last_error: str = ""
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))

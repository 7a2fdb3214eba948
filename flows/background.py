"""Prototype: the dispatch flow behind a Prefect task worker."""
from __future__ import annotations

from prefect import task
from prefect.cache_policies import INPUTS


@task(name="dispatch-request", cache_policy=INPUTS, persist_result=True)
def dispatch_request(request_id: int, attempt: str) -> dict:
    from flows.dispatch import dispatch_service_request

    out = dispatch_service_request(request_id=request_id)
    return out if isinstance(out, dict) else {"request_id": request_id}

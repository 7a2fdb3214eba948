"""The intake bench against a real uvicorn process: concurrent signed deliveries, half of them retried with the
same Idempotency-Key while the original may still be in flight."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_concurrent_retries_lose_nothing_and_duplicate_nothing() -> None:
    """40 requests, 20 retried, 8 in flight: every delivery is accepted, each retry gets its original's id, every
    accepted id is in the database under its key, and there is one row per distinct request."""
    from bench.intake import run_intake_bench

    r = run_intake_bench(requests=40, concurrency=8, retry_share=0.5, technicians=4, drain=False)
    assert r.deliveries == 60 and r.accepted == 60 and r.refused == 0
    assert r.lost == 0 and r.duplicated == 0 and r.retry_mismatches == 0

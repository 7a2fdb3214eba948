"""truckroll bench console: a small run measures every view on a dispatched day."""

from __future__ import annotations

import pytest


def test_bench_console_measures_every_view(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.console import as_dict, run_console_bench

    monkeypatch.setenv("TRUCKROLL_DATABASE_URL", "sqlite:///unused.db")  # restored after the run
    r = as_dict(run_console_bench(technicians=4, requests=10, repeat=3))
    assert r["assigned"] + r["escalated"] == 10 and r["assigned"] > 0
    assert r["board_bytes"] > 1000
    for key in ("board_ms", "not_modified_ms", "not_modified_uncached_ms", "timeline_ms"):
        assert r[key] > 0, key

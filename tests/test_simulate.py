"""The booking simulation: reproducible from its seed, both policies on the same stream, consistent counts."""

from __future__ import annotations

from datetime import date

from demo.simulate import generate_stream, simulate


def test_same_seed_gives_the_same_numbers() -> None:
    """Two runs with one seed report identical figures (timings aside); another seed differs."""
    a = simulate(days=2, seed=5, technicians=6, per_day=25)
    b = simulate(days=2, seed=5, technicians=6, per_day=25)
    c = simulate(days=2, seed=6, technicians=6, per_day=25)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in a["results"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in b["results"]]
    assert strip != [{k: v for k, v in r.items() if k != "seconds"} for r in c["results"]]


def test_both_policies_serve_the_same_stream_and_every_request_is_accounted_for() -> None:
    """Each policy sees every request of the stream once: booked + lost + escalated = requests, and revenue is
    positive when something was booked."""
    out = simulate(days=2, seed=5, technicians=6, per_day=25)
    first, value = out["results"]
    assert first["policy"] == "first-available" and value["policy"] == "value-aware"
    assert first["requests"] == value["requests"] == out["requests"] > 0
    for r in (first, value):
        assert r["booked"] + r["lost_no_window"] + r["lost_refused"] + r["escalations"] == r["requests"]
        assert r["booked"] == sum(r["booked_by_window"])
        assert (r["revenue"] > 0) == (r["booked"] > 0)


def test_stream_is_seeded_and_high_value_jobs_book_at_short_notice() -> None:
    """The stream depends only on its seed, and expensive jobs arrive at most a day ahead (the premise of the
    value-aware policy)."""
    s1 = generate_stream(date(2030, 3, 4), 3, per_day=30, seed=9)
    assert s1 == generate_stream(date(2030, 3, 4), 3, per_day=30, seed=9)
    for r in s1:
        lead_days = (r.wished_day - r.arrives_at.date()).days
        if r.job_type == "panel upgrade":
            assert lead_days <= 1

"""openrouteservice travel times: the real ``openrouteservice`` client against a local server speaking its API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from engine.travel import GreatCircleTravel
from models import Location, TravelTimeCache, utcnow
from tests import factories as f
from tests.ors_server import FakeOpenRouteService, road_seconds
from truckroll.travel.ors import OpenRouteServiceTravel, chunk_block, location_key

FALLBACK = GreatCircleTravel(detour_factor=1.3, speed_kmh=40.0)
PLACES = [f.north_km(km) for km in (0, 3, 7, 12, 20)]


@pytest.fixture
def ors() -> Iterator[FakeOpenRouteService]:
    server = FakeOpenRouteService().start()
    yield server
    server.stop()


def provider(server: FakeOpenRouteService, engine: object = None, **kw: object) -> OpenRouteServiceTravel:
    opts: dict[str, object] = dict(timeout_seconds=2.0, retry_timeout_seconds=1.0, fallback=FALLBACK,
                                   cooldown_seconds=0.0)
    opts.update(kw)
    return OpenRouteServiceTravel(server.url, "test-key", engine=engine, **opts)  # type: ignore[arg-type]


def expected_minutes(a: Location, b: Location) -> float:
    return road_seconds([a.lon, a.lat], [b.lon, b.lat]) / 60.0


def test_matrix_minutes_are_the_services_durations(ors: FakeOpenRouteService) -> None:
    """Minutes are the service's durations (seconds / 60), not the great-circle estimate; the key is sent."""
    p = provider(ors)
    m = p.matrix_minutes(PLACES[:2], PLACES[2:])
    for i, o in enumerate(PLACES[:2]):
        for j, d in enumerate(PLACES[2:]):
            assert m[i][j] == pytest.approx(expected_minutes(o, d), abs=0.01)
            assert m[i][j] != pytest.approx(FALLBACK.minutes(o, d), abs=0.5)
    assert ors.count("matrix") == 1
    assert ors.requests[0]["authorization"] == "test-key"
    assert ors.requests[0]["path"] == "/v2/matrix/driving-car/json"
    assert p.fallback_count == 0


def test_chunk_block_respects_the_limit() -> None:
    """Pieces never exceed the limit, and together they cover every origin x destination pair exactly once."""
    for n_o, n_d, limit in [(4, 5, 6), (1, 14, 6), (50, 50, 2500), (51, 50, 2500), (3, 3, 1)]:
        pieces = chunk_block(range(n_o), range(n_d), limit)
        pairs = [(o, d) for os_, ds in pieces for o in os_ for d in ds]
        assert all(len(os_) * len(ds) <= limit for os_, ds in pieces)
        assert sorted(pairs) == [(o, d) for o in range(n_o) for d in range(n_d)]
    assert len(chunk_block(range(51), range(50), 2500)) == 2


def test_matrix_requests_are_chunked_under_the_service_limit() -> None:
    """A matrix larger than the server's limit is sent as several requests, each accepted by the server."""
    server = FakeOpenRouteService(max_elements=6).start()
    try:
        p = provider(server, max_matrix_elements=6)
        origins = [f.north_km(km) for km in (1, 2, 3, 4)]
        dests = [f.north_km(-km) for km in (1, 2, 3, 4, 5)]
        m = p.matrix_minutes(origins, dests)
        assert server.count("matrix") == 4  # 4 x 5 under 6 per request: one origin row per request
        assert p.fallback_count == 0
        assert m[3][4] == pytest.approx(expected_minutes(origins[3], dests[4]), abs=0.01)
        long_row = [f.north_km(-km) for km in range(10, 24)]
        p.matrix_minutes([origins[0]], long_row)
        assert server.count("matrix") == 4 + 3  # 14 destinations in pieces of at most 6
        assert all(len(r["body"]["sources"]) * len(r["body"]["destinations"]) <= 6 for r in server.requests)
    finally:
        server.stop()


def test_cache_hit_avoids_a_second_request(db: str, ors: FakeOpenRouteService) -> None:
    """Pairs fetched once are written to TravelTimeCache; a fresh provider answers them without a request."""
    from truckroll.db import get_engine

    engine = get_engine(db)
    first = provider(ors, engine)
    assert first.prefetch(PLACES) == 1
    with Session(engine) as s:
        rows = s.exec(select(TravelTimeCache)).all()
    assert len(rows) == len(PLACES) * (len(PLACES) - 1)
    second = provider(ors, engine)
    a, b = PLACES[1], PLACES[4]
    assert second.minutes(a, b) == pytest.approx(expected_minutes(a, b), abs=0.01)
    assert second.prefetch(PLACES) == 0
    assert ors.count() == 1


def test_a_new_job_among_known_stops_costs_two_thin_requests(db: str, ors: FakeOpenRouteService) -> None:
    """Only the missing pairs are fetched: a new place costs one row (it -> all) and one column (all -> it)."""
    from truckroll.db import get_engine

    p = provider(ors, get_engine(db))
    p.prefetch(PLACES)
    new = f.north_km(30)
    assert p.prefetch(PLACES + [new]) == 2
    shapes = sorted((len(r["body"]["sources"]), len(r["body"]["destinations"])) for r in ors.requests[1:])
    assert shapes == [(1, len(PLACES)), (len(PLACES), 1)]


def test_expired_cache_rows_are_fetched_again(db: str, ors: FakeOpenRouteService) -> None:
    """A cached pair past its expiry is not used: the provider asks the service again."""
    from truckroll.db import get_engine

    engine = get_engine(db)
    provider(ors, engine, cache_ttl_hours=1.0).prefetch(PLACES[:2])
    assert ors.count() == 1
    with Session(engine) as s:
        for row in s.exec(select(TravelTimeCache)).all():
            row.expires_at = utcnow() - timedelta(minutes=1)
            s.add(row)
        s.commit()
    fresh = provider(ors, engine)
    fresh.minutes(PLACES[0], PLACES[1])
    assert ors.count() == 2
    with Session(engine) as s:
        fresh.flush()
        row = s.exec(select(TravelTimeCache).where(
            TravelTimeCache.origin_key == location_key(PLACES[0]))).one()
    assert row.expires_at > utcnow()


@pytest.mark.parametrize("mode", ["429", "500", "sleep"])
def test_service_failure_falls_back_and_counts(ors: FakeOpenRouteService, mode: str) -> None:
    """Rate limit (after the client's retries), server error or timeout: the great-circle estimate is
    returned, a warning is logged and the fallback counter goes up; nothing raises."""
    ors.mode = mode
    ors.sleep_seconds = 1.5
    p = provider(ors, timeout_seconds=0.3, retry_timeout_seconds=0.2)
    a, b = PLACES[0], PLACES[3]
    assert p.minutes(a, b) == pytest.approx(FALLBACK.minutes(a, b))
    assert p.fallback_count == 1
    assert p.prefetch(PLACES) >= 1
    assert p.fallback_count == 2
    if mode == "429":
        assert ors.count() >= 2  # the client retried before giving up


def test_one_rate_limit_is_retried_by_the_client(ors: FakeOpenRouteService) -> None:
    """A single 429 is retried (with backoff) and the real answer used: no fallback."""
    ors.mode, ors.fail_first = "429", 1
    p = provider(ors, retry_timeout_seconds=5.0)
    a, b = PLACES[0], PLACES[2]
    assert p.minutes(a, b) == pytest.approx(expected_minutes(a, b), abs=0.01)
    assert ors.count() == 2
    assert p.fallback_count == 0


def test_unreachable_pair_uses_the_estimate_without_counting_a_failure(ors: FakeOpenRouteService) -> None:
    """A pair the service has no road for (null) gets the great-circle estimate; the service is not faulted."""
    p = provider(ors)
    island = Location(81.0, -96.8)
    assert p.minutes(PLACES[0], island) == pytest.approx(FALLBACK.minutes(PLACES[0], island))
    assert p.fallback_count == 0


def test_directions_give_the_road_geometry(ors: FakeOpenRouteService) -> None:
    """route_geometry asks the directions API (geojson) and returns its line, waypoints included."""
    p = provider(ors)
    line = p.route_geometry(PLACES[:3])
    assert line is not None and len(line) == 5
    assert line[0] == PLACES[0] and line[-1] == PLACES[2]
    assert ors.requests[-1]["path"] == "/v2/directions/driving-car/geojson"
    ors.mode = "500"
    assert p.route_geometry(PLACES[:3]) is None
    assert p.fallback_count == 1


@pytest.fixture
def ors_settings(monkeypatch: pytest.MonkeyPatch, ors: FakeOpenRouteService) -> Iterator[FakeOpenRouteService]:
    """truckroll configured (through its settings) to use the local server."""
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_ORS_BASE_URL", ors.url)
    monkeypatch.setenv("TRUCKROLL_ORS_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("TRUCKROLL_ORS_RETRY_TIMEOUT_SECONDS", "0.5")
    get_settings.cache_clear()
    yield ors
    get_settings.cache_clear()


def _seed_and_dispatch() -> dict[str, object]:
    from flows.dispatch import dispatch_service_request
    from truckroll.db import session_scope

    with session_scope() as s:
        f.add_job_type(s)
        f.add_technician(s, "Ana", home=f.north_km(2))
        f.add_technician(s, "Ben", home=f.north_km(-15))
    out = dispatch_service_request(payload=f.request_payload())
    return out.result() if hasattr(out, "result") else out  # type: ignore[union-attr,return-value]


def test_dispatch_uses_the_service_when_configured(db: str, ors_settings: FakeOpenRouteService,
                                                   prefect_harness: None) -> None:
    """With ors_base_url set, get_travel_provider is the openrouteservice provider; the dispatch prefetches one
    matrix for the job and the candidates' stops and caches it."""
    from truckroll.db import get_engine
    from truckroll.settings import get_settings
    from truckroll.travel.provider import get_travel_provider

    assert isinstance(get_travel_provider(get_settings()), OpenRouteServiceTravel)
    result = _seed_and_dispatch()
    assert result["status"] == "assigned"
    assert result["technician"] == "Ana"
    assert ors_settings.count("matrix") >= 1
    with Session(get_engine(db)) as s:
        assert s.exec(select(TravelTimeCache)).first() is not None
    assert get_travel_provider(get_settings()).fallback_count == 0  # type: ignore[attr-defined]


def test_dispatch_succeeds_when_the_service_is_down(db: str, ors_settings: FakeOpenRouteService,
                                                    prefect_harness: None) -> None:
    """A failing routing service never fails a dispatch: the request is assigned on the fallback estimate and
    the fallback is counted."""
    from truckroll.settings import get_settings
    from truckroll.travel.provider import get_travel_provider

    ors_settings.mode = "500"
    result = _seed_and_dispatch()
    assert result["status"] == "assigned"
    assert get_travel_provider(get_settings()).fallback_count >= 1  # type: ignore[attr-defined]


def test_speed_profile_slows_rush_hour() -> None:
    """The default provider's speed depends on the departure hour in the company's zone; no time = average."""
    g = GreatCircleTravel(detour_factor=1.0, speed_kmh=40.0, speed_profile=[(7, 9, 20.0), (22, 5, 60.0)],
                          timezone="America/Chicago")
    a, b = f.ORIGIN, f.north_km(10)
    assert g.minutes(a, b) == pytest.approx(15.0, rel=1e-3)
    assert g.minutes(a, b, f.at(8)) == pytest.approx(30.0, rel=1e-3)
    assert g.minutes(a, b, f.at(12)) == pytest.approx(15.0, rel=1e-3)
    assert g.minutes(a, b, f.at(23)) == pytest.approx(10.0, rel=1e-3)
    assert g.minutes(a, b, f.at(8).astimezone(tz=None)) == pytest.approx(30.0, rel=1e-3)
    with pytest.raises(ValueError, match="speed_profile"):
        GreatCircleTravel(speed_profile=[(7, 25, 30.0)])

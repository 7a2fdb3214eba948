"""Travel times from openrouteservice (the public API with a key, or a company's own server).

``OpenRouteServiceTravel`` implements ``engine.travel.TravelTimeProvider``. The dispatch decision asks for
``minutes()`` hundreds of times per request, so answers come from memory first, then from the
``TravelTimeCache`` table, and only then from the service; ``prefetch()`` asks for every missing pair among a
set of places at once, as a few matrix requests cut under the service's size limit.

Any failure of the service (an HTTP error, 429 after the client's own retries, a timeout, a refused
connection) is logged as a warning, counted in ``fallback_count`` and answered with the great-circle estimate:
a routing outage never fails a dispatch. After a failure the service is left alone for ``cooldown_seconds``
so one outage does not cost a timeout per pair.

Departure times are not sent: openrouteservice's matrix has no time-dependent speeds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from engine.travel import GreatCircleTravel
from models import Location, TravelTimeCache, utcnow

log = logging.getLogger(__name__)

# Limits of the service, as documented by openrouteservice:
# - public API (api.openrouteservice.org, openrouteservice.org/restrictions): 3,500 origins x destinations per
#   matrix request (e.g. 50 x 50); 25 with dynamic arguments.
# - a self-hosted server: ors.endpoints.matrix.maximum_routes, default 2,500 (e.g. 50 x 50 or 1 x 2500);
#   maximum_routes_flexible, default 25, for profiles without contraction hierarchies.
PUBLIC_API_MAX_ELEMENTS = 3500
SELF_HOSTED_DEFAULT_MAX_ELEMENTS = 2500
PUBLIC_API_URL = "https://api.openrouteservice.org"

# Process-wide count of answers served by the fallback (all providers), for metrics and the CLI.
_fallbacks_lock = threading.Lock()
total_fallbacks = 0


def location_key(loc: Location) -> str:
    """A place as the cache stores it: latitude and longitude to 5 decimals (about a metre)."""
    return f"{loc.lat:.5f},{loc.lon:.5f}"


def chunk_block(origins: Sequence[int], destinations: Sequence[int], max_elements: int
                ) -> list[tuple[list[int], list[int]]]:
    """Cut an origins x destinations block into pieces of at most ``max_elements`` pairs each.

    Whole rows are kept together when a row fits; a row longer than the limit is cut into column pieces.
    """
    if max_elements < 1:
        raise ValueError(f"max_elements must be >= 1 (got {max_elements})")
    if not origins or not destinations:
        return []
    if len(destinations) > max_elements:
        return [([o], list(destinations[i:i + max_elements]))
                for o in origins for i in range(0, len(destinations), max_elements)]
    rows_per_piece = max(1, max_elements // len(destinations))
    return [(list(origins[i:i + rows_per_piece]), list(destinations))
            for i in range(0, len(origins), rows_per_piece)]


class OpenRouteServiceTravel:
    """Driving minutes from openrouteservice, cached in memory and in the database, with a great-circle fallback.

    Parameters
    ----------
    base_url:
        ``https://api.openrouteservice.org`` (needs ``api_key``) or a self-hosted server, e.g.
        ``http://ors.internal:8080/ors``.
    api_key:
        The public API's key; optional for a self-hosted server.
    profile:
        The routing profile, e.g. ``driving-car`` or ``driving-hgv``.
    timeout_seconds:
        Connect + read timeout of one HTTP request.
    retry_timeout_seconds:
        How long the client keeps retrying 429 and 503 before giving up.
    max_matrix_elements:
        Origins x destinations per matrix request (see the limits above).
    cache_ttl_hours:
        How long an answer stays valid in the cache.
    fallback:
        The estimate used when the service fails (the configured great-circle provider).
    engine:
        The SQLAlchemy engine of the cache table; ``None`` keeps the cache in memory only.
    cooldown_seconds:
        After a failure, how long to answer from the fallback without trying the service again.
    client:
        An ``openrouteservice.Client`` to use instead of building one (tests).

    Raises
    ------
    ValueError
        On the public API without a key, or limits that are not positive.
    """

    def __init__(self, base_url: str, api_key: str | None = None, *, profile: str = "driving-car",
                 timeout_seconds: float = 10.0, retry_timeout_seconds: float = 20.0,
                 max_matrix_elements: int | None = None, cache_ttl_hours: float = 168.0,
                 fallback: GreatCircleTravel | None = None, engine: Any = None, cooldown_seconds: float = 60.0,
                 client: Any = None) -> None:
        import openrouteservice

        base_url = base_url.rstrip("/")
        public = base_url == PUBLIC_API_URL
        if public and not api_key:
            raise ValueError("ors_api_key is required for the public openrouteservice API")
        if max_matrix_elements is None:
            max_matrix_elements = PUBLIC_API_MAX_ELEMENTS if public else SELF_HOSTED_DEFAULT_MAX_ELEMENTS
        if max_matrix_elements < 1:
            raise ValueError(f"max_matrix_elements must be >= 1 (got {max_matrix_elements})")
        if cache_ttl_hours <= 0:
            raise ValueError(f"cache_ttl_hours must be > 0 (got {cache_ttl_hours})")
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0 (got {timeout_seconds})")
        self.base_url = base_url
        self.profile = profile
        self.max_matrix_elements = max_matrix_elements
        self.cache_ttl = timedelta(hours=cache_ttl_hours)
        self.fallback = fallback or GreatCircleTravel()
        self.engine = engine
        self.cooldown_seconds = cooldown_seconds
        self.client = client or openrouteservice.Client(
            key=api_key, base_url=base_url, timeout=timeout_seconds, retry_timeout=retry_timeout_seconds,
            retry_over_query_limit=True)
        self.fallback_count = 0
        self.requests_made = 0
        # (origin_key, destination_key) -> (seconds, expires_at)
        self._memory: dict[tuple[str, str], tuple[float, datetime]] = {}
        # Answers not yet written to the table (written by prefetch / flush, outside the dispatch's transaction).
        self._unsaved: dict[tuple[str, str], tuple[float, float | None, datetime]] = {}
        self._failed_until = 0.0
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ the provider interface

    def minutes(self, origin: Location, destination: Location, depart_at: datetime | None = None) -> float:
        """Driving minutes from ``origin`` to ``destination`` (``depart_at`` only affects the fallback)."""
        if origin == destination:
            return 0.0
        pair = (location_key(origin), location_key(destination))
        seconds = self._from_memory(pair)
        if seconds is None:
            seconds = self._from_table([pair]).get(pair)
        if seconds is None:
            fetched = self._fetch([origin], [destination])
            if fetched is None:
                return self._fallback_minutes(origin, destination, depart_at)
            seconds = fetched.get(pair)
        if seconds is None:  # the service found no road between the two points
            return self.fallback.minutes(origin, destination, depart_at)
        return seconds / 60.0

    def matrix_minutes(self, origins: Sequence[Location], destinations: Sequence[Location],
                       depart_at: datetime | None = None) -> list[list[float]]:
        """Minutes from every origin to every destination, fetched as few matrix requests."""
        self.prefetch(list(origins) + list(destinations), origins=origins, destinations=destinations)
        return [[self.minutes(o, d, depart_at) for d in destinations] for o in origins]

    # ------------------------------------------------------------------ bulk loading

    def prefetch(self, locations: Iterable[Location], *, origins: Sequence[Location] | None = None,
                 destinations: Sequence[Location] | None = None) -> int:
        """Make every pair among ``locations`` (or ``origins`` x ``destinations``) answerable from memory.

        Reads what the table has, asks the service only for the missing pairs (grouped so that a new job
        among known stops costs two thin requests, not a full matrix), writes the answers to the table.
        Call it outside any open database transaction.

        Returns
        -------
        int
            The number of matrix requests sent to the service.
        """
        places = {location_key(p): p for p in locations}
        srcs = {location_key(p): p for p in origins} if origins is not None else places
        dsts = {location_key(p): p for p in destinations} if destinations is not None else places
        wanted = [(o, d) for o in srcs for d in dsts if o != d]
        self.flush()
        if not wanted:
            return 0
        missing = [p for p in wanted if self._from_memory(p) is None]
        if missing:
            found = self._from_table(missing)
            missing = [p for p in missing if p not in found]
        if not missing:
            return 0
        blocks: dict[frozenset[str], list[str]] = defaultdict(list)
        if 2 * len(missing) >= len(wanted):
            # Mostly unknown: the whole matrix (the diagonal comes free) is the fewest requests.
            blocks[frozenset(dsts)] = list(srcs)
        else:
            # Group origins by the set of destinations they miss: each group is one rectangular block, so a
            # new job among known stops costs one row and one column.
            by_origin: dict[str, set[str]] = defaultdict(set)
            for o, d in missing:
                by_origin[o].add(d)
            for o, ds in by_origin.items():
                blocks[frozenset(ds)].append(o)
        before = self.requests_made
        everything = srcs | dsts
        for block, os_ in blocks.items():
            dest_keys = sorted(block)
            result = self._fetch([everything[k] for k in os_], [everything[k] for k in dest_keys])
            if result is None:
                self._count_fallback(f"prefetch of {len(os_)} x {len(dest_keys)} pairs")
                break
        self.flush()
        return self.requests_made - before

    def flush(self) -> int:
        """Write answers fetched since the last flush to the cache table; returns how many rows were written."""
        with self._lock:
            rows, self._unsaved = self._unsaved, {}
        if not rows or self.engine is None:
            return 0
        try:
            with Session(self.engine) as session:
                keys = {o for o, _ in rows}
                stale = session.exec(select(TravelTimeCache).where(
                    TravelTimeCache.profile == self.profile, col(TravelTimeCache.origin_key).in_(keys))).all()
                existing = {(r.origin_key, r.destination_key): r for r in stale}
                for (o, d), (seconds, metres, expires) in rows.items():
                    row = existing.get((o, d))
                    if row is None:
                        row = TravelTimeCache(profile=self.profile, origin_key=o, destination_key=d,
                                              duration_seconds=seconds, distance_metres=metres,
                                              expires_at=expires)
                    else:
                        row.duration_seconds, row.distance_metres = seconds, metres
                        row.fetched_at, row.expires_at = utcnow(), expires
                    session.add(row)
                session.commit()
        except IntegrityError:
            # Another process cached the same pairs first: theirs are as good as ours.
            log.info("travel cache rows were written concurrently; keeping the other writer's")
            return 0
        except Exception:  # noqa: BLE001 - the cache is an optimisation, never a reason to fail a dispatch
            log.warning("could not write %d travel-time rows to the cache", len(rows), exc_info=True)
            return 0
        return len(rows)

    # ------------------------------------------------------------------ routes for the map

    def route_geometry(self, points: Sequence[Location]) -> list[Location] | None:
        """The road geometry through ``points`` (directions API), or ``None`` when the service cannot say."""
        if len(points) < 2 or self._cooling_down():
            return None
        import openrouteservice

        try:
            self.requests_made += 1
            body = openrouteservice.directions.directions(
                self.client, [(p.lon, p.lat) for p in points], profile=self.profile, format="geojson",
                validate=False)
            coords = body["features"][0]["geometry"]["coordinates"]
            return [Location(lat, lon) for lon, lat, *_ in coords]
        except Exception as exc:  # noqa: BLE001 - a map without road geometry still shows the route
            self._note_failure(exc)
            self._count_fallback("directions")
            return None

    # ------------------------------------------------------------------ internals

    def _from_memory(self, pair: tuple[str, str]) -> float | None:
        hit = self._memory.get(pair)
        if hit is None:
            return None
        seconds, expires = hit
        if expires <= utcnow():
            self._memory.pop(pair, None)
            return None
        return seconds

    def _from_table(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
        """Unexpired cached answers for ``pairs``; they are also kept in memory."""
        if self.engine is None or not pairs:
            return {}
        wanted = set(pairs)
        origins = sorted({o for o, _ in pairs})
        now = utcnow()
        found: dict[tuple[str, str], float] = {}
        try:
            with Session(self.engine) as session:
                for i in range(0, len(origins), 500):
                    rows = session.exec(select(TravelTimeCache).where(
                        TravelTimeCache.profile == self.profile,
                        col(TravelTimeCache.origin_key).in_(origins[i:i + 500]),
                        TravelTimeCache.expires_at > now)).all()
                    for r in rows:
                        pair = (r.origin_key, r.destination_key)
                        if pair in wanted:
                            found[pair] = r.duration_seconds
                            self._memory[pair] = (r.duration_seconds, r.expires_at)
        except Exception:  # noqa: BLE001 - an unreadable cache means asking the service
            log.warning("could not read the travel-time cache", exc_info=True)
        return found

    def _cooling_down(self) -> bool:
        return time.monotonic() < self._failed_until

    def _note_failure(self, exc: BaseException) -> None:
        self._failed_until = time.monotonic() + self.cooldown_seconds
        log.warning("openrouteservice at %s failed (%s: %s); using the great-circle estimate for %.0f s",
                    self.base_url, type(exc).__name__, exc, self.cooldown_seconds)

    def _count_fallback(self, what: str) -> None:
        global total_fallbacks
        with _fallbacks_lock:
            self.fallback_count += 1
            total_fallbacks += 1
        log.debug("travel-time fallback (%s); %d so far", what, self.fallback_count)

    def _fallback_minutes(self, origin: Location, destination: Location, depart_at: datetime | None) -> float:
        self._count_fallback("pair")
        return self.fallback.minutes(origin, destination, depart_at)

    def _fetch(self, origins: Sequence[Location], destinations: Sequence[Location]
               ) -> dict[tuple[str, str], float | None] | None:
        """Ask the service for origins x destinations, in pieces under the size limit.

        Returns the answers (``None`` for pairs without a road), or ``None`` when the service failed.
        """
        if self._cooling_down():
            return None
        import openrouteservice

        # One list of distinct places per request; sources/destinations index into it.
        out: dict[tuple[str, str], float | None] = {}
        expires = utcnow() + self.cache_ttl
        pieces = chunk_block(range(len(origins)), range(len(destinations)), self.max_matrix_elements)
        for rows, cols in pieces:
            places: list[Location] = []
            index: dict[str, int] = {}
            for loc in [origins[r] for r in rows] + [destinations[c] for c in cols]:
                k = location_key(loc)
                if k not in index:
                    index[k] = len(places)
                    places.append(loc)
            src = [index[location_key(origins[r])] for r in rows]
            dst = [index[location_key(destinations[c])] for c in cols]
            try:
                self.requests_made += 1
                body = openrouteservice.distance_matrix.distance_matrix(
                    self.client, [(p.lon, p.lat) for p in places], profile=self.profile, sources=src,
                    destinations=dst, metrics=["duration", "distance"], validate=False)
                durations = body["durations"]
                distances = body.get("distances")
                if len(durations) != len(rows) or any(len(r) != len(cols) for r in durations):
                    raise ValueError(f"matrix answer is {len(durations)} rows for {len(rows)} x {len(cols)} asked")
            except Exception as exc:  # noqa: BLE001 - every failure of the service means: fall back
                self._note_failure(exc)
                return None
            with self._lock:
                for i, r in enumerate(rows):
                    for j, c in enumerate(cols):
                        pair = (location_key(origins[r]), location_key(destinations[c]))
                        if pair[0] == pair[1]:
                            continue
                        seconds = durations[i][j]
                        out[pair] = seconds
                        if seconds is None:
                            continue
                        metres = distances[i][j] if distances else None
                        self._memory[pair] = (float(seconds), expires)
                        self._unsaved[pair] = (float(seconds), metres, expires)
        return out

"""Travel-time providers. Every part of truckroll asks one of these for minutes between two places."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from models.domain import Location

EARTH_RADIUS_KM = 6371.0088


def haversine_km(a: Location, b: Location) -> float:
    """Great-circle distance in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


# The same legs (stop to stop, stop to home) are asked for at every insertion position and every request of
# a day; a bounded cache makes a repeat 3-4x cheaper than the trigonometry.
_cached_km = lru_cache(maxsize=1 << 16)(haversine_km)


class TravelTimeProvider(Protocol):
    """Minutes of driving between places, optionally depending on the departure time."""

    def minutes(self, origin: Location, destination: Location, depart_at: datetime | None = None) -> float: ...

    def matrix_minutes(
        self, origins: Sequence[Location], destinations: Sequence[Location], depart_at: datetime | None = None
    ) -> list[list[float]]: ...


class GreatCircleTravel:
    """The embedded default: great-circle distance x a road-detour factor at an average speed.

    Parameters
    ----------
    detour_factor:
        Road distance over straight-line distance (1.3 is typical of suburban road networks).
    speed_kmh:
        Average driving speed, used when no departure time is given or no profile range covers it.
    speed_profile:
        Speeds by time of day: ``(start_hour, end_hour, kmh)`` ranges, hours 0..24 in ``timezone``, e.g.
        ``[(7, 9, 25.0), (16, 18, 25.0)]`` for slower rush hours. The first range containing the departure
        hour wins; ``start_hour > end_hour`` wraps past midnight.
    timezone:
        IANA zone the profile's hours are read in (the company's); without it, the departure time's own zone.

    Raises
    ------
    ValueError
        On a detour factor below 1, a speed that is not positive, or a profile range outside 0..24.
    """

    def __init__(self, detour_factor: float = 1.3, speed_kmh: float = 40.0,
                 speed_profile: Sequence[tuple[float, float, float]] = (), timezone: str | None = None) -> None:
        if detour_factor < 1.0:
            raise ValueError(f"detour_factor must be >= 1 (got {detour_factor})")
        if speed_kmh <= 0:
            raise ValueError(f"speed_kmh must be > 0 (got {speed_kmh})")
        for start, end, kmh in speed_profile:
            if not (0 <= start <= 24 and 0 <= end <= 24) or start == end:
                raise ValueError(f"speed_profile range {start}-{end} must be two different hours in 0..24")
            if kmh <= 0:
                raise ValueError(f"speed_profile speed for {start}-{end} must be > 0 (got {kmh})")
        self.detour_factor = detour_factor
        self.speed_kmh = speed_kmh
        self.speed_profile = tuple((float(a), float(b), float(k)) for a, b, k in speed_profile)
        self._zone = ZoneInfo(timezone) if timezone else None

    def speed_at(self, depart_at: datetime | None) -> float:
        """km/h when leaving at ``depart_at``: the profile's range containing that hour, else the average."""
        if depart_at is None or not self.speed_profile:
            return self.speed_kmh
        local = depart_at.astimezone(self._zone) if self._zone is not None and depart_at.tzinfo else depart_at
        hour = local.hour + local.minute / 60.0
        for start, end, kmh in self.speed_profile:
            inside = start <= hour < end if start < end else (hour >= start or hour < end)
            if inside:
                return kmh
        return self.speed_kmh

    def minutes(self, origin: Location, destination: Location, depart_at: datetime | None = None) -> float:
        return _cached_km(origin, destination) * self.detour_factor / self.speed_at(depart_at) * 60.0

    def matrix_minutes(
        self, origins: Sequence[Location], destinations: Sequence[Location], depart_at: datetime | None = None
    ) -> list[list[float]]:
        return [[self.minutes(o, d, depart_at) for d in destinations] for o in origins]

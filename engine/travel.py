"""Travel-time providers. Every part of truckroll asks one of these for minutes between two places."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from models.domain import Location

EARTH_RADIUS_KM = 6371.0088


def haversine_km(a: Location, b: Location) -> float:
    """Great-circle distance in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


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
        Average driving speed.
    """

    def __init__(self, detour_factor: float = 1.3, speed_kmh: float = 40.0) -> None:
        if detour_factor < 1.0:
            raise ValueError(f"detour_factor must be >= 1 (got {detour_factor})")
        if speed_kmh <= 0:
            raise ValueError(f"speed_kmh must be > 0 (got {speed_kmh})")
        self.detour_factor = detour_factor
        self.speed_kmh = speed_kmh

    def speed_at(self, depart_at: datetime | None) -> float:
        return self.speed_kmh

    def minutes(self, origin: Location, destination: Location, depart_at: datetime | None = None) -> float:
        return haversine_km(origin, destination) * self.detour_factor / self.speed_at(depart_at) * 60.0

    def matrix_minutes(
        self, origins: Sequence[Location], destinations: Sequence[Location], depart_at: datetime | None = None
    ) -> list[list[float]]:
        return [[self.minutes(o, d, depart_at) for d in destinations] for o in origins]

"""The travel-time provider configured for this installation."""

from __future__ import annotations

from engine.travel import GreatCircleTravel, TravelTimeProvider
from truckroll.settings import Settings, get_settings


def get_travel_provider(settings: Settings | None = None) -> TravelTimeProvider:
    s = settings or get_settings()
    return GreatCircleTravel(detour_factor=s.travel_detour_factor, speed_kmh=s.travel_speed_kmh)

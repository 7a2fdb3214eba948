"""The travel-time provider configured for this installation."""

from __future__ import annotations

import threading

from engine.travel import GreatCircleTravel, TravelTimeProvider
from truckroll.settings import Settings

# One openrouteservice provider per configuration and process, so its in-memory cache outlives a task.
_ors_providers: dict[tuple[object, ...], TravelTimeProvider] = {}
_ors_lock = threading.Lock()


def great_circle_provider(settings: Settings) -> GreatCircleTravel:
    """The embedded default: great-circle distance x detour factor at speeds by time of day."""
    s = settings
    return GreatCircleTravel(detour_factor=s.travel_detour_factor, speed_kmh=s.travel_speed_kmh,
                             speed_profile=s.travel_speed_profile, timezone=s.company_timezone)


def get_travel_provider(settings: Settings) -> TravelTimeProvider:
    """openrouteservice when ``ors_base_url`` is set (with the great-circle default as its fallback), else
    the great-circle default."""
    s = settings
    if not s.ors_base_url:
        return great_circle_provider(s)
    key = (s.ors_base_url, s.ors_api_key, s.ors_profile, s.ors_timeout_seconds, s.ors_retry_timeout_seconds,
           s.ors_max_matrix_elements, s.travel_cache_ttl_hours, s.database_url, s.travel_detour_factor,
           s.travel_speed_kmh, tuple(map(tuple, s.travel_speed_profile)))
    with _ors_lock:
        provider = _ors_providers.get(key)
        if provider is None:
            from truckroll.db import get_engine
            from truckroll.travel.ors import OpenRouteServiceTravel

            provider = OpenRouteServiceTravel(
                s.ors_base_url, s.ors_api_key, profile=s.ors_profile, timeout_seconds=s.ors_timeout_seconds,
                retry_timeout_seconds=s.ors_retry_timeout_seconds, max_matrix_elements=s.ors_max_matrix_elements,
                cache_ttl_hours=s.travel_cache_ttl_hours, fallback=great_circle_provider(s),
                engine=get_engine(s.database_url))
            _ors_providers[key] = provider
        return provider

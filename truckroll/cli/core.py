"""Core commands: demo, request, schedule, metrics."""

from __future__ import annotations

"""Benchmarks: ``truckroll bench NAME`` is implemented in ``truckroll/bench/NAME.py``."""

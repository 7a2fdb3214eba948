"""Benchmarks: ``truckroll bench NAME`` is implemented in ``bench/NAME.py``."""

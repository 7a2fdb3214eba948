"""Prefect tasks: thin typed wrappers around engine and I/O functions."""

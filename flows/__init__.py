"""Prefect flows: orchestrate tasks, with primitive parameters so UI, schedules and the intake can start them."""

"""Re-optimising days at once: the global assignment model (Pyomo + CBC), a day's re-plan and the multi-day horizon
(PyVRP routes, a set-partitioning choice)."""

"""The re-optimisation against the database: load the days, apply a better plan in one transaction, tell everyone
whose visit changed."""

"""Dispatch against the database: intake, the one decision, committing it, emergency displacement, a dispatcher's
manual resolution, why-not, and the leases and sweep that leave no request stranded."""

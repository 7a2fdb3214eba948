"""Booking against the database: windows to offer, the capacity view, booking a window."""

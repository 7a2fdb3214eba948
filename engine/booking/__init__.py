"""Booking: the arrival windows to offer, the slot optimiser that keeps capacity for valuable work, and the demand
forecast behind both."""

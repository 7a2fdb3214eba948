"""One router per resource; service/app.py lists the ones the service includes."""

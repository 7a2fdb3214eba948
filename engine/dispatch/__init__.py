"""Dispatching one request on plain data: analysis (step 2), eligibility (step 3), insertion, scoring (step 5), the
decision (steps 3-5), displacement of lower-priority work by an emergency, and bounded repair."""

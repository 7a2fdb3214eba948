"""The rules that constrain dispatch: territories and memberships, availability (operating hours, shifts, absences)
and shift patterns."""

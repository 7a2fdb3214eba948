"""The intake web service: validates, persists, starts flows. HTTP errors live only here."""

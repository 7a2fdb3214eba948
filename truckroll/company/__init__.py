"""A company's set-up as a declarative sync (YAML and CSV)."""

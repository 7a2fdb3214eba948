"""The dispatch rules: loaded from YAML or JSON, stored, and read back as the engine needs them."""

"""The pure scheduling engine: plain data in, plain data out. No database session, no Prefect context."""

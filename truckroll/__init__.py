"""truckroll: dispatch and scheduling for home-services companies."""

__version__ = "0.1.0"

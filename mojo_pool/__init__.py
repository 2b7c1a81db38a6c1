"""mojo_pool: technical-analysis indicators as a production compute service."""

__version__ = "0.1.0"

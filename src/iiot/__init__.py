"""iiot: a multi-tenant Industrial IoT platform."""

__version__ = "0.1.0"

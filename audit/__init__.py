"""fedaudit core: harness, federated simulation, threat models, metrics and CLI."""

__version__ = "0.1.0"

"""dualtrack: the vocational-school workforce tracker (CLI, settings, replay and report)."""

__all__ = ["__version__"]

__version__ = "0.1.0"

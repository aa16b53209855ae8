"""dualtrack: the vocational-school workforce tracker: the CLI and the jobs it runs (replay, simulate,
the demo, schools and their logins)."""

__all__ = ["__version__"]

__version__ = "0.1.0"

"""The project's root exception and the few specific ones callers catch."""


class DualtrackError(Exception):
    """Root of every error dualtrack raises on purpose; the CLI prints these without a traceback."""


class ConfigError(DualtrackError):
    """A setting or the rules file is wrong."""


class StoreError(DualtrackError):
    """The store (chDB folder or ClickHouse server) cannot be used; the message names what is wrong."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        #: the ClickHouse server's error code, when the server gave one
        self.code = code


class InfraError(DualtrackError):
    """A local service (Kafka, ClickHouse) cannot be fetched, started or stopped."""

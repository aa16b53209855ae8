"""ClickHouse sinks: the store interface, its chDB and server backends, and the migrations."""

from sinks.base import Store, open_store

__all__ = ["Store", "open_store"]

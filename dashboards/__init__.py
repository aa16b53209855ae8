"""Grafana dashboards and alert rules as code, for the ClickHouse datasource plugin."""

from dashboards.catalog import build_all, dashboards

__all__ = ["build_all", "dashboards"]

"""Grafana dashboards and alert rules as code, on the official ClickHouse datasource plugin."""

from dashboards.catalog import DASHBOARDS, build_all

__all__ = ["DASHBOARDS", "build_all"]

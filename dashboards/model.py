"""Typed builders that emit Grafana's dashboard JSON model for the ClickHouse plugin.

grafana-foundation-sdk has no ClickHouse query type; these small dataclasses emit the same JSON
(`schemaVersion` 39) with `grafana-clickhouse-datasource` targets: `rawSql`, `editorType: sql`,
`format` 0 (time series) or 1 (table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DATASOURCE_UID = "dualtrack-clickhouse"
DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": DATASOURCE_UID}
FORMATS = {"timeseries": 0, "table": 1}


@dataclass(frozen=True)
class Column:
    """A column a panel's query must return, with the ClickHouse type family it must have."""

    name: str
    kind: Literal["string", "number", "time"]


@dataclass(frozen=True)
class Panel:
    title: str
    sql: str
    columns: tuple[Column, ...]
    type: str = "table"  # table | timeseries | stat | barchart | piechart | bargauge
    format: Literal["timeseries", "table"] = "table"
    width: int = 12
    height: int = 8
    unit: str = ""
    thresholds: tuple[tuple[float | None, str], ...] = ()
    description: str = ""
    links: tuple[dict[str, str], ...] = ()

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        if self.unit:
            defaults["unit"] = self.unit
        if self.thresholds:
            defaults["thresholds"] = {
                "mode": "absolute",
                "steps": [{"value": v, "color": c} for v, c in self.thresholds],
            }
        if self.links:
            defaults["links"] = list(self.links)
        return {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "datasource": DATASOURCE,
            "targets": [
                {
                    "refId": "A",
                    "datasource": DATASOURCE,
                    "editorType": "sql",
                    "rawSql": self.sql.strip(),
                    "format": FORMATS[self.format],
                    "queryType": self.format,
                }
            ],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {},
        }


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    sql: str
    multi: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": "query",
            "datasource": DATASOURCE,
            "query": self.sql.strip(),
            "definition": self.sql.strip(),
            "refresh": 1,
            "multi": self.multi,
            "includeAll": True,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
        }


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    tags: tuple[str, ...] = ("dualtrack",)
    time_from: str = "now-3y"
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        panels, x, y, row_h = [], 0, 0, 0
        for n, p in enumerate(self.panels, start=1):
            if x + p.width > 24:
                x, y, row_h = 0, y + row_h, 0
            panels.append(p.to_json(n, x, y))
            x, row_h = x + p.width, max(row_h, p.height)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "Asia/Shanghai",
            "schemaVersion": 39,
            "version": 1,
            "editable": True,
            "refresh": "30s",
            "time": {"from": self.time_from, "to": "now"},
            "templating": {"list": [v.to_json() for v in self.variables]},
            "panels": panels,
            "links": [
                {"title": "dualtrack", "type": "dashboards", "tags": ["dualtrack"], "asDropdown": True}
            ],
            **self.extra,
        }

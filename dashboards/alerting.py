"""Grafana alert rules (file provisioning and API) for the rules of docs/domain.md that fit a query: one alert
instance per school, labelled with school, city and level for routing through contact points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dashboards.catalog import limit_sql
from dashboards.model import DATASOURCE_UID
from rules.limits import Rules

FOLDER_UID = "dualtrack"


def _rule(uid: str, title: str, sql: str, op: str, threshold: float, labels: dict[str, str],
          summary: str) -> dict[str, Any]:  # fmt: skip
    return {
        "uid": uid,
        "title": title,
        "condition": "C",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": 600, "to": 0},
                "datasourceUid": DATASOURCE_UID,
                "model": {
                    "refId": "A",
                    "rawSql": sql,
                    "editorType": "sql",
                    "format": 1,
                    "queryType": "table",
                },
            },
            {
                "refId": "B",
                "relativeTimeRange": {"from": 600, "to": 0},
                "datasourceUid": "__expr__",
                "model": {"refId": "B", "type": "reduce", "expression": "A", "reducer": "last"},
            },
            {
                "refId": "C",
                "relativeTimeRange": {"from": 600, "to": 0},
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "C",
                    "type": "threshold",
                    "expression": "B",
                    "conditions": [{"evaluator": {"type": op, "params": [threshold]}}],
                },
            },
        ],
        "for": "0s",
        "labels": {"app": "dualtrack", **labels},
        "annotations": {"summary": summary},
        "noDataState": "OK",
        "execErrState": "Error",
    }


#: label columns of every alert query (Grafana turns string columns into labels)
LABELS = "school_id, city, level"


def alert_rules(rules: Rules) -> list[dict[str, Any]]:
    """The rules: each query returns one row per school (labels) and one number compared to a threshold."""
    crit = float(rules.ratio_critical_factor)
    return [
        _rule("dualtrack-ratio-shortfall", "Student-teacher ratio above the limit",
              f"SELECT {LABELS}, if(isNull(student_teacher_ratio), {crit + 1}, "
              "assumeNotNull(student_teacher_ratio) / assumeNotNull(ratio_limit)) AS ratio_over_limit "
              "FROM school_status FINAL WHERE ratio_limit IS NOT NULL AND (student_teacher_ratio IS NOT NULL "
              "OR students > 0)", "gt", 1.0, {"rule": "ratio_shortfall"},
              "{{ $labels.school_id }} ({{ $labels.city }}, {{ $labels.level }}): student-teacher ratio "
              f"above the limit (critical above {crit} × limit)"),
        _rule("dualtrack-dual-share", "Dual-teacher share below 50%",
              f"SELECT {LABELS}, assumeNotNull(dual_share) AS dual_share FROM school_status FINAL "
              "WHERE dual_share IS NOT NULL", "lt", float(max(rules.limits["dual_share"].by_level.values())),
              {"rule": "dual_share_below_target"}, "{{ $labels.school_id }}: dual-teacher share below target"),
        _rule("dualtrack-full-time-minimum", "Full-time teachers below the minimum",
              f"SELECT {LABELS}, full_time_teachers - {limit_sql(rules, 'full_time_teachers')} AS margin "
              "FROM school_status FINAL WHERE margin IS NOT NULL", "lt", 0.0,
              {"rule": "full_time_teachers_below_minimum"}, "{{ $labels.school_id }}: too few full-time teachers"),
        _rule("dualtrack-studios", "Non-compliant skill-master studios",
              f"SELECT {LABELS}, toFloat64(active_studios - compliant_studios) AS noncompliant "
              "FROM school_status FINAL", "gt", 0.0, {"rule": "studio_noncompliant"},
              "{{ $labels.school_id }}: skill-master studios out of compliance"),
    ]  # fmt: skip


def alert_rules_provisioning(directory: Path, rules: Rules) -> Path:
    """Grafana's file-provisioning format for alert rules."""
    doc = {"apiVersion": 1, "groups": [{"orgId": 1, "name": "dualtrack", "folder": "dualtrack", "interval": "1m",
                                        "rules": alert_rules(rules)}]}  # fmt: skip
    f = directory / "alert-rules.yaml"
    f.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return f

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
        "labels": {"app": "dualtrack", "audience": "on-call", **labels},
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
        _rule("dualtrack-dual-share", "Dual-teacher share below the level's target",
              f"SELECT {LABELS}, dual_share - {limit_sql(rules, 'dual_share')} AS margin FROM school_status FINAL "
              "WHERE margin IS NOT NULL", "lt", 0.0,
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


#: Grafana's one contact point: the on-call desk that runs dualtrack (docs/alerts.md, "One voice"). Schools
#: and department staff are told by dualtrack's notifier, never by Grafana, so nobody is told twice.
ON_CALL = "dualtrack-on-call"
#: the on-call desk's address, from Grafana's environment (infra/docker-compose.yml)
ON_CALL_EMAIL = "${DUALTRACK_ONCALL_EMAIL}"


def notification_provisioning() -> dict[str, dict[str, Any]]:
    """Grafana's contact point and notification policy files: every dualtrack rule goes to the on-call
    desk, once a day at most per rule and city while it fires."""
    contact = {"apiVersion": 1, "contactPoints": [{"orgId": 1, "name": ON_CALL, "receivers": [
        {"uid": ON_CALL, "type": "email", "settings": {"addresses": ON_CALL_EMAIL, "singleEmail": True}}]}]}  # fmt: skip
    route = {"receiver": ON_CALL, "object_matchers": [["app", "=", "dualtrack"]],
             "group_by": ["alertname", "city"], "group_wait": "1m", "repeat_interval": "24h"}  # fmt: skip
    policy = {"apiVersion": 1, "policies": [{"orgId": 1, "receiver": ON_CALL, "group_by": ["alertname"],
                                             "routes": [route]}]}  # fmt: skip
    return {"contact-points.yaml": contact, "notification-policies.yaml": policy}


def alert_rules_provisioning(directory: Path, rules: Rules) -> Path:
    """Grafana's file-provisioning format for alert rules, with their contact point and policy."""
    doc = {"apiVersion": 1, "groups": [{"orgId": 1, "name": "dualtrack", "folder": "dualtrack", "interval": "1m",
                                        "rules": alert_rules(rules)}]}  # fmt: skip
    f = directory / "alert-rules.yaml"
    f.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    for name, content in notification_provisioning().items():
        (directory / name).write_text(
            yaml.safe_dump(content, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
    return f

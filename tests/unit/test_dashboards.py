"""Dashboards as code: the generated JSON model, and every panel's SQL on chDB over the example."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.catalog import RATIO_SPREAD, WHERE, build_all, dashboards
from dashboards.macros import ALL, expand
from dashboards.model import DATASOURCE
from dualtrack.replay import replay
from rules.limits import load_rules
from sinks.embedded import EmbeddedStore
from tests.dashboard_cases import END, MAY_BE_EMPTY, START, cases, check, fill_health
from tests.helpers import example

CASES = cases()
RULES = load_rules()


def test_build_writes_seven_dashboards_and_the_alert_rules(tmp_path: Path) -> None:
    files = build_all(tmp_path, RULES)
    names = sorted(f.name for f in files)
    assert len([n for n in names if n.endswith(".json")]) == 7 and "alert-rules.yaml" in names
    titles = {json.loads(f.read_text())["title"] for f in files if f.suffix == ".json"}
    assert titles == {"Province overview", "Staffing ratios", "Dual-teacher workforce", "Degree upgrades",
                      "Skill-master studios", "School detail", "Pipeline health"}  # fmt: skip
    groups = yaml.safe_load((tmp_path / "alert-rules.yaml").read_text())["groups"]
    rules = groups[0]["rules"]
    assert {r["labels"]["rule"] for r in rules} >= {"ratio_shortfall", "dual_share_below_target"}
    for r in rules:
        assert r["condition"] == "C" and [d["refId"] for d in r["data"]] == ["A", "B", "C"]
        assert r["data"][1]["datasourceUid"] == r["data"][2]["datasourceUid"] == "__expr__"
        assert "school_id, city, level" in r["data"][0]["model"]["rawSql"]  # labels for routing


@pytest.mark.parametrize("dashboard", dashboards(RULES), ids=lambda d: d.uid)
def test_dashboard_json_follows_grafanas_model(dashboard) -> None:  # type: ignore[no-untyped-def]
    model = json.loads(json.dumps(dashboard.to_json()))
    assert model["uid"] == dashboard.uid and model["schemaVersion"] >= 36
    assert {v["name"] for v in model["templating"]["list"]} == {"circle", "city", "level", "school"}
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    for p in model["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0
        assert p["datasource"] == DATASOURCE
        [t] = p["targets"]
        assert t["editorType"] == "sql" and t["format"] in (0, 1) and t["rawSql"]
        assert (t["format"] == 0) == (p["type"] == "timeseries")
        assert "dualtrack." not in t["rawSql"]  # tables come from the datasource's default database


def test_macros_expand_like_the_plugin() -> None:
    sql = ("SELECT 1 WHERE $__timeFilter(at) AND $__conditionalAll(city IN (${city:singlequote}), $city) "
           "AND $__conditionalAll(level IN (${level:singlequote}), $level) AND x = $__interval_s")  # fmt: skip
    out = expand(sql, {"city": ["qingdao", "o'x"], "level": "$__all"}, START, END, 0)
    assert f"at >= toDateTime({int(START.timestamp())}) AND at <= toDateTime({int(END.timestamp())})" in out
    assert "city IN ('qingdao','o\\'x')" in out and "AND 1=1 AND" in out and out.endswith("x = 1")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with EmbeddedStore(tmp_path_factory.mktemp("dash")) as st:
        replay(st, [example("province-small.jsonl")], load_rules())
        fill_health(st, example("province-small.jsonl"))
        st.execute(f"USE {st.database}")  # Grafana's datasource sets the default database
        yield st


@pytest.mark.parametrize(("title", "sql", "columns"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_panel_sql_runs_on_chdb_with_its_columns(store: EmbeddedStore, title: str, sql: str, columns) -> None:  # type: ignore[no-untyped-def]
    result = store._run(f"SELECT * FROM ({sql}) LIMIT 100", "JSONCompactEachRowWithNamesAndTypes")
    lines = result.bytes().decode().splitlines()
    names, types = json.loads(lines[0]), json.loads(lines[1])
    check(list(zip(names, types, strict=True)), columns)
    rows = lines[2:]
    if title not in MAY_BE_EMPTY and "SD0002" not in sql:
        assert rows, f"{title}: no rows over the example province"


def test_committed_provisioning_and_docs_are_in_step_with_the_code(tmp_path: Path) -> None:
    """infra/grafana (used by docker-compose) and docs/dashboards.md are generated; regenerate with
    `dualtrack dashboards build infra/grafana/dashboards --alerts infra/grafana/provisioning/alerting`."""
    from dashboards.catalog import markdown
    from tests.helpers import ROOT

    build_all(tmp_path / "d", RULES, alerts_directory=tmp_path / "a")
    for f in (tmp_path / "d").iterdir():
        assert (ROOT / "infra/grafana/dashboards" / f.name).read_text() == f.read_text(), f.name
    for name in ("alert-rules.yaml", "contact-points.yaml", "notification-policies.yaml"):
        committed = ROOT / "infra/grafana/provisioning/alerting" / name
        assert committed.read_text() == (tmp_path / "a" / name).read_text(), name
    assert (ROOT / "docs" / "dashboards.md").read_text() == markdown(RULES) + "\n"


def test_grafana_rules_and_the_notifier_agree_on_what_is_open_now(store: EmbeddedStore) -> None:
    """The two voices of docs/alerts.md ("One voice"): each of Grafana's alert rules, evaluated over the
    store as Grafana would (its query, then its threshold), fires for exactly the schools for which the
    notifier's present (the engine's open alerts) holds that rule."""
    from dashboards.alerting import alert_rules
    from streams.materialize import Materializer

    now = datetime.fromisoformat("2025-06-30T12:00:00+08:00")
    m = Materializer(store, RULES)
    m.catch_up(now)  # school_status as of `now`, and the engine's alerts at `now`
    holds: dict[str, set[str]] = {}
    for rule, school, _ in m.open_alerts():
        holds.setdefault(rule, set()).add(school)
    for r in alert_rules(RULES):
        rule = r["labels"]["rule"]
        [evaluator] = [c["evaluator"] for c in r["data"][2]["model"]["conditions"]]
        op, [threshold] = evaluator["type"], evaluator["params"]
        rows = store.query(r["data"][0]["model"]["rawSql"])
        value = next(c for c in rows[0] if c not in ("school_id", "city", "level")) if rows else ""
        firing = {
            row["school_id"]
            for row in rows
            if (row[value] > threshold if op == "gt" else row[value] < threshold)
        }
        assert firing == holds.get(rule, set()), rule
    assert holds.get("ratio_shortfall") and holds.get(
        "dual_share_below_target"
    )  # the test compares something


def test_each_person_is_told_by_one_voice() -> None:
    """Grafana's alert rules go to the on-call desk only (its one contact point, every rule routed
    there); schools and department staff are the notifier's recipients, and none of them is Grafana's
    contact point in the default configuration (docs/alerts.md, "One voice")."""
    from dashboards.alerting import ON_CALL, alert_rules, notification_provisioning
    from rules.recipients import load_recipients
    from tests.helpers import ROOT

    prov = notification_provisioning()
    [point] = prov["contact-points.yaml"]["contactPoints"]
    [policy] = prov["notification-policies.yaml"]["policies"]
    assert point["name"] == policy["receiver"] == ON_CALL
    assert [r["receiver"] for r in policy["routes"]] == [ON_CALL]
    assert all(
        r["labels"]["app"] == "dualtrack" and r["labels"]["audience"] == "on-call" for r in alert_rules(RULES)
    )
    compose = yaml.safe_load((ROOT / "infra/docker-compose.yml").read_text())
    on_call = (
        compose["services"]["grafana"]["environment"]["DUALTRACK_ONCALL_EMAIL"].split(":-")[1].rstrip("}")
    )
    told_by_notifier = {
        a for r in load_recipients(ROOT / "docs/recipients.example.yaml") for a in (r.email, r.webhook) if a
    }
    assert on_call and on_call not in told_by_notifier


@pytest.mark.parametrize("city", [ALL, "zaozhuang"])
def test_the_ratio_spread_is_every_schools_last_ratio_carried_forward(
    store: EmbeddedStore, city: str
) -> None:
    """The province's ratio over time is, at the end of each interval, the 10th, 50th and 90th percentile
    over the selected registered schools of each one's latest ratio (ClickHouse's exact quantile: the
    element at floor(level * n) in sorted order), computed here from the snapshot rows themselves."""
    week = 7 * 86_400
    variables: dict[str, str | list[str]] = {"circle": ALL, "city": city, "level": ALL, "school": ALL}
    got = store.query(expand(RATIO_SPREAD.format(where=WHERE), variables, START, END, week))
    snaps = store.query(
        "SELECT school_id, toUInt32(at) AS at, student_teacher_ratio AS ratio, registered, city "
        "FROM school_snapshots FINAL WHERE retracted = 0 ORDER BY school_id, at"
    )
    by_school: dict[str, list[dict[str, Any]]] = {}
    for r in snaps:
        if city == ALL or r["city"] == city:
            by_school.setdefault(r["school_id"], []).append(r)
    first, last = int(START.timestamp()) // week * week, int(END.timestamp()) // week * week
    expected = []
    for t in range(first, last + week, week):
        values = []
        for rows in by_school.values():
            latest = [r for r in rows if r["at"] < t + week]
            if latest and latest[-1]["registered"] and latest[-1]["ratio"] is not None:
                values.append(latest[-1]["ratio"])
        if values:
            values.sort()
            q = [values[min(int(level * len(values)), len(values) - 1)] for level in (0.1, 0.5, 0.9)]
            expected.append((t, *q))
    assert len(expected) > 100  # the example's span, week by week
    assert [(int(r["time"].timestamp()), r["p10"], r["median"], r["p90"]) for r in got] == expected

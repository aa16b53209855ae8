"""The seven dashboards. Every query runs on ClickHouse 18.16 and on current releases: time buckets use
`intDiv(toUInt32(t), $__interval_s) * $__interval_s` because 18.16 lacks `toStartOfInterval`, which
the plugin's `$__timeInterval` expands to. Limits come from the rules file, never typed in twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from dashboards.model import Column, Dashboard, Panel, Variable
from rules.limits import Rules

S: Literal["string"] = "string"
N: Literal["number"] = "number"
T: Literal["time"] = "time"

VARIABLES = (
    Variable("circle", "Economic circle", "SELECT DISTINCT circle FROM school_status FINAL ORDER BY circle"),
    Variable("city", "City", "SELECT DISTINCT city FROM school_status FINAL "
             "WHERE $__conditionalAll(circle IN (${circle:singlequote}), $circle) ORDER BY city"),
    Variable("level", "School level", "SELECT DISTINCT level FROM school_status FINAL ORDER BY level"),
    Variable("school", "School", "SELECT DISTINCT school_id FROM school_status FINAL "
             "WHERE $__conditionalAll(city IN (${city:singlequote}), $city) ORDER BY school_id"),
)  # fmt: skip

#: the selection every panel honours (columns of school_status and school_snapshots)
WHERE = (
    "$__conditionalAll(circle IN (${circle:singlequote}), $circle)"
    " AND $__conditionalAll(city IN (${city:singlequote}), $city)"
    " AND $__conditionalAll(level IN (${level:singlequote}), $level)"
    " AND $__conditionalAll(school_id IN (${school:singlequote}), $school)"
)
#: the same selection for tables that only carry school_id
IN_SELECTION = f"school_id IN (SELECT school_id FROM school_status FINAL WHERE {WHERE})"


def bucket(column: str) -> str:
    return f"toDateTime(intDiv(toUInt32({column}), $__interval_s) * $__interval_s)"


def month(column: str) -> str:
    return f"toDateTime(toStartOfMonth({column}))"


def limit_sql(rules: Rules, indicator: str) -> str:
    """A multiIf giving the level's limit for an indicator (NULL where the level has none)."""
    by_level = rules.limits[indicator].by_level
    if not by_level:
        return "CAST(NULL AS Nullable(Float64))"
    cases = ", ".join(f"level = '{lvl}', {float(v)}" for lvl, v in by_level.items())
    return f"multiIf({cases}, NULL)"


OPEN_ALERTS = (
    "SELECT school_id, rule, subject, argMax(severity, at_us) AS severity, argMax(value, at_us) AS value, "
    "argMax(threshold, at_us) AS threshold, max(at) AS changed_at, argMax(transition, at_us) AS last "
    "FROM alert_transitions FINAL WHERE retracted = 0 AND {cond} "
    "GROUP BY school_id, rule, subject HAVING last != 'resolved' ORDER BY school_id, rule, subject"
)
#: each school's ratio at the end of every interval (its last snapshot at or before it, carried forward
#: over the intervals it did not change), then the 10th, 50th and 90th percentiles over the selected
#: registered schools with a finite ratio; the limit when every selected school has the same one. One
#: row per interval instead of one line per school: a department reads a spread better than 550 lines
#: (the school page keeps the school's own line). Every function here is in ClickHouse 18.16.
RATIO_SPREAD = (
    "SELECT toDateTime(t) AS time, quantilesExact(0.1, 0.5, 0.9)(ratio)[1] AS p10, "
    "quantilesExact(0.1, 0.5, 0.9)(ratio)[2] AS median, quantilesExact(0.1, 0.5, 0.9)(ratio)[3] AS p90, "
    "if(min(lim) = max(lim), min(lim), NULL) AS ratio_limit FROM ("
    " SELECT arrayJoin(arrayMap(k -> lo + k * $__interval_s, range(toUInt32(greatest(hi - lo, 0) / $__interval_s))))"
    " AS t, tupleElement(cur, 2) AS ratio, tupleElement(cur, 3) AS lim FROM ("
    "  SELECT arrayJoin(arrayEnumerate(s)) AS i, s[i] AS cur, greatest(intDiv(tupleElement(cur, 1), $__interval_s)"
    " * $__interval_s, intDiv(toUInt32($__fromTime), $__interval_s) * $__interval_s) AS lo, least(if(i < length(s),"
    " intDiv(tupleElement(s[i + 1], 1), $__interval_s) * $__interval_s, 4294967295), (intDiv(toUInt32($__toTime),"
    " $__interval_s) + 1) * $__interval_s) AS hi FROM ("
    "   SELECT school_id, arraySort(groupArray((toUInt32(at), student_teacher_ratio, ratio_limit, registered))) AS s"
    "   FROM school_snapshots FINAL WHERE retracted = 0 AND at <= $__toTime AND {where} GROUP BY school_id))"
    " WHERE tupleElement(cur, 4) = 1 AND isNotNull(tupleElement(cur, 2))) GROUP BY t ORDER BY t"
)
OPEN_ALERT_COLUMNS = (Column("school_id", S), Column("rule", S), Column("subject", S), Column("severity", S),
                      Column("changed_at", T), Column("last", S))  # fmt: skip


def dashboards(rules: Rules) -> tuple[Dashboard, ...]:
    target = float(rules.all_indicators_target_share)
    studios = rules.studios_target
    school_link = (
        {"title": "School detail", "url": "/d/dualtrack-school?var-school=${__data.fields.school_id}"},
    )
    province = Dashboard("dualtrack-province", "Province overview", variables=VARIABLES, panels=(
        Panel("Schools by status", f"SELECT status, count() AS schools FROM school_status FINAL WHERE {WHERE} "
              "GROUP BY status ORDER BY status", (Column("status", S), Column("schools", N)), type="piechart", width=6),
        Panel("Schools meeting every indicator (target: the 达标工程 plan)",
              f"SELECT countIf(status = 'green') / count() AS green_share, {target} AS target "
              f"FROM school_status FINAL WHERE {WHERE}", (Column("green_share", N), Column("target", N)),
              type="stat", width=6, unit="percentunit", thresholds=((None, "red"), (target, "green"))),
        Panel("Students, teachers, FTE", "SELECT sum(students) AS students, sum(full_time_teachers) AS "
              "full_time_teachers, sum(part_time_teachers) AS part_time_teachers, sum(fte_teachers) AS fte_teachers "
              f"FROM school_status FINAL WHERE {WHERE}",
              (Column("students", N), Column("full_time_teachers", N), Column("fte_teachers", N)), type="stat", width=12),
        Panel("Student-teacher ratio distribution", "SELECT toUInt32(floor(assumeNotNull(student_teacher_ratio))) AS "
              f"ratio, count() AS schools FROM school_status FINAL WHERE {WHERE} AND student_teacher_ratio IS NOT NULL "
              "GROUP BY ratio ORDER BY ratio", (Column("ratio", N), Column("schools", N)), type="barchart"),
        Panel("Worst student-teacher ratios", "SELECT school_id, name, city, level, student_teacher_ratio, ratio_limit, "
              f"status FROM school_status FINAL WHERE {WHERE} AND ratio_limit IS NOT NULL "
              "ORDER BY (isNull(student_teacher_ratio) AND students > 0) DESC, "
              "assumeNotNull(student_teacher_ratio) / assumeNotNull(ratio_limit) DESC LIMIT 20",
              (Column("school_id", S), Column("student_teacher_ratio", N), Column("ratio_limit", N), Column("status", S)),
              links=school_link),
    ))  # fmt: skip
    ratios = Dashboard("dualtrack-ratios", "Staffing ratios", variables=VARIABLES, panels=(
        Panel("Student-teacher ratio over time: the spread over schools, with the level's limit", RATIO_SPREAD.format(
              where=WHERE), (Column("time", T), Column("p10", N), Column("median", N), Column("p90", N),
              Column("ratio_limit", N)), type="timeseries", format="timeseries", width=24),
        Panel("Ratio by city (students / FTE teachers, now)", "SELECT city, sum(students) / sum(fte_teachers) AS ratio "
              f"FROM school_status FINAL WHERE {WHERE} GROUP BY city ORDER BY city",
              (Column("city", S), Column("ratio", N)), type="barchart"),
        Panel("Current shortfalls: FTE teachers needed to meet the limit",
              "SELECT school_id, name, level, city, student_teacher_ratio, ratio_limit, students, fte_teachers, "
              "toUInt32(ceil(students / assumeNotNull(ratio_limit) - fte_teachers)) AS fte_needed "
              f"FROM school_status FINAL WHERE has(violations, 'student_teacher_ratio') AND ratio_limit IS NOT NULL "
              f"AND {WHERE} ORDER BY fte_needed DESC",
              (Column("school_id", S), Column("fte_needed", N)), links=school_link),
    ))  # fmt: skip
    dual = float(max(rules.limits["dual_share"].by_level.values()))  # the same at every level
    dual_ds = Dashboard("dualtrack-dual", "Dual-teacher workforce", variables=VARIABLES, panels=(
        Panel("Dual-teacher share by school", f"SELECT school_id, dual_share, {dual} AS target FROM school_status FINAL "
              f"WHERE {WHERE} AND dual_share IS NOT NULL ORDER BY dual_share",
              (Column("school_id", S), Column("dual_share", N), Column("target", N)), type="barchart",
              unit="percentunit", thresholds=((None, "red"), (dual, "green"))),
        Panel("Dual-teacher share by city", "SELECT city, sum(dual_teachers) / sum(professional_teachers) AS dual_share "
              f"FROM school_status FINAL WHERE {WHERE} GROUP BY city ORDER BY city",
              (Column("city", S), Column("dual_share", N)), type="barchart", unit="percentunit"),
        Panel("Dual-teacher share by community", "SELECT community, sum(dual_teachers) / sum(professional_teachers) "
              f"AS dual_share FROM school_status FINAL ARRAY JOIN communities AS community WHERE {WHERE} "
              "GROUP BY community ORDER BY community", (Column("community", S), Column("dual_share", N)),
              type="barchart", unit="percentunit"),
        Panel("Certificates expiring within 90 days (alerts firing)",
              OPEN_ALERTS.format(cond=f"rule = 'certificate_expiring' AND {IN_SELECTION}"), OPEN_ALERT_COLUMNS),
        Panel("Certificates granted and revoked per month",
              f"SELECT {month('occurred_at')} AS time, countIf(event_type = 'certification.granted') AS granted, "
              "countIf(event_type = 'certification.revoked') AS revoked FROM events FINAL "
              "WHERE $__timeFilter(occurred_at) AND event_type IN ('certification.granted', 'certification.revoked') "
              f"AND {IN_SELECTION} GROUP BY time ORDER BY time",
              (Column("time", T), Column("granted", N), Column("revoked", N)), type="timeseries", format="timeseries"),
    ))  # fmt: skip
    degrees = Dashboard("dualtrack-degrees", "Degree upgrades", variables=VARIABLES, panels=(
        Panel("Programmes enrolled, conferred and withdrawn per month",
              f"SELECT {month('occurred_at')} AS time, countIf(event_type = 'degree.enrolled') AS enrolled, "
              "countIf(event_type = 'degree.conferred') AS conferred, countIf(event_type = 'degree.withdrawn') AS "
              "withdrawn FROM events FINAL WHERE $__timeFilter(occurred_at) AND event_type IN ('degree.enrolled', "
              f"'degree.conferred', 'degree.withdrawn') AND {IN_SELECTION} GROUP BY time ORDER BY time",
              (Column("time", T), Column("enrolled", N), Column("conferred", N), Column("withdrawn", N)),
              type="timeseries", format="timeseries", width=24),
        Panel("Postgraduate and doctor shares against the limits",
              "SELECT school_id, level, postgraduate_share, "
              f"{limit_sql(rules, 'postgraduate_share')} AS postgraduate_limit, doctor_share, "
              f"{limit_sql(rules, 'doctor_share')} AS doctor_limit FROM school_status FINAL WHERE {WHERE} "
              "ORDER BY school_id", (Column("school_id", S), Column("postgraduate_share", N)), width=24),
    ))  # fmt: skip
    studio_join = ("(SELECT studio_id, school_id, name, community, active, compliant, reasons FROM studio_state FINAL) AS st "
                   "ANY LEFT JOIN (SELECT school_id, circle, city, level FROM school_status FINAL) AS sc USING school_id")  # fmt: skip
    studio_ds = Dashboard("dualtrack-studios", "Skill-master studios", variables=VARIABLES, panels=(
        Panel(f"Active and compliant studios against the target of {studios}",
              f"SELECT sum(active) AS active, sum(compliant) AS compliant, {studios} AS target FROM {studio_join} "
              f"WHERE {WHERE}", (Column("active", N), Column("compliant", N), Column("target", N)), type="bargauge"),
        Panel("Studios by city", f"SELECT city, sum(active) AS active, sum(compliant) AS compliant FROM {studio_join} "
              f"WHERE {WHERE} GROUP BY city ORDER BY city", (Column("city", S), Column("active", N)), type="barchart"),
        Panel("Studios by community", "SELECT community, sum(active) AS active, sum(compliant) AS compliant FROM "
              f"{studio_join} WHERE {WHERE} GROUP BY community ORDER BY community",
              (Column("community", S), Column("active", N)), type="barchart"),
        Panel("Non-compliant studios and why", "SELECT studio_id, school_id, name, arrayStringConcat(reasons, ', ') AS "
              f"reasons FROM {studio_join} WHERE active = 1 AND compliant = 0 AND {WHERE} ORDER BY school_id, studio_id",
              (Column("studio_id", S), Column("school_id", S), Column("reasons", S)), links=school_link),
        Panel("Studio activity reported per month",
              f"SELECT {month('occurred_at')} AS time, count() AS reports, "
              "sum(visitParamExtractUInt(body, 'training_hours')) AS training_hours FROM events FINAL "
              f"WHERE event_type = 'studio.activity_reported' AND $__timeFilter(occurred_at) AND {IN_SELECTION} "
              "GROUP BY time ORDER BY time", (Column("time", T), Column("reports", N)),
              type="timeseries", format="timeseries", width=24),
    ))  # fmt: skip
    detail_vars = (*VARIABLES[:3], Variable("school", "School", VARIABLES[3].sql, multi=False))
    school = Dashboard("dualtrack-school", "School detail", variables=detail_vars, panels=(
        Panel("Indicators and limits", "SELECT school_id, name, level, city, students, fte_teachers, "
              "student_teacher_ratio, ratio_limit, dual_share, postgraduate_share, doctor_share, senior_title_share, "
              "part_time_share, active_studios, compliant_studios, arrayStringConcat(violations, ', ') AS violations, "
              f"status FROM school_status FINAL WHERE {WHERE}",
              (Column("school_id", S), Column("student_teacher_ratio", N), Column("violations", S), Column("status", S)),
              width=24),
        Panel("Open alerts", OPEN_ALERTS.format(cond=IN_SELECTION), OPEN_ALERT_COLUMNS, width=24),
        Panel("Student-teacher ratio over time, with the level's limit",
              f"SELECT {bucket('at')} AS time, argMax(student_teacher_ratio, at_us) AS ratio, "
              "argMax(ratio_limit, at_us) AS ratio_limit FROM school_snapshots FINAL WHERE retracted = 0 "
              f"AND $__timeFilter(at) AND registered = 1 AND {WHERE} GROUP BY time ORDER BY time",
              (Column("time", T), Column("ratio", N), Column("ratio_limit", N)), type="timeseries",
              format="timeseries", width=24),
        Panel("Recent events", "SELECT occurred_at, event_type, event_id, arrived_at FROM events FINAL "
              f"WHERE {IN_SELECTION} ORDER BY occurred_at DESC LIMIT 50",
              (Column("occurred_at", T), Column("event_type", S), Column("event_id", S)), width=24),
    ))  # fmt: skip
    pipeline = Dashboard("dualtrack-pipeline", "Pipeline health", variables=VARIABLES, time_from="now-7d", panels=(
        Panel("Events arriving per interval", f"SELECT {bucket('arrived_at')} AS time, count() AS events FROM events "
              "FINAL WHERE $__timeFilter(arrived_at) GROUP BY time ORDER BY time",
              (Column("time", T), Column("events", N)), type="timeseries", format="timeseries"),
        Panel("Freshness: event time to arrival (seconds)",
              f"SELECT {bucket('arrived_at')} AS time, quantile(0.5)(arrived_at - occurred_at) AS p50, "
              "quantile(0.95)(arrived_at - occurred_at) AS p95 FROM events FINAL WHERE $__timeFilter(arrived_at) "
              "GROUP BY time ORDER BY time", (Column("time", T), Column("p50", N), Column("p95", N)),
              type="timeseries", format="timeseries", unit="s"),
        Panel("Dead letters by reason and school", "SELECT school_id, reason, count() AS dead_letters FROM "
              "dead_letters FINAL GROUP BY school_id, reason ORDER BY dead_letters DESC",
              (Column("school_id", S), Column("reason", S), Column("dead_letters", N))),
        Panel("Stale feeds (no event for the configured period)",
              OPEN_ALERTS.format(cond=f"rule = 'feed_stale' AND {IN_SELECTION}"), OPEN_ALERT_COLUMNS),
        Panel("Enrollment reports overdue (the term is the subject)",
              OPEN_ALERTS.format(cond=f"rule = 'enrollment_missing' AND {IN_SELECTION}"), OPEN_ALERT_COLUMNS),
        *health_panels(rules),
    ))  # fmt: skip
    return (province, ratios, dual_ds, degrees, studio_ds, school, pipeline)


RATES = "('events_in_per_s', 'events_out_per_s', 'dead_letters_per_s')"


def health_panels(rules: Rules) -> tuple[Panel, ...]:
    """The worker's own samples (`pipeline_metrics`) and the early warning (`dual_share_forecasts`)."""
    days = rules.notifications.forecast_days
    return (
        Panel("Consumer lag by topic (messages behind)",
              f"SELECT {bucket('at')} AS time, topic, max(lag) AS lag FROM (SELECT at, topic, sum(value) AS lag "
              "FROM pipeline_metrics FINAL WHERE metric = 'consumer_lag' AND $__timeFilter(at) GROUP BY at, topic) "
              "GROUP BY time, topic ORDER BY time", (Column("time", T), Column("topic", S), Column("lag", N)),
              type="timeseries", format="timeseries"),
        Panel("Consumer lag now, by partition", "SELECT topic, partition, argMax(value, at) AS lag, max(at) AS "
              "sampled_at FROM pipeline_metrics FINAL WHERE metric = 'consumer_lag' GROUP BY topic, partition "
              "ORDER BY topic, partition", (Column("topic", S), Column("partition", N), Column("lag", N),
                                            Column("sampled_at", T))),
        Panel("Events in and out, dead letters (per second)",
              f"SELECT {bucket('at')} AS time, avgIf(value, metric = 'events_in_per_s') AS events_in, "
              "avgIf(value, metric = 'events_out_per_s') AS events_out, avgIf(value, metric = 'dead_letters_per_s') "
              f"AS dead_letters FROM pipeline_metrics FINAL WHERE metric IN {RATES} AND $__timeFilter(at) "
              "GROUP BY time ORDER BY time", (Column("time", T), Column("events_in", N), Column("events_out", N),
                                               Column("dead_letters", N)), type="timeseries", format="timeseries"),
        Panel("Last event per school (longest silent first)",
              "SELECT school_id, toDateTime(toUInt32(max(value))) AS last_event_at, "
              "intDiv(toUInt32(now()) - toUInt32(max(value)), 86400) AS days_silent FROM pipeline_metrics FINAL "
              f"WHERE metric = 'last_event_at' AND {IN_SELECTION} GROUP BY school_id ORDER BY last_event_at LIMIT 50",
              (Column("school_id", S), Column("last_event_at", T), Column("days_silent", N))),
        Panel(f"Schools projected to fall short within {days} days",
              "SELECT school_id, level, dual_share, target, falls_below_on, days_left, dual_teachers_then, "
              "professional_teachers, arrayStringConcat(certificates, ', ') AS expiring_certificates "
              f"FROM dual_share_forecasts FINAL WHERE warning = 1 AND {IN_SELECTION} ORDER BY days_left, school_id",
              (Column("school_id", S), Column("dual_share", N), Column("falls_below_on", S), Column("days_left", N),
               Column("expiring_certificates", S)), width=24,
              description="From the certificates' known expiry dates, if nothing is renewed and nobody is hired "
              "(docs/alerts.md, Early warning)."),
    )  # fmt: skip


def build_all(directory: Path, rules: Rules, alerts_directory: Path | None = None) -> list[Path]:
    """Write every dashboard's JSON into `directory`, and the alert rules' provisioning file into
    `alerts_directory` (default: the same folder)."""
    from dashboards.alerting import alert_rules_provisioning

    directory.mkdir(parents=True, exist_ok=True)
    alerts_directory = alerts_directory or directory
    alerts_directory.mkdir(parents=True, exist_ok=True)
    files = []
    for d in dashboards(rules):
        f = directory / f"{d.uid}.json"
        f.write_text(json.dumps(d.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        files.append(f)
    return [*files, alert_rules_provisioning(alerts_directory, rules)]


def markdown(rules: Rules) -> str:
    """docs/dashboards.md: every dashboard, panel and alert rule with the query it runs."""
    from dashboards.alerting import alert_rules

    out = ["# Dashboards and alert rules", "",
           "Generated from `dashboards/catalog.py` and `dashboards/alerting.py` (a test keeps this page in step).",
           "Every query runs on ClickHouse 18.16 and current releases through the official plugin",
           "(`grafana-clickhouse-datasource`); `$__conditionalAll`, `$__timeFilter` and `$__interval_s` are the",
           "plugin's macros, `${city:singlequote}` Grafana's variables. Consumer lag lives in Kafka: the worker",
           "samples it into `pipeline_metrics` on a timer (docs/alerts.md, \"Pipeline health\").", ""]  # fmt: skip
    for d in dashboards(rules):
        out += [f"## {d.title} (`{d.uid}`)", ""]
        for p in d.panels:
            cols = ", ".join(f"{c.name} ({c.kind})" for c in p.columns)
            out += [f"### {p.title}", "", f"{p.type}, returns {cols}", "", "```sql", p.sql.strip(), "```", ""]
    out += ["## Alert rules", ""]
    for r in alert_rules(rules):
        cond = r["data"][2]["model"]["conditions"][0]["evaluator"]
        out += [f"### {r['title']} (`{r['uid']}`, fires when the value is {cond['type']} {cond['params'][0]})", "",
                "```sql", r["data"][0]["model"]["rawSql"], "```", ""]  # fmt: skip
    return "\n".join(out)


def all_panels(rules: Rules) -> list[tuple[Dashboard, Panel]]:
    return [(d, p) for d in dashboards(rules) for p in d.panels]

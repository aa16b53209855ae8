"""Pipeline health samples, the forecast rows, `dualtrack status` and `dualtrack alerts preview`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from documents.preview import preview, render
from dualtrack.cli import app
from dualtrack.replay import replay
from rules.limits import load_rules
from rules.recipients import SchoolInfo, parse_recipients
from sinks.embedded import EmbeddedStore
from streams.health import Counts, sample_pipeline
from streams.lag import lag_of
from tests.dashboard_cases import HEALTH_AT, fill_health
from tests.helpers import ROOT, example
from tests.unit.test_notification_policy import rec

T0 = datetime.fromisoformat("2025-09-01T10:00:00+08:00")
runner = CliRunner()


def test_lag_is_the_end_offset_less_the_committed_one() -> None:
    ends = {("t", 0): 100, ("t", 1): 50, ("u", 0): 7}
    assert lag_of({("t", 0): 90, ("t", 1): 50}, ends) == {("t", 0): 10, ("t", 1): 0, ("u", 0): 7}
    assert lag_of({("t", 0): 120}, {("t", 0): 100}) == {("t", 0): 0}  # never negative


def test_a_sample_has_lag_rates_and_only_the_schools_whose_last_event_changed() -> None:
    before = Counts(T0, received=1_000, kept=900, dead_lettered=10)
    now = Counts(T0 + timedelta(seconds=60), received=1_600, kept=1_380, dead_lettered=13)
    last = {"SD0001": T0, "SD0002": T0 - timedelta(days=100)}
    rows = sample_pipeline(
        now, before, {("dualtrack.kept", 0): 42}, last, reported={"SD0002": last["SD0002"]}
    )
    got = {(r["metric"], r["topic"], r["partition"], r["school_id"]): r["value"] for r in rows}
    assert got == {
        ("consumer_lag", "dualtrack.kept", 0, ""): 42.0,
        ("events_in_per_s", "", -1, ""): 10.0,  # 600 in 60 s
        ("events_out_per_s", "", -1, ""): 8.0,  # 480 in 60 s
        ("dead_letters_per_s", "", -1, ""): 0.05,  # 3 in 60 s
        ("last_event_at", "", -1, "SD0001"): T0.timestamp(),  # SD0002 is unchanged since the last sample
    }
    assert all(r["at"] == now.at for r in rows)
    first = sample_pipeline(before, None, {}, last)  # no rates without a sample before
    assert {r["metric"] for r in first} == {"last_event_at"} and len(first) == 2


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("health")
    with EmbeddedStore(path) as st:
        replay(st, [example("province-small.jsonl")], load_rules())
        fill_health(st, example("province-small.jsonl"))
    yield path


def test_status_prints_the_health_summary_from_the_store(store_path: Path) -> None:
    result = runner.invoke(app, ["status", "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "consumer lag (messages): dualtrack.intake 5, dualtrack.kept 2" in out  # the latest sample
    assert "events in 1.7/s, out 1.6/s, dead letters 0.00/s" in out  # 500 and 475 in 5 minutes
    assert "Schools projected to fall short within 90 days: 2" in out
    assert "SD0005 (higher)" in out and "below on 2025-04-19 (in 19 days" in out
    assert "schools silent for more than 90 days: 6" in out  # the example's last events are in early 2025


def test_the_forecast_rows_replace_a_warning_a_school_no_longer_has(store_path: Path) -> None:
    from rules.engine import fold
    from schemas.validation import Accepted, validate
    from streams.health import forecast_rows

    rules = load_rules()
    lines = example("province-small.jsonl").read_bytes().splitlines()
    province = fold([r for x in lines if isinstance(r := validate(x), Accepted)], rules).province
    rows = forecast_rows(province, [], HEALTH_AT, 2)  # nothing projected now
    assert {r["school_id"] for r in rows} == {sid for sid, s in province.schools.items() if s.registered}
    assert len(rows) == 6
    assert all(r["warning"] == 0 and r["falls_below_on"] == "" for r in rows)


def test_preview_shows_each_recipient_its_notices_and_digests() -> None:
    rules = load_rules()
    rs = parse_recipients({"schools": {"SD0001": [{"id": "hr1", "email": "hr@sd1.cn", "language": "en"}]},
                           "province": [{"id": "duty", "webhook": "https://x.example/", "severities": ["critical"]}]})  # fmt: skip
    records = [rec("fired", T0, severity="critical", caused_by=("e1",)),
               rec("fired", T0 + timedelta(hours=1), rule="certificate_expiring", subject="C1", value=None),
               rec("fired", T0 + timedelta(days=3), school="SD0002", rule="feed_stale", value=91.0)]  # fmt: skip
    schools = {"SD0001": SchoolInfo("Jinan No. 1", "jinan")}
    p = preview(records, rs, schools, rules, T0 + timedelta(days=2))
    hr1, duty = p.inboxes
    assert p.transitions == 2  # the third is after T
    assert [o.title for _, o in hr1.notices] == [
        "[critical] Jinan No. 1: Student-teacher ratio above the limit"
    ]
    [(sent, digest)] = hr1.digests
    assert (
        sent == datetime.fromisoformat("2025-09-02T08:00:00+08:00")
        and "1 certificates at 1 schools" in digest.body
    )
    assert len(duty.notices) == 1 and duty.digests == []  # critical only
    text = render(p)
    assert "== hr1 (-; school SD0001; en; email) ==" in text and "immediate notices: 1; digests: 1" in text
    only = preview(records, rs, schools, rules, T0 + timedelta(days=2), recipient="duty")
    assert [b.recipient.id for b in only.inboxes] == ["duty"]


def test_alerts_preview_command_reads_the_store(store_path: Path) -> None:
    args = ["alerts", "preview", "--as-of", "2025-12-31T23:59:59+08:00", "--store", str(store_path),
            "--recipients", str(ROOT / "docs" / "recipients.example.yaml")]  # fmt: skip
    result = runner.invoke(app, [*args, "--recipient", "province-duty"])
    assert result.exit_code == 0, result.output
    assert "== province-duty" in result.output and "transitions" in result.output
    result = runner.invoke(app, [*args, "--recipient", "sd0002-hr"])
    assert (
        result.exit_code == 0
        and "== sd0002-hr (HR office, SD0002; school SD0002; en; webhook) ==" in result.output
    )
    bad = runner.invoke(app, [*args, "--recipient", "nobody"])
    assert bad.exit_code != 0

"""The `dualtrack` command line."""

from __future__ import annotations

import json
import sys
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from dualtrack.schools import app as schools_app
from foundation.errors import DualtrackError
from foundation.settings import Settings
from schemas.national_id import mask_text

app = typer.Typer(
    help="dualtrack: track dual-teacher certificates, degree upgrades and skill-master studios.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
infra_app = typer.Typer(help="Start, stop and check the local Kafka broker and ClickHouse server.",
                        no_args_is_help=True)  # fmt: skip
db_app = typer.Typer(help="The store's tables.", no_args_is_help=True)
schema_app = typer.Typer(help="The event contract.", no_args_is_help=True)
dashboards_app = typer.Typer(help="Grafana dashboards and alert rules as code.", no_args_is_help=True)
alerts_app = typer.Typer(help="Alert notices: who is told what, and when.", no_args_is_help=True)
app.add_typer(infra_app, name="infra")
app.add_typer(db_app, name="db")
app.add_typer(schema_app, name="schema")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(alerts_app, name="alerts")
app.add_typer(schools_app, name="schools")

# Data (school ids, names, messages) is printed as it is: never read as rich markup or emoji codes.
out = Console(markup=False, emoji=False, highlight=False)
err = Console(stderr=True, markup=False, emoji=False, highlight=False)

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="An embedded chDB store folder (default: the store the settings name)."),
]


class ReportFormat(StrEnum):
    json = "json"
    table = "table"
    html = "html"
    xlsx = "xlsx"
    pdf = "pdf"


class Language(StrEnum):
    zh = "zh-CN"
    en = "en"


class CountsFormat(StrEnum):
    text = "text"
    json = "json"


def _parse_time(value: str | None, option: str = "--as-of") -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 time such as 2025-12-31T23:59:59+08:00", param_hint=option
        ) from None
    if t.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} has no offset; write e.g. 2025-12-31T23:59:59+08:00", param_hint=option
        )
    return t


KnownOnOpt = Annotated[
    str | None,
    typer.Option(
        "--known-on",
        help="Only the events that had arrived by this ISO 8601 time (what was known then; default: all).",
    ),
]


def _rules(settings: Settings):  # type: ignore[no-untyped-def]
    from rules.limits import load_rules

    return load_rules(settings.rules_file)


# --- replay and report ---------------------------------------------------------------------------------


@app.command()
def replay(
    files: Annotated[list[Path], typer.Argument(help="JSON-lines event files.", exists=True, dir_okay=False)],
    store: StoreOpt = None,
    fmt: Annotated[CountsFormat, typer.Option("--format", help="text or json.")] = CountsFormat.text,
    arrived_at: Annotated[
        str | None,
        typer.Option(
            "--arrived-at",
            help="When these events arrived, for a backfill whose arrival is known (ISO 8601; default: now).",
        ),
    ] = None,
) -> None:
    """Apply event files to the store without a broker, through the same rules as the stream."""
    from dualtrack.replay import replay as run
    from sinks import open_store

    settings = Settings()
    now = datetime.now(UTC)
    arrived = _parse_time(arrived_at, "--arrived-at") if arrived_at is not None else None
    if arrived is not None and arrived > now:
        raise typer.BadParameter(f"{arrived_at!r} is in the future", param_hint="--arrived-at")
    with open_store(settings, path=store) as st:
        counts = run(st, files, _rules(settings), now=now, arrived_at=arrived)
    if fmt is CountsFormat.json:
        print(json.dumps(counts.as_dict()))
    else:
        out.print(
            f"{counts.lines} lines: applied {counts.applied}, duplicates {counts.duplicates}, "
            f"dead-lettered {counts.dead_lettered}, blank {counts.blank}"
        )


@app.command()
def report(
    store: StoreOpt = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="ISO 8601 time with offset (default: now).")
    ] = None,
    known_on: KnownOnOpt = None,
    publish: Annotated[
        bool,
        typer.Option(
            "--publish",
            help="Record this report as published, for the briefings' revisions (docs/domain.md).",
        ),
    ] = False,
    fmt: Annotated[
        ReportFormat,
        typer.Option("--format", help="json (the contract), table, or the briefing as html, xlsx or pdf."),
    ] = ReportFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")] = None,
    lang: Annotated[Language, typer.Option("--lang", help="The briefing's language.")] = Language.zh,
    city: Annotated[str | None, typer.Option("--city", help="A briefing of one city's schools only.")] = None,
    national: Annotated[
        bool, typer.Option("--national", help="The Ministry's roll-up of every province (needs --provinces).")
    ] = False,
    provinces: Annotated[
        Path | None,
        typer.Option(
            "--provinces",
            envvar="DUALTRACK_PROVINCES_FILE",
            dir_okay=False,
            help="With --national: the YAML file naming each province's store.",
        ),
    ] = None,
) -> None:
    """The staffing report at a time T (docs/domain.md section 10), or the department's briefing."""
    from documents.report import report_for_now, report_from_store, to_json, to_table
    from schemas.reference import CITY_CIRCLE
    from sinks import open_store

    settings = Settings()
    t = _parse_time(as_of)
    known = _parse_time(known_on, "--known-on") if known_on is not None else None
    if output is not None and not output.parent.is_dir():  # say so before the work, not after
        raise DualtrackError(f"cannot write {output}: the folder {output.parent} does not exist")
    if publish and (national or city is not None):
        raise typer.BadParameter(
            "publishes the province's report: no --national or --city", param_hint="--publish"
        )
    if national:
        if known is not None:
            raise typer.BadParameter(
                "--national is the roll-up of now: no --known-on", param_hint="--known-on"
            )
        _national_report(provinces, fmt, output, as_of, city)
        return
    if fmt in (ReportFormat.xlsx, ReportFormat.pdf) and output is None:
        raise typer.BadParameter(f"--format {fmt.value} writes a file: give --output", param_hint="--output")
    if city is not None and city not in CITY_CIRCLE:
        raise typer.BadParameter(
            f"{city!r} is not one of {', '.join(sorted(CITY_CIRCLE))}", param_hint="--city"
        )
    rules = _rules(settings)
    if fmt in (ReportFormat.html, ReportFormat.xlsx, ReportFormat.pdf):
        from documents.briefing import render_html, render_pdf, render_xlsx
        from documents.briefing.history import briefing_from_store

        with open_store(settings, path=store) as st:
            briefing = briefing_from_store(st, rules, t, known_on=known)
            if publish:
                _publish(st, rules, briefing.report, t, known)
        if output is None:  # html to the terminal
            sys.stdout.write(render_html(briefing, lang=lang.value, city=city))
            return
        if fmt is ReportFormat.xlsx:
            render_xlsx(briefing, output, lang=lang.value, city=city)
        elif fmt is ReportFormat.pdf:
            render_pdf(render_html(briefing, lang=lang.value, city=city), output)
        else:
            output.write_text(render_html(briefing, lang=lang.value, city=city), encoding="utf-8")
        err.print(f"{fmt.value} briefing written to {output}")
        return
    with open_store(settings, path=store) as st:
        if as_of is None and known is None:
            data = report_for_now(st, rules, t)
        else:
            data = report_from_store(st, rules, t, known_on=known)
        if publish:
            _publish(st, rules, data, t, known)
    if fmt is ReportFormat.table:
        if output is None:
            out.print(to_table(data))
            return
        with open(output, "w", encoding="utf-8") as fh:
            Console(file=fh, width=160, markup=False, emoji=False, highlight=False).print(to_table(data))
        return
    text = to_json(data)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        err.print(f"report written to {output}")
    else:
        sys.stdout.write(text + "\n")


def _publish(st: Any, rules: Any, data: Mapping[str, Any], as_of: datetime, known: datetime | None) -> None:
    """Keep a report as published (docs/domain.md, "Published and revised") and say so."""
    from documents.report import publish

    known_on, pid = publish(st, rules, data, as_of, known)
    err.print(f"published the report as of {as_of.isoformat()}, known on {known_on.isoformat()} ({pid})")


def _national_report(
    provinces: Path | None, fmt: ReportFormat, output: Path | None, as_of: str | None, city: str | None
) -> None:
    from documents import national as nat

    if provinces is None:
        raise typer.BadParameter("--national reads the stores named in a provinces file: give --provinces")
    if as_of is not None or city is not None:
        raise typer.BadParameter("--national is the roll-up of now, by province: no --as-of or --city")
    if fmt is ReportFormat.pdf or (fmt is ReportFormat.xlsx and output is None):
        raise typer.BadParameter("--national takes --format json, table, html, or xlsx with --output")
    data = nat.national_report(nat.load_provinces(provinces))
    if fmt is ReportFormat.xlsx and output is not None:
        nat.to_xlsx(data, output)
        err.print(f"national roll-up written to {output}")
        return
    if fmt is ReportFormat.table:
        if output is None:
            out.print(nat.to_table(data))
        else:
            with open(output, "w", encoding="utf-8") as fh:
                Console(file=fh, width=200, markup=False, emoji=False, highlight=False).print(
                    nat.to_table(data)
                )
        return
    text = nat.to_html(data) if fmt is ReportFormat.html else json.dumps(data, ensure_ascii=False, indent=2)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n", encoding="utf-8")
        err.print(f"national roll-up written to {output}")


# --- the stream ---------------------------------------------------------------------------------------


@app.command()
def worker(
    exit_when_idle: Annotated[
        float | None,
        typer.Option(
            "--exit-when-idle",
            metavar="SECONDS",
            min=0,
            help="Exit once the input has been drained for this long and every result is written.",
        ),
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Faust log level.")] = "warning",
) -> None:
    """Run the stream processors (validation, duplicates, engine, dead letters, notifier)."""
    from streams.worker import run_worker

    run_worker(Settings(), exit_when_idle, loglevel)


@app.command()
def produce(
    files: Annotated[list[Path], typer.Argument(help="JSON-lines event files.", exists=True, dir_okay=False)],
    raw: Annotated[bool, typer.Option("--raw", help="Send every line as it is, unvalidated.")] = False,
    as_schools: Annotated[
        bool,
        typer.Option(
            "--as-schools",
            help="Send each line as the school it names, with a login made now for every school of the "
            "files (needs the broker's admin password: demos, tests, loading a simulated province).",
        ),
    ] = False,
) -> None:
    """Publish JSON-lines event files to each school's intake topic (validated locally unless --raw),
    logged in as DUALTRACK_KAFKA_USERNAME (a school's user writes only its own topic)."""
    from streams.producer import produce_files, school_key

    settings = Settings()
    if not as_schools:
        summary = produce_files(settings, files, raw=raw, console=err)
    else:
        from dualtrack.schools import BULK_LINGER_MS, SchoolSenders
        from schemas.jsonlines import read_lines

        ids = dict.fromkeys(school_key(line) for f in files for line in read_lines(f))
        with SchoolSenders(settings, ids, linger_ms=BULK_LINGER_MS) as senders:
            summary = produce_files(settings, files, raw=raw, console=err, producer=senders)
    out.print(
        f"{summary.lines} lines: sent {summary.sent}, rejected locally {summary.rejected}, "
        f"not sent {summary.failed}, blank {summary.blank}"
        + "".join(f"\n  line {n}: {reason}" for n, reason in summary.examples)
    )
    if summary.rejected or summary.failed:
        raise typer.Exit(1)


@app.command()
def simulate(
    output: Annotated[
        Path | None,
        typer.Argument(help="JSON-lines file to write (omit with --kafka); with --scale national, a folder."),
    ] = None,
    schools: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Number of schools, at least 1 (with --scale national: of the country, "
            "dealt out over the 31 provinces by population).",
        ),
    ] = None,
    scale: Annotated[
        str, typer.Option(help="province (about 550 schools) or national (31 provinces, 11,000 schools).")
    ] = "province",
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same events.")] = 7,
    years: Annotated[int, typer.Option(min=1, max=50, help="Years of history, ending today (1-50).")] = 3,
    kafka: Annotated[
        bool, typer.Option("--kafka", help="Produce to the intake topic instead of a file.")
    ] = False,
    rate: Annotated[
        float | None, typer.Option(help="With --kafka: events per second (history plays in compressed time).")
    ] = None,
) -> None:
    """A deterministic simulated province: several years of HR events, with realistic noise."""
    import time as time_
    from datetime import date as date_

    from dualtrack.simulate import SCALES, Simulator, write_jsonl

    if schools is None and scale not in SCALES:
        raise typer.BadParameter(f"--scale must be one of {sorted(SCALES)}")
    if (output is None) == (not kafka):
        raise typer.BadParameter("give an OUTPUT file or --kafka (one of them)")
    today = datetime.now(UTC).date()
    if scale == "national":
        if output is None:
            raise typer.BadParameter(
                "--scale national writes a folder of province files; stream one with --kafka"
            )
        from dualtrack.simulate import simulate_country

        if output.exists() and not output.is_dir():
            raise typer.BadParameter(
                f"{output} is a file: --scale national writes a folder of province files"
            )
        try:
            files, total = simulate_country(output, schools or SCALES["national"], seed,
                                            date_(today.year - years, today.month, 1), years)  # fmt: skip
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
        except OSError as error:
            raise DualtrackError(f"cannot write the province files into {output}: {error.strerror}") from None
        out.print(f"wrote {total} events of {len(files)} provinces to {output} (one file per province)")
        return
    sim = Simulator(
        schools if schools is not None else SCALES[scale],
        seed,
        start=date_(today.year - years, today.month, 1),
        years=years,
    )
    events = sim.events()
    if output is not None:
        out.print(f"wrote {write_jsonl(events, str(output))} events to {output}")
        return
    from dualtrack.schools import BULK_LINGER_MS, SchoolSenders

    settings = Settings()
    started = time_.monotonic()
    # each simulated school gets its own login and sends as itself (on a PLAINTEXT broker: one producer)
    linger = {} if rate else {"linger_ms": BULK_LINGER_MS}
    with SchoolSenders(settings, sorted({e["school_id"] for e in events}), **linger) as senders:
        for n, e in enumerate(events, 1):
            senders.send_raw(json.dumps(e, ensure_ascii=False).encode(), key=e["school_id"])
            if rate:  # pace the stream: event n leaves no earlier than n / rate seconds after the start
                ahead = n / rate - (time_.monotonic() - started)
                if ahead > 0:
                    time_.sleep(ahead)
    out.print(
        f"sent {len(events)} events to {settings.topic('intake')}* in {time_.monotonic() - started:.1f}s"
    )


@app.command()
def demo(
    schools: Annotated[
        int, typer.Option(min=1, help="Schools to simulate (550 is a whole province: about 9 minutes here).")
    ] = 150,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 7,
    out_dir: Annotated[Path, typer.Option("--out", help="Where the report and events go.")] = Path(
        "out/demo"
    ),
    keep_running: Annotated[
        bool, typer.Option(help="Keep the worker running after the input is drained.")
    ] = False,
    idle: Annotated[float, typer.Option(help="Seconds of drained input before the worker stops.")] = 8.0,
) -> None:
    """Stream a simulated province through real Kafka into the embedded store, live, then report."""
    from dualtrack.demo import run_demo

    raise typer.Exit(
        run_demo(schools, seed, out_dir, keep_running, idle, Console(emoji=False, highlight=False))
    )


@app.command("import-roster")
def import_roster(
    csv_file: Annotated[Path, typer.Argument(help="The HR office's CSV export (UTF-8 or GBK).", exists=True)],
    school: Annotated[str, typer.Option("--school", help="The school the roster belongs to.")],
    as_of: Annotated[str, typer.Option("--as-of", help="The roster's date, YYYY-MM-DD.")],
    store: StoreOpt = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the events to this JSON-lines file, not to Kafka."),
    ] = None,
) -> None:
    """Turn a school's roster into the events that explain how it differs from the school's state."""
    from datetime import date as date_

    from dualtrack.roster import diff, read_roster, roster_time
    from rules.engine import fold
    from sinks import open_store
    from sinks.eventlog import EventLog

    try:
        day = date_.fromisoformat(as_of)
    except ValueError:
        raise typer.BadParameter(f"--as-of {as_of!r} is not a date YYYY-MM-DD") from None
    settings = Settings()
    secret = settings.producer_secret.get_secret_value() if settings.producer_secret else None
    rows = read_roster(csv_file, secret)
    at = roster_time(day)  # the state the roster is compared with: everything up to its date
    with open_store(settings, path=store) as st:
        province = fold(EventLog(st).events(until=at), _rules(settings), at).province
    events = diff(province, school, rows, day)
    from schemas.validation import Rejected, validate

    bad = [(e, r) for e in events if isinstance(r := validate(json.dumps(e)), Rejected)]
    if bad:  # nothing is sent for a roster with an invalid cell
        details = "; ".join(f"{e['payload'].get('teacher_id', '')}: {r.message}" for e, r in bad[:5])
        raise DualtrackError(f"{len(bad)} roster rows give invalid events, nothing sent: {details}")
    if output is not None:
        output.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")
    elif events:
        from streams.producer import EventProducer

        with EventProducer(settings) as producer:
            for e in events:
                producer.send(e)
    kinds = (
        ", ".join(f"{n} {k}" for k, n in sorted(Counter(e["event_type"] for e in events).items())) or "none"
    )
    out.print(f"{len(rows)} roster rows for {school}: {len(events)} events ({kinds})"
              + (f" written to {output}" if output else " sent" if events else ""))  # fmt: skip


@dashboards_app.command("build")
def dashboards_build(
    directory: Annotated[Path, typer.Argument(help="Folder for the dashboard JSON files.")],
    alerts: Annotated[Path | None, typer.Option(help="Folder for alert-rules.yaml (default: DIR).")] = None,
) -> None:
    """Write the seven dashboards and the alert rules' provisioning file."""
    from dashboards.catalog import build_all

    files = build_all(directory, _rules(Settings()), alerts)
    out.print(f"wrote {len(files)} files to {directory}: " + ", ".join(f.name for f in files))


@dashboards_app.command("publish")
def dashboards_publish(
    url: Annotated[str, typer.Option(help="Grafana's URL, e.g. http://127.0.0.1:3000")],
    token: Annotated[str, typer.Option(help="A service account token.", envvar="GRAFANA_TOKEN")],
    clickhouse_host: Annotated[
        str, typer.Option(help="ClickHouse host as Grafana reaches it.")
    ] = "clickhouse",
    clickhouse_port: Annotated[
        int, typer.Option(help="ClickHouse native port as Grafana reaches it.")
    ] = 9000,
    database: Annotated[str, typer.Option(help="The dualtrack database.")] = "dualtrack",
    clickhouse_user: Annotated[
        str, typer.Option(help="The read-only ClickHouse user Grafana queries as.")
    ] = "grafana_reader",
    set_password: Annotated[
        bool, typer.Option("--set-password", help="Send the user's password again (after rotating it).")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; write nothing.")] = False,
) -> None:
    """Push the folder, datasource, dashboards and alert rules to Grafana (idempotent). The datasource's
    password is DUALTRACK_CLICKHOUSE_READER_PASSWORD (or this machine's generated one)."""
    from grafana_client import GrafanaApi

    from dashboards.publish import publish
    from foundation.localsecrets import secret

    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise typer.BadParameter(
            f"{url!r} is not Grafana's address, such as http://127.0.0.1:3000", param_hint="--url"
        )
    settings = Settings()
    try:
        password: str | None = secret(settings, "clickhouse_reader")
    except DualtrackError:  # publish says what is missing, unless this is a dry run
        password = None
    import niquests

    api = GrafanaApi.from_url(url, credential=token)
    try:
        steps = publish(
            api, _rules(settings), clickhouse_host, clickhouse_port, database, dry_run=dry_run,
            password=password, username=clickhouse_user, set_password=set_password,
        )  # fmt: skip
    except niquests.ConnectionError:
        raise DualtrackError(
            f"cannot reach Grafana at {url}: is it running, and is the address right?"
        ) from None
    for s in steps:
        out.print(
            f"{'would ' if dry_run and s.action != 'unchanged' else ''}{s.action:<9} {s.kind:<11} {s.uid}"
        )
    changed = sum(s.action != "unchanged" for s in steps)
    out.print(f"{changed} change(s){' planned' if dry_run else ''}, {len(steps) - changed} unchanged")


@alerts_app.command("preview")
def alerts_preview(
    as_of: Annotated[str, typer.Option("--as-of", help="ISO 8601 time with offset.")],
    recipient: Annotated[str | None, typer.Option("--recipient", help="Only this recipient's id.")] = None,
    recipients: Annotated[
        Path | None, typer.Option(help="Recipients file (default: DUALTRACK_RECIPIENTS_FILE).", exists=True)
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Print what each recipient would receive (notices and digests) for the transitions up to T."""
    from documents.preview import preview_from_store, render
    from rules.recipients import load_recipients
    from sinks import open_store

    settings = Settings()
    file = recipients or settings.recipients_file
    readers = load_recipients(file) if file else []
    with open_store(settings, path=store) as st:
        out.print(
            render(preview_from_store(st, _rules(settings), readers, _parse_time(as_of), recipient)),
            soft_wrap=True,
        )


@app.command()
def status(store: StoreOpt = None, known_on: KnownOnOpt = None) -> None:
    """The pipeline's health from the store: consumer lag, rates, silent schools, early warnings; with
    --known-on, the events that arrived since then."""
    from documents.status import status_text
    from sinks import open_store

    settings = Settings()
    rules = _rules(settings)
    known = _parse_time(known_on, "--known-on") if known_on is not None else None
    with open_store(settings, path=store) as st:
        now = datetime.now(UTC)
        text = status_text(st, now, rules.feed_stale_days, rules.notifications.forecast_days, known)
    out.print(text, soft_wrap=True)


@app.command()
def gateway(
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on.", min=1, max=65535)] = 8088,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="PEM certificate chain: serve HTTPS (with --tls-key).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM key of --tls-cert.")] = None,
) -> None:
    """The HTTPS gateway: schools POST their events with their token (`schools add` prints it) and read
    their own feedback; it logs in to Kafka as `gateway` (docs/gateway.md)."""
    import logging

    from aiohttp import web

    from gateway.app import Gateway, tls_context

    settings = Settings()
    context = tls_context(
        tls_cert or settings.gateway_tls_cert_file, tls_key or settings.gateway_tls_key_file
    )
    app = Gateway(settings).app()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    scheme = "https" if context else "http"
    err.print(
        f"gateway: serving {scheme}://{host}:{port}/v1/events for the schools of {settings.topic_prefix!r}"
    )
    web.run_app(app, host=host, port=port, ssl_context=context, print=None, access_log=None)


@app.command()
def pool(
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Which worker owns what, from the consumer groups' assignment: each member of the intake group and
    the school topics it validates, and the member that runs the engine (the others stand by)."""
    from streams.lag import Offsets
    from streams.topics import Groups, worker_of

    if fmt not in ("table", "json"):
        _fail(f"--format must be table or json, not {fmt!r}", USAGE)
    from kafka.errors import KafkaError

    settings = Settings()
    groups = Groups.of(settings)
    try:
        with Offsets(settings, client_id="dualtrack-pool") as offsets:
            intake, engine = offsets.owners(groups.intake), offsets.owners(groups.engine)
    except KafkaError as error:
        raise DualtrackError(
            f"cannot read the worker groups from Kafka at {settings.kafka_bootstrap_servers} "
            f"({type(error).__name__}): is the broker up, and may this user describe the groups?"
        ) from None
    accepted = settings.topic("accepted")
    members: dict[str, dict[str, Any]] = {}
    for client, parts in intake.items():
        members.setdefault(worker_of(settings, client), {"school_topics": 0, "engine": False})
        members[worker_of(settings, client)]["school_topics"] += len(parts)
    for client, parts in engine.items():
        members.setdefault(worker_of(settings, client), {"school_topics": 0, "engine": False})
        members[worker_of(settings, client)]["engine"] |= any(t == accepted for t, _ in parts)
    if fmt == "json":
        groups_seen = {"intake_group": groups.intake, "engine_group": groups.engine}
        out.print_json(data={**groups_seen, "workers": members})
        return
    if not members:
        out.print(f"no worker is in the groups {groups.intake} and {groups.engine}")
        return
    for name, m in sorted(members.items()):
        role = "engine" if m["engine"] else "standby"
        out.print(f"{name:<32} {m['school_topics']:>6} school topics  {role}")


# --- db --------------------------------------------------------------------------------------------------


@db_app.command("migrate")
def db_migrate(store: StoreOpt = None) -> None:
    """Apply the store's migrations (safe to run twice)."""
    from sinks import open_store

    with open_store(Settings(), path=store) as st:
        applied = st.migrate()
        out.print(f"{st.kind} store {st.database}: applied {applied or 'nothing new'}; "
                  f"now at {st.applied_migrations()}")  # fmt: skip


# --- infra -----------------------------------------------------------------------------------------------


class Only(StrEnum):
    kafka = "kafka"
    clickhouse = "clickhouse"


BrokersOpt = Annotated[
    int | None,
    typer.Option("--brokers", min=1, max=5, help="Kafka brokers (one KRaft quorum; default "
                 "DUALTRACK_KAFKA_BROKERS, 1). Three give every topic three copies."),
]  # fmt: skip
OnlyOpt = Annotated[Only | None, typer.Option("--only", help="Only this service.")]


def _services(brokers: int | None, only: Only | None) -> list[Any]:
    from infra import all_services

    chosen = all_services(Settings(), brokers)
    return [s for s in chosen if only is None or s.name.split("-")[0] == only.value]


@infra_app.command("up")
def infra_up(brokers: BrokersOpt = None, only: OnlyOpt = None) -> None:
    """Fetch or install, then start Kafka and ClickHouse (starting twice is harmless)."""
    from infra import up_all
    from infra.kafka import Kafka, bootstrap_servers

    if brokers == 2:
        raise typer.BadParameter(
            "two brokers survive the loss of neither: use 1, or 3 and more", param_hint="--brokers"
        )
    services = _services(brokers, only)
    up_all(services, lambda message: out.print(message, soft_wrap=True))
    nodes = sum(isinstance(s, Kafka) for s in services)
    if nodes > 1:
        every = bootstrap_servers(Settings(), nodes)
        out.print(f"clients: DUALTRACK_KAFKA_BOOTSTRAP_SERVERS={every}", soft_wrap=True)


@infra_app.command("down")
def infra_down(only: OnlyOpt = None) -> None:
    """Stop the services that `infra up` started (by pid file; every broker), and nothing else."""
    for svc in reversed(_services(None, only)):
        out.print(svc.down())


@infra_app.command("status")
def infra_status() -> None:
    """Show whether Kafka and ClickHouse are up; exit code 1 when one is not."""
    ok = True
    for svc in _services(None, None):
        s = svc.status()
        ok &= s.running
        mark = Text("up", style="green") if s.running else Text("down", style="red")
        pid = f" pid {s.pid}" if s.pid else ""
        out.print(Text.assemble(f"{s.name:<11} ", mark, f"  {s.address}{pid}  ({s.detail})"))
    if not ok:
        raise typer.Exit(1)


@infra_app.command("fetch")
def infra_fetch() -> None:
    """Download Kafka's jars and install ClickHouse and Chromium, without starting anything."""
    from infra.clickhouse import install
    from infra.debian import install_browser
    from infra.kafka import fetch

    out.print(fetch())
    out.print(install())
    out.print(install_browser())


# --- schema ----------------------------------------------------------------------------------------------


@schema_app.command("export")
def schema_export(
    directory: Annotated[Path, typer.Argument(help="Folder to write the JSON Schemas to.")],
) -> None:
    """Write one JSON Schema file per event type, plus the envelope."""
    from schemas.jsonschema import export

    files = export(directory)
    out.print(f"wrote {len(files)} JSON Schema files to {directory}")


#: the exit code of a usage error (a bad argument or option), as click and typer give it
USAGE = 2


def _fail(message: str, code: int = 1) -> None:
    err.print(Text.assemble(("error: ", "red"), mask_text(message)), soft_wrap=True)
    sys.exit(code)


def main() -> None:
    """The console script: expected failures end with one line on stderr and a non-zero exit."""
    try:
        code = typer.main.get_command(app)(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.TyperException as e:  # typer's public base of its usage and file errors
        message = e.format_message()
        if e.exit_code != USAGE:
            _fail(message, e.exit_code)
        # a bad argument or option: one line, and where to look
        if not message:  # a group called without a command has printed its help already
            sys.exit(e.exit_code)
        ctx = getattr(e, "ctx", None)  # the command the usage error was raised in, when known
        command = getattr(ctx, "command_path", None) or "dualtrack"
        _fail(f"{message.replace('Value error, ', '')} (see `{command} --help`)", e.exit_code)
    except typer.Abort:
        _fail("aborted", 1)
    except DualtrackError as e:
        _fail(str(e))
    except ValidationError as e:  # a DUALTRACK_* setting (its value is never repeated: it may be secret)
        problems = "; ".join(
            f"DUALTRACK_{'_'.join(map(str, x['loc'])).upper()}: {x['msg'].removeprefix('Value error, ')}"
            for x in e.errors(include_input=False, include_url=False)
        )
        _fail(f"invalid setting {problems}")
    except OSError as e:  # a file or folder named on the command line cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        why = "a file is in the way of a folder" if isinstance(e, FileExistsError) else (e.strerror or e)
        _fail(f"{where}{why}")
    except KeyboardInterrupt:
        _fail("interrupted", 130)


if __name__ == "__main__":
    main()

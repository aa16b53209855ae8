"""The gateway over real HTTP (aiohttp's test server) with the embedded store and a recording stand-in
for Kafka: tokens, an answer per line, what is sent where, limits, and each school's own view.
The same behaviour on the real broker and server: tests/integration/test_gateway.py."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import TOKEN_REFRESH_SECONDS, BrokerDown, Gateway, gateway_origin, language
from gateway.openapi import openapi
from schemas.validation import Reason, rejected
from sinks.embedded import EmbeddedStore
from sinks.eventlog import EventLog
from sinks.tokens import SchoolTokens
from tests.helpers import hire, isolated_settings, register

VALID_ID = "11010519491231002X"  # the textbook national ID number, with its check character
NOW = datetime(2025, 3, 10, 4, 0, tzinfo=UTC)


class Recorder:
    """Kafka as the gateway sees it: records every acknowledged send; `down` makes sends fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes]] = []
        self.down = False

    async def send_all(self, records: list[tuple[str, str, bytes]]) -> None:
        if self.down:
            raise BrokerDown("KafkaConnectionError")
        self.sent += records

    async def close(self) -> None:
        pass

    def on(self, topic: str) -> list[bytes]:
        return [v for t, _, v in self.sent if t == topic]


class Harness:
    def __init__(self, client: TestClient[Any, Any], store: EmbeddedStore, kafka: Recorder,
                 tokens: dict[str, str]) -> None:  # fmt: skip
        self.client, self.store, self.kafka, self.tokens = client, store, kafka, tokens

    async def post(self, school: str | None, body: bytes, content_type: str = "application/x-ndjson") -> Any:
        headers = {"Content-Type": content_type}
        if school is not None:
            headers["Authorization"] = f"Bearer {self.tokens.get(school, school)}"
        return await self.client.post("/v1/events", data=io.BytesIO(body), headers=headers)


def lines(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


@pytest.fixture()
async def gw(tmp_path: Path) -> AsyncIterator[Harness]:
    settings = isolated_settings(tmp_path, gateway_rate_lines=50.0, gateway_burst_lines=60,
                                 gateway_max_lines=50, gateway_body_seconds=0.5)  # fmt: skip
    store = EmbeddedStore(tmp_path / "store")
    store.migrate()
    tokens = {s: str(SchoolTokens(store).issue(s, NOW)) for s in ("SA", "SB")}
    kafka = Recorder()
    gateway = Gateway(settings, sender=kafka, store_factory=lambda: store, now=lambda: NOW)
    client = TestClient(TestServer(gateway.app()))
    await client.start_server()
    try:
        yield Harness(client, store, kafka, tokens)
    finally:
        await client.close()
        store.close()


async def test_a_missing_or_wrong_token_is_refused_with_401_and_counted_without_the_token(
    gw: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    body = lines(register("SA", "2025-01-02T08:00:00+08:00"))
    for school in (None, "dtk_not-a-live-token"):
        r = await gw.post(school, body)
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in (await r.json())["error"]
    health = await (await gw.client.get("/healthz")).json()
    assert health["refused_logins"] == 2
    assert "dtk_not-a-live-token" not in caplog.text and gw.tokens["SA"] not in caplog.text
    assert gw.kafka.sent == []


async def test_each_line_is_answered_in_order_and_only_accepted_lines_reach_the_intake_topic(
    gw: Harness,
) -> None:
    mine = [register("SA", "2025-01-02T08:00:00+08:00"), hire("SA", "2025-02-01T08:00:00+08:00", "T1")]
    theirs = hire("SB", "2025-02-01T09:00:00+08:00", "T-forged")
    body = lines(mine[0], theirs) + b"not json\n\n" + lines(mine[1], mine[0])
    r = await gw.post("SA", body)
    assert r.status == 200
    answer = await r.json()
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (2, 1, 2)
    got = [(a["line"], a["status"], a["reason"]) for a in answer["lines"]]
    assert got == [(1, "accepted", None), (2, "rejected", "foreign_school"), (3, "rejected", "not_json"),
                   (5, "accepted", None), (6, "duplicate", None)]  # fmt: skip
    assert answer["lines"][1]["event_id"] == theirs["event_id"]
    intake = [json.loads(v)["event_id"] for v in gw.kafka.on("dt.intake.SA")]
    assert intake == [mine[0]["event_id"], mine[1]["event_id"]]
    assert all(t != "dt.intake.SB" for t, _, _ in gw.kafka.sent)  # the forged line reached no intake
    dead = [json.loads(v) for v in gw.kafka.on("dt.dead-letters")]
    assert [(d["reason"], d["origin"]) for d in dead] == [("foreign_school", gateway_origin("SA")),
                                                          ("not_json", gateway_origin("SA"))]  # fmt: skip


async def test_a_body_sent_again_is_answered_duplicate_and_sends_nothing_new(gw: Harness) -> None:
    body = lines(register("SA", "2025-01-02T08:00:00+08:00"))
    assert (await (await gw.post("SA", body)).json())["accepted"] == 1
    again = await (await gw.post("SA", body)).json()
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    assert len(gw.kafka.on("dt.intake.SA")) == 1


async def test_a_kept_event_is_a_duplicate_and_other_content_under_its_id_a_conflict(gw: Harness) -> None:
    from tests.helpers import accepted

    kept = register("SA", "2025-01-02T08:00:00+08:00")
    EventLog(gw.store).append([accepted(kept)], NOW)
    changed = {**kept, "payload": {**kept["payload"], "name": "renamed"}}
    answer = await (await gw.post("SA", lines(kept, changed))).json()
    assert [(a["status"], a["reason"]) for a in answer["lines"]] == [
        ("duplicate", None),
        ("rejected", Reason.conflicting_duplicate.value),
    ]
    assert gw.kafka.on("dt.intake.SA") == []


async def test_a_json_array_is_taken_item_by_item(gw: Harness) -> None:
    events = [register("SA", "2025-01-02T08:00:00+08:00"), {"event_id": "x"}]
    answer = await (await gw.post("SA", json.dumps(events).encode(), "application/json")).json()
    assert [(a["line"], a["status"]) for a in answer["lines"]] == [(1, "accepted"), (2, "rejected")]


async def test_a_national_id_is_rejected_and_masked_in_the_answer_and_the_dead_letter(gw: Harness) -> None:
    line = hire("SA", "2025-02-01T08:00:00+08:00", VALID_ID)
    r = await gw.post("SA", lines(line))
    text = await r.text()
    assert (
        r.status == 200 and VALID_ID not in text and json.loads(text)["lines"][0]["reason"] == "national_id"
    )
    assert gw.kafka.on("dt.intake.SA") == []
    assert all(VALID_ID.encode() not in v for _, _, v in gw.kafka.sent)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"x" * 6_000_000, "application/x-ndjson", 413),  # over the 5 MB default
        (b'{"a": 1}\n' * 51, "application/x-ndjson", 413),  # over the line limit (50 here)
        (b"[1, 2", "application/json", 400),
        (b"{}", "application/xml", 415),
    ],
)
async def test_bodies_refused_as_a_whole_get_one_line_of_json(
    gw: Harness, body: bytes, content_type: str, status: int
) -> None:
    r = await gw.post("SA", body, content_type)
    assert r.status == status and r.content_type == "application/json"
    reason = (await r.json())["error"]
    assert reason and "\n" not in reason and "Traceback" not in reason
    assert gw.kafka.sent == []


async def test_a_slow_body_is_cut_off_with_408(gw: Harness) -> None:
    assert gw.client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.client.port)
    writer.write(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                 b"Authorization: Bearer " + gw.tokens["SA"].encode() + b"\r\nContent-Length: 1000\r\n\r\n{")  # fmt: skip
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status.startswith(b"HTTP/1.1 408")


async def test_broker_down_is_503_with_retry_after_and_the_retry_is_answered_in_full(gw: Harness) -> None:
    body = lines(register("SA", "2025-01-02T08:00:00+08:00"))
    gw.kafka.down = True
    r = await gw.post("SA", body)
    assert r.status == 503 and int(r.headers["Retry-After"]) > 0 and "again" in (await r.json())["error"]
    gw.kafka.down = False
    answer = await (await gw.post("SA", body)).json()
    assert answer["accepted"] == 1  # nothing was remembered as sent from the failed attempt


async def test_one_school_flooding_spends_only_its_own_rate(gw: Harness) -> None:
    flood = lines(*[hire("SA", "2025-02-01T08:00:00+08:00", f"T{i}") for i in range(40)])
    assert (await gw.post("SA", flood)).status == 200
    over = await gw.post("SA", flood)  # 80 > the burst of 60
    assert over.status == 429 and int(over.headers["Retry-After"]) >= 1
    other = await gw.post("SB", lines(register("SB", "2025-01-02T08:00:00+08:00")))
    assert other.status == 200


async def test_a_rotated_or_revoked_token_is_refused(gw: Harness) -> None:
    body = lines(register("SA", "2025-01-02T08:00:00+08:00"))
    old = gw.tokens["SA"]
    new = gw.tokens["SA"] = str(SchoolTokens(gw.store).issue("SA", NOW))
    assert (await gw.post("SA", body)).status == 200  # the new one: an unknown token reads them again
    gw.tokens["SA"] = old
    assert (await gw.post("SA", body)).status == 401  # the rotated-away one, at the same read
    assert SchoolTokens(gw.store).revoke("SA", NOW)
    await asyncio.sleep(TOKEN_REFRESH_SECONDS + 0.1)  # a live token is trusted this long (the docs' 5 s)
    gw.tokens["SA"] = new
    assert (await gw.post("SA", body)).status == 401  # the revoked one


async def test_the_school_view_shows_its_own_dead_letters_and_no_other_schools(gw: Harness) -> None:
    from tests.helpers import accepted

    EventLog(gw.store).append([accepted(register("SA", "2025-01-02T08:00:00+08:00"))], NOW)
    claims_a = rejected(Reason.foreign_school, "sent by SB for SA", b'{"school_id": "SA"}', "SA")
    own = rejected(Reason.not_json, "not JSON", b"oops", "")
    EventLog(gw.store).dead_letter([(claims_a, "dt.intake.SB", NOW), (own, gateway_origin("SA"), NOW)])
    r = await gw.client.get("/v1/school", headers={"Authorization": f"Bearer {gw.tokens['SA']}",
                                                   "Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})  # fmt: skip
    view = await r.json()
    assert r.status == 200 and r.headers["Content-Language"] == "en" and view["language"] == "en"
    assert [(d["reason"], d["raw"]) for d in view["dead_letters"]] == [("not_json", "oops")]
    assert view["dead_letters"][0]["reason_text"] == "Not strict JSON in UTF-8"
    assert len(view["days"]) == 30 and view["days"][-1] == {
        "day": "2025-03-10",
        "kept": 1,
        "dead_lettered": 1,
    }
    assert view["last_arrival"].startswith("2025-03-10")
    zh = await (
        await gw.client.get("/v1/school", headers={"Authorization": f"Bearer {gw.tokens['SB']}"})
    ).json()
    assert zh["language"] == "zh-CN" and [d["reason"] for d in zh["dead_letters"]] == ["foreign_school"]
    assert "最近一次收到数据" in zh["summary"]


def test_accept_language_picks_the_first_of_zh_and_en_by_quality() -> None:
    assert language("") == "zh-CN"
    assert language("fr-FR, en;q=0.8, zh-CN;q=0.9") == "zh-CN"
    assert language("en-US,zh;q=0.5") == "en"
    assert language("de") == "zh-CN"


async def test_the_openapi_document_describes_the_answers_the_gateway_gives(gw: Harness) -> None:
    spec = await (await gw.client.get("/v1/openapi.json")).json()
    assert spec["openapi"].startswith("3.1") and spec == json.loads(json.dumps(openapi()))
    components = spec["components"]["schemas"]

    def check(instance: object, name: str) -> None:
        jsonschema.validate(instance, {**components[name], "components": spec["components"]})

    body = lines(register("SA", "2025-01-02T08:00:00+08:00")) + b"[]\n"
    check(await (await gw.post("SA", body)).json(), "EventsAnswer")
    check(await (await gw.post(None, body)).json(), "ErrorAnswer")
    check(await (await gw.client.get("/v1/school", headers={"Authorization": f"Bearer {gw.tokens['SA']}"})).json(),
          "SchoolAnswer")  # fmt: skip
    check(register("SA", "2025-01-02T08:00:00+08:00"), "Event")
    with pytest.raises(jsonschema.ValidationError):
        check({"event_type": "school.registered"}, "Event")


def _examples() -> list[str]:
    """The shell blocks of docs/gateway.md's "Examples" (but the one that sets the variables)."""
    import re

    from tests.helpers import ROOT

    text = (ROOT / "docs" / "gateway.md").read_text(encoding="utf-8")
    section = text.split("## Examples", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [b for b in blocks if not b.lstrip().startswith("export ")]


async def test_every_curl_example_of_the_gateway_manual_runs(gw: Harness, tmp_path: Path) -> None:
    examples = _examples()
    assert len(examples) >= 5
    events = [register("SA", "2025-01-02T08:00:00+08:00"), hire("SA", "2025-02-01T08:00:00+08:00", "T1")]
    (tmp_path / "events.jsonl").write_bytes(lines(*events, {"event_id": "not a uuid"}))
    env = {"PATH": "/usr/bin:/bin", "DUALTRACK_GATEWAY": str(gw.client.make_url("")).rstrip("/"),
           "TOKEN": gw.tokens["SA"]}  # fmt: skip
    outputs = []
    for script in examples:
        proc = await asyncio.create_subprocess_exec(
            "bash", "-euo", "pipefail", "-c", script, cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, (script, err.decode())
        outputs.append(out.decode())
    first, array, rejects, view, contract = outputs[:5]
    assert json.loads(first)["accepted"] == 2 and json.loads(first)["rejected"] == 1
    assert (json.loads(array)["duplicates"], json.loads(array)["rejected"]) == (2, 1)
    assert [json.loads(x)["reason"] for x in rejects.splitlines()] == ["envelope_invalid"]
    assert json.loads(view)["language"] == "en" and contract.strip() == "3.1.0"


def test_the_memory_of_sent_events_is_bounded_and_per_school() -> None:
    from gateway.limits import Recent

    recent = Recent(size=2)
    recent.remember("SA", [("e1", "h1"), ("e2", "h2")])
    recent.remember("SB", [("e3", "h3")])
    assert recent.hashes("SA", ["e1", "e2"]) == {"e2": "h2"}  # the oldest went first
    assert recent.hashes("SB", ["e3", "e2"]) == {"e3": "h3"}  # another school's events are not its own


async def test_a_store_that_is_away_is_a_503_with_one_line_not_a_traceback(tmp_path: Path) -> None:
    from foundation.errors import StoreError

    def away() -> EmbeddedStore:
        raise StoreError("the ClickHouse server at 127.0.0.1:9000 cannot be reached")

    gateway = Gateway(isolated_settings(tmp_path), sender=Recorder(), store_factory=away)
    client = TestClient(TestServer(gateway.app()))
    await client.start_server()
    try:
        r = await client.post("/v1/events", data=b"{}", headers={"Authorization": "Bearer dtk_x"})
        assert r.status == 503 and int(r.headers["Retry-After"]) > 0
        assert "store" in (await r.json())["error"] and "Traceback" not in await r.text()
    finally:
        await client.close()


async def test_a_line_over_a_mebibyte_is_refused_and_its_dead_letter_still_fits_one_record(
    gw: Harness,
) -> None:
    import base64

    line = b'{"school_id": "SA", "x": "' + b"a" * 3_000_000 + b'"}'
    answer = await (await gw.post("SA", line)).json()
    assert [a["reason"] for a in answer["lines"]] == ["too_large"]
    (dead,) = [json.loads(v) for v in gw.kafka.on("dt.dead-letters")]
    assert len(base64.b64decode(dead["raw_b64"])) == 1_048_576  # its first MiB, not 3 MB


async def _head_only(gw: Harness, token: str) -> bytes:
    """The status line the gateway answers to a request head with Expect: 100-continue (no body sent)."""
    assert gw.client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.client.port)
    writer.write(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                 b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 2000000\r\n"
                 b"Expect: 100-continue\r\n\r\n")  # fmt: skip
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return status


async def test_expect_100_continue_asks_for_the_body_only_with_a_live_token(gw: Harness) -> None:
    assert (await _head_only(gw, "dtk_wrong")).startswith(b"HTTP/1.1 401")
    assert (await _head_only(gw, gw.tokens["SA"])).startswith(b"HTTP/1.1 100")


async def test_error_messages_mask_national_ids_and_a_broken_body_is_a_400(gw: Harness) -> None:
    r = await gw.client.get(f"/v1/{VALID_ID}")
    assert r.status == 404 and VALID_ID not in await r.text()
    digits_only = "110105194912310038"  # a valid number with a digit for its check character
    r = await gw.post("SA", f'[{{"a": {digits_only}e999}}]'.encode(), "application/json")  # not a double
    assert r.status == 400 and digits_only not in await r.text()
    headers = {"Authorization": f"Bearer {gw.tokens['SA']}", "Content-Type": "application/x-ndjson",
               "Content-Encoding": "gzip"}  # fmt: skip
    r = await gw.client.post("/v1/events", data=b"not gzip at all", headers=headers)
    assert r.status == 400 and "Content-Encoding" in (await r.json())["error"]

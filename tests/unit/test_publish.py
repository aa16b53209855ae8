"""`dashboards publish` against a local HTTP server that implements the Grafana endpoints used and
checks each request against Grafana's documented API; a second publish changes nothing."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from dualtrack.cli import app

TOKEN = "glsa_test_token"
READER_PASSWORD = "reader-Password-for-the-test"


class FakeGrafana(BaseHTTPRequestHandler):
    state: dict[str, dict[str, Any]]
    writes: list[tuple[str, str]]
    violations: list[str]
    secure: dict[str, dict[str, str]]  # datasource uid -> secureJsonData, which Grafana never returns

    def _reply(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _check_auth(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.violations.append(f"{self.command} {self.path}: no bearer token")
            self._reply(401, {"message": "Unauthorized"})
            return False
        return True

    def _body(self) -> dict[str, Any]:
        if "json" not in (self.headers.get("Content-Type") or ""):
            self.violations.append(f"{self.command} {self.path}: body not sent as JSON")
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

    def do_GET(self) -> None:
        if not self._check_auth():
            return
        s = self.state
        for pattern, store in ((r"^/api/folders/([\w-]+)$", "folders"),
                               (r"^/api/datasources/uid/([\w-]+)$", "datasources"),
                               (r"^/api/dashboards/uid/([\w-]+)$", "dashboards"),
                               (r"^/api/v1/provisioning/alert-rules/([\w-]+)$", "rules")):  # fmt: skip
            if m := re.match(pattern, self.path):
                item = s[store].get(m.group(1))
                if item is None:
                    return self._reply(404, {"message": "not found"})
                return self._reply(200, item)
        self.violations.append(f"GET {self.path}: not an endpoint this client should use")
        self._reply(404, {"message": "unknown"})

    def do_POST(self) -> None:
        self._write()

    def do_PUT(self) -> None:
        self._write()

    def _write(self) -> None:
        if not self._check_auth():
            return
        body, s, path = self._body(), self.state, self.path
        self.writes.append((self.command, path))
        if self.command == "POST" and path == "/api/folders":
            if not body.get("title") or not body.get("uid"):
                self.violations.append("POST /api/folders needs title and uid")
            s["folders"][body["uid"]] = {"uid": body["uid"], "title": body["title"]}
            return self._reply(200, s["folders"][body["uid"]])
        if (self.command == "POST" and path == "/api/datasources") or (
            self.command == "PUT" and path.startswith("/api/datasources/uid/")
        ):
            for key in ("name", "type", "access", "jsonData"):
                if key not in body:
                    self.violations.append(f"{self.command} {path}: datasource without {key}")
            secure = body.pop("secureJsonData", None) or {}
            self.secure[body["uid"]] = secure
            s["datasources"][body["uid"]] = {**body, "secureJsonFields": dict.fromkeys(secure, True)}
            return self._reply(200, {"datasource": body, "message": "Datasource added"})
        if self.command == "POST" and path == "/api/dashboards/db":
            d = body.get("dashboard", {})
            if not d.get("uid") or not d.get("title") or "panels" not in d or body.get("folderUid") is None:
                self.violations.append(
                    "POST /api/dashboards/db needs dashboard.uid, title, panels and folderUid"
                )
            version = s["dashboards"].get(d["uid"], {}).get("dashboard", {}).get("version", 0) + 1
            s["dashboards"][d["uid"]] = {"dashboard": {**d, "id": 7, "version": version},
                                         "meta": {"folderUid": body.get("folderUid")}}  # fmt: skip
            return self._reply(200, {"status": "success", "uid": d["uid"], "version": version})
        if path.startswith("/api/v1/provisioning/alert-rules"):
            if self.headers.get("X-Disable-Provenance") != "true":
                self.violations.append(
                    f"{self.command} {path}: rules would not stay editable (X-Disable-Provenance)"
                )
            for key in (
                "title",
                "condition",
                "data",
                "folderUID",
                "ruleGroup",
                "noDataState",
                "execErrState",
                "for",
            ):
                if key not in body:
                    self.violations.append(f"{self.command} {path}: alert rule without {key}")
            s["rules"][body["uid"]] = {**body, "id": 3, "provenance": ""}
            return self._reply(201 if self.command == "POST" else 200, s["rules"][body["uid"]])
        self.violations.append(f"{self.command} {path}: not an endpoint this client should use")
        self._reply(404, {"message": "unknown"})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def grafana(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DUALTRACK_CLICKHOUSE_READER_PASSWORD", READER_PASSWORD)
    FakeGrafana.state = {"folders": {}, "datasources": {}, "dashboards": {}, "rules": {}}
    FakeGrafana.writes, FakeGrafana.violations, FakeGrafana.secure = [], [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGrafana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", FakeGrafana
    server.shutdown()
    server.server_close()


def _publish(url: str, *extra: str) -> str:
    result = CliRunner().invoke(app, ["dashboards", "publish", "--url", url, "--token", TOKEN, *extra])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_publish_creates_everything_then_a_second_publish_changes_nothing(grafana) -> None:  # type: ignore[no-untyped-def]
    url, fake = grafana
    plan = _publish(url, "--dry-run")
    assert "would create" in plan and fake.writes == []  # a dry run writes nothing
    first = _publish(url)
    assert not fake.violations, fake.violations
    assert len(fake.state["dashboards"]) == 7 and len(fake.state["rules"]) >= 4
    ds = fake.state["datasources"]["dualtrack-clickhouse"]
    assert ds["type"] == "grafana-clickhouse-datasource" and ds["jsonData"]["username"] == "grafana_reader"
    assert fake.secure["dualtrack-clickhouse"] == {"password": READER_PASSWORD}  # only in secureJsonData
    assert READER_PASSWORD not in json.dumps(ds) + plan + first
    assert "0 unchanged" in first
    writes = len(fake.writes)
    second = _publish(url)
    assert len(fake.writes) == writes, fake.writes[writes:]
    assert "0 change(s)" in second
    rotated = _publish(url, "--set-password")  # after a rotation: the datasource is written again
    assert "update    datasource" in rotated and fake.writes[writes:] == [
        ("PUT", "/api/datasources/uid/dualtrack-clickhouse")
    ]


def test_publish_without_the_readers_password_names_the_setting(grafana, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url, fake = grafana
    monkeypatch.delenv("DUALTRACK_CLICKHOUSE_READER_PASSWORD")
    monkeypatch.setenv("DUALTRACK_VAR_DIR", str(tmp_path))  # no local secrets file either
    result = CliRunner().invoke(app, ["dashboards", "publish", "--url", url, "--token", TOKEN])
    assert result.exit_code != 0 and "DUALTRACK_CLICKHOUSE_READER_PASSWORD" in str(result.exception)
    assert fake.writes == []

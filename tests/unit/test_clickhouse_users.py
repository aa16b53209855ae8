"""The local ClickHouse server's users: password hashes only, each limited as docs/security.md says;
and a server URL that is never repeated in an error."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from foundation.errors import StoreError
from foundation.localsecrets import secret
from infra.clickhouse import local_url, user_values
from sinks.base import parse_url
from tests.helpers import PASSWORD, ROOT, isolated_settings


@pytest.mark.parametrize(
    "url", [f"clickhouse://u:{PASSWORD}/x@h:9000/db", f"clickhouse://u:{PASSWORD}@h:99999999/db"]
)
def test_a_bad_clickhouse_url_is_refused_without_repeating_it(url: str) -> None:
    with pytest.raises(StoreError) as err:
        parse_url(url)
    assert PASSWORD[:6] not in str(err.value) and "percent-encoded" in str(err.value)


def test_clickhouse_users_get_hashes_only(tmp_path: Path) -> None:
    s = isolated_settings(tmp_path, clickhouse_url="clickhouse://dualtrack_writer:x@h:9000/province")
    values = user_values(s)
    assert values["DATABASE"] == "province"
    assert values["READER_SHA256"] == hashlib.sha256(secret(s, "clickhouse_reader").encode()).hexdigest()
    text = (ROOT / "infra" / "clickhouse" / "users.xml").read_text()
    for key in values:
        assert "${" + key + "}" in text
    reader = text.split("<grafana_reader>")[1].split("</grafana_reader>")[0]
    assert "<profile>readonly</profile>" in reader and "<database>${DATABASE}</database>" in reader
    assert re.search(r"<readonly>\s*<[^>]+>.*<readonly>1</readonly>", text.split("</profiles>")[0], re.S)
    assert "<password>" not in text
    url = local_url(s, "grafana_reader")
    assert url.startswith("clickhouse://grafana_reader:") and url.endswith("/province")

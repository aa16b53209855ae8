"""`dualtrack dashboards publish`: the folder, datasource, dashboards and alert rules through Grafana's
HTTP API with grafana-client. Each object is read first and written only when it differs, so a
second publish changes nothing; `--dry-run` prints the plan without writing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboards.alerting import FOLDER_UID, alert_rules
from dashboards.catalog import dashboards
from dashboards.model import DATASOURCE_UID
from foundation.errors import DualtrackError
from rules.limits import Rules

_VOLATILE = {"id", "version", "updated", "provenance", "folderUID", "ruleGroup", "orgID"}


@dataclass(frozen=True)
class Step:
    kind: str  # folder | datasource | dashboard | alert-rule
    uid: str
    action: str  # create | update | unchanged


#: the read-only ClickHouse user Grafana queries as (infra/clickhouse/users.xml, docs/security.md)
READER = "grafana_reader"


def datasource_model(host: str, port: int, database: str, username: str = READER) -> dict[str, Any]:
    """The datasource as Grafana returns it; the password goes in `secureJsonData`, which Grafana never
    returns (it answers `secureJsonFields: {"password": true}`), so it is not part of the comparison."""
    return {
        "uid": DATASOURCE_UID, "name": "dualtrack ClickHouse", "type": "grafana-clickhouse-datasource",
        "access": "proxy", "isDefault": True,
        "jsonData": {"host": host, "port": port, "protocol": "native", "secure": False, "username": username,
                     "defaultDatabase": database},
    }  # fmt: skip


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in _VOLATILE}


def _missing(err: Exception) -> bool:
    return getattr(err, "status_code", None) == 404


def publish(
    api: Any,
    rules: Rules,
    host: str,
    port: int,
    database: str,
    dry_run: bool = False,
    password: str | None = None,
    username: str = READER,
    set_password: bool = False,
) -> list[Step]:
    """Bring Grafana in line with the code; returns what was (or, with dry_run, would be) done. The
    datasource's ClickHouse password is sent when the datasource is written, when Grafana holds none,
    or with `set_password` (after rotating it); it is never read back or printed."""
    from grafana_client.client import GrafanaClientError

    if not dry_run and password is None:  # before any write: half a publish would be worse than none
        raise DualtrackError(
            f"the datasource needs the ClickHouse password of {username}: "
            "set DUALTRACK_CLICKHOUSE_READER_PASSWORD"
        )
    steps: list[Step] = []

    def get(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except GrafanaClientError as err:
            if _missing(err):
                return None
            raise DualtrackError(f"Grafana refused {fn.__name__}{args}: {err}") from None

    if get(api.folder.get_folder, FOLDER_UID) is None:
        steps.append(Step("folder", FOLDER_UID, "create"))
        if not dry_run:
            api.folder.create_folder("dualtrack", uid=FOLDER_UID)
    else:
        steps.append(Step("folder", FOLDER_UID, "unchanged"))

    wanted_ds = datasource_model(host, port, database, username)
    have_ds = get(api.datasource.get_datasource_by_uid, DATASOURCE_UID)
    body = {**wanted_ds, "secureJsonData": {"password": password}}
    if have_ds is None:
        steps.append(Step("datasource", DATASOURCE_UID, "create"))
        if not dry_run:
            api.datasource.create_datasource(body)
    elif (
        {k: have_ds.get(k) for k in wanted_ds} != wanted_ds
        or not (have_ds.get("secureJsonFields") or {}).get("password")
        or set_password
    ):
        steps.append(Step("datasource", DATASOURCE_UID, "update"))
        if not dry_run:
            api.datasource.update_datasource_by_uid(DATASOURCE_UID, body)
    else:
        steps.append(Step("datasource", DATASOURCE_UID, "unchanged"))

    for d in dashboards(rules):
        model = d.to_json()
        have = get(api.dashboard.get_dashboard, d.uid)
        same = have is not None and _strip(have.get("dashboard", {})) == _strip(model)
        in_folder = have is not None and have.get("meta", {}).get("folderUid") == FOLDER_UID
        if same and in_folder:
            steps.append(Step("dashboard", d.uid, "unchanged"))
            continue
        steps.append(Step("dashboard", d.uid, "create" if have is None else "update"))
        if not dry_run:
            api.dashboard.update_dashboard({"dashboard": model, "folderUid": FOLDER_UID, "overwrite": True,
                                            "message": "dualtrack dashboards publish"})  # fmt: skip

    for rule in alert_rules(rules):
        body = {**rule, "folderUID": FOLDER_UID, "ruleGroup": "dualtrack", "orgID": 1}
        have = get(api.alertingprovisioning.get_alertrule, rule["uid"])
        if have is not None and _strip(have) == _strip(body):
            steps.append(Step("alert-rule", rule["uid"], "unchanged"))
            continue
        steps.append(Step("alert-rule", rule["uid"], "create" if have is None else "update"))
        if dry_run:
            continue
        if have is None:
            api.alertingprovisioning.create_alertrule(body, disable_provenance=True)
        else:
            api.alertingprovisioning.update_alertrule(rule["uid"], body, disable_provenance=True)
    return steps

"""The ClickHouse plugin's macro expansion and Grafana's variable interpolation, for testing panels'
SQL against a real ClickHouse (grafana/clickhouse-datasource pkg/macros/macros.go)."""

from __future__ import annotations

import re
from datetime import datetime

ALL = "$__all"


def _args(text: str, start: int) -> tuple[list[str], int]:
    """Split a macro's parenthesised arguments at top-level commas; returns them and the end index."""
    depth = 0
    args: list[str] = []
    cur: list[str] = []
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "(":
            depth += 1
            if depth == 1:
                i += 1
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(cur).strip())
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    raise ValueError(f"unbalanced macro arguments in {text[start : start + 80]!r}")


def expand(
    sql: str, variables: dict[str, list[str] | str], start: datetime, end: datetime, interval_s: int
) -> str:
    """`sql` as the plugin sends it: variables interpolated, macros expanded."""

    def is_all(name: str) -> bool:
        v = variables.get(name, ALL)
        return v == ALL or v == [ALL]

    # $__conditionalAll(cond, $var): the condition, or 1=1 when "All" is selected
    while (m := re.search(r"\$__conditionalAll\(", sql)) is not None:
        args, end_i = _args(sql, m.end() - 1)
        cond, var = args[0], args[1].lstrip("$").strip("{}")
        sql = sql[: m.start()] + ("1=1" if is_all(var) else cond) + sql[end_i:]
    for name, value in variables.items():
        values = value if isinstance(value, list) else [value]
        quoted = ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
        sql = sql.replace("${" + name + ":singlequote}", quoted).replace("${" + name + "}", ",".join(values))
        sql = re.sub(r"\$" + name + r"\b", ",".join(values), sql)
    frm, to = int(start.timestamp()), int(end.timestamp())
    while (m := re.search(r"\$__timeFilter\(", sql)) is not None:
        args, end_i = _args(sql, m.end() - 1)
        sql = (
            sql[: m.start()]
            + f"{args[0]} >= toDateTime({frm}) AND {args[0]} <= toDateTime({to})"
            + sql[end_i:]
        )
    sql = sql.replace("$__fromTime", f"toDateTime({frm})").replace("$__toTime", f"toDateTime({to})")
    sql = sql.replace("$__interval_s", str(max(interval_s, 1)))
    if "$" in sql:
        raise ValueError(f"unexpanded macro or variable left in: {sql[sql.index('$') :][:60]!r}")
    return sql

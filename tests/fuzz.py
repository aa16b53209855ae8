"""The fuzz property shared by the chDB and server tests: arbitrary byte lines and mutated valid events
mixed into a valid stream never make replay raise, the counts add up, the report equals the report of
the valid lines alone, and no table holds a national ID number."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from documents.report import report_from_store
from dualtrack.replay import replay
from rules.limits import load_rules
from schemas.validation import Accepted, validate
from tests.helpers import example, national_ids_in
from tests.hostile import HOSTILE, NATIONAL_ID

RULES = load_rules()
AS_OF = datetime.fromisoformat("2025-12-31T23:59:59+08:00")
#: a valid stream small enough to replay many times: the example's first 250 lines
BASE = example("province-small.jsonl").read_bytes().split(b"\n")[:250]

_MUTATIONS: list[Callable[[dict[str, Any], random.Random], Any]] = [
    lambda o, r: o.pop(r.choice(list(o))),
    lambda o, r: o.__setitem__(r.choice(list(o)), r.choice([None, 0, -1, 1e300, "", [], {}, True, "x" * 300])),
    lambda o, r: o.__setitem__("occurred_at", r.choice(["0001-01-01T00:00:00Z", "2100-01-01T00:00:00Z",
                                                         "2025-02-30T00:00:00+08:00", "2025-01-01"])),
    lambda o, r: o.get("payload", {}).__setitem__(r.choice(["teacher_id", "counts", "year", "level"]),
                                                  r.choice([NATIONAL_ID, 10**22, 1949, -5, "\u0085", None])),
    lambda o, r: o.__setitem__("school_id", r.choice(["[/x]", NATIONAL_ID, "\u2028", "'; DROP TABLE x; --"])),
]  # fmt: skip


def mutated(line: bytes, rnd: random.Random) -> bytes:
    obj = json.loads(line)
    obj["event_id"] = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
    _MUTATIONS[rnd.randrange(len(_MUTATIONS))](obj, rnd)
    return json.dumps(obj, ensure_ascii=rnd.random() < 0.5).encode()


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """(the mixed lines, the valid lines alone)."""
    rnd = draw(st.randoms(use_true_random=False))
    extra: list[bytes] = draw(st.lists(st.binary(max_size=80), max_size=6))
    extra += [mutated(rnd.choice([b for b in BASE if b]), rnd) for _ in range(draw(st.integers(0, 8)))]
    extra += [h[1] for h in draw(st.lists(st.sampled_from(HOSTILE), max_size=4)) if len(h[1]) < 100_000]
    mixed = list(BASE)
    for line in extra:
        mixed.insert(rnd.randrange(len(mixed) + 1), line.replace(b"\n", b" "))
    valid: list[bytes] = []
    seen: set[str] = set()
    for line in mixed:
        e = validate(line.removesuffix(b"\r"))
        if isinstance(e, Accepted) and e.event_id not in seen:
            seen.add(e.event_id)
            valid.append(line)
        elif isinstance(e, Accepted) and e.event_id in seen:
            valid.append(line)  # a later copy: a duplicate or a conflicting one, judged the same way
    return mixed, valid


def check(open_store: Callable[[str], Any], tmp: Path, mixed: list[bytes], valid: list[bytes]) -> None:
    """Replay both streams into fresh stores (`open_store(name)`) and compare."""
    (tmp / "mixed.jsonl").write_bytes(b"".join(line + b"\n" for line in mixed))
    (tmp / "valid.jsonl").write_bytes(b"".join(line + b"\n" for line in valid))
    with open_store("valid") as st_valid:
        replay(st_valid, [tmp / "valid.jsonl"], RULES)
        want = report_from_store(st_valid, RULES, AS_OF)
    with open_store("mixed") as st_mixed:
        counts = replay(st_mixed, [tmp / "mixed.jsonl"], RULES).as_dict()
        assert counts["applied"] + counts["duplicates"] + counts["dead_lettered"] + counts["blank"] == len(
            mixed
        )
        assert report_from_store(st_mixed, RULES, AS_OF) == want
        assert national_ids_in(st_mixed) == []

"""Revisions of published figures (docs/domain.md, "Published and revised"): for each report a
department published, what it said and what is known now, and the late events that moved it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rules.limits import Revisions

#: the headline figures of a report compared (its `province` block; the studio target is a constant)
HEADLINE = ("schools", "students", "full_time_teachers", "studios_active", "studios_compliant", "green_share")
#: a school's indicators compared, each with its threshold in the rules file
INDICATORS = ("student_teacher_ratio", "dual_share", "postgraduate_share", "senior_title_share")


@dataclass(frozen=True)
class Moved:
    """One figure as published and as known now (None: not in that report)."""

    figure: str  # a HEADLINE figure, an INDICATOR, "status", or "school" (the school itself)
    published: Any
    now: Any
    school_id: str = ""  # "" for a headline figure
    late_events: int = 0  # the school's events dated by the publication's time that arrived after it


@dataclass(frozen=True)
class Revision:
    """A publication and what moved since: every headline figure that differs, every school indicator
    that moved past its threshold."""

    as_of: datetime
    known_on: datetime
    published_at: datetime
    headline: tuple[Moved, ...]
    schools: tuple[Moved, ...]
    late_events: int  # in all
    late_schools: int  # schools with late events


def revision(
    published: Mapping[str, Any],
    now: Mapping[str, Any],
    late: Mapping[str, int],
    thresholds: Revisions,
    times: tuple[datetime, datetime, datetime],
) -> Revision:
    """Compare a published report with the report of the same time as known now; `late` counts the
    late events per school; `times` are the publication's as_of, known_on and published_at."""
    headline = tuple(
        Moved(k, published["province"].get(k), now["province"].get(k))
        for k in HEADLINE
        if published["province"].get(k) != now["province"].get(k)
    )
    before = {s["school_id"]: s for s in published["schools"]}
    after = {s["school_id"]: s for s in now["schools"]}
    schools: list[Moved] = []
    for sid in sorted(before.keys() | after.keys()):
        p, n, k = before.get(sid), after.get(sid), late.get(sid, 0)
        if p is None or n is None:
            schools.append(Moved("school", p is not None, n is not None, sid, k))
            continue
        schools += [
            Moved(ind, p.get(ind), n.get(ind), sid, k)
            for ind in INDICATORS
            if thresholds.moved(ind, p.get(ind), n.get(ind))
        ]
        if p.get("status") != n.get("status"):
            schools.append(Moved("status", p.get("status"), n.get("status"), sid, k))
    return Revision(*times, headline, tuple(schools), sum(late.values()), sum(1 for v in late.values() if v))

"""A deterministic (seeded) simulated province: schools, teachers, certificates, degree programmes,
studios and enrollments over a few years, with realistic noise (late events, duplicates, a few
invalid events, a school that stops reporting).

The mixes aim at the published figures (national statistics, 2023): secondary ratio near 17-18, higher near 19,
dual-teacher share of professional teachers near 56-60%, postgraduate share near 10% in secondary
schools; about 0.9 studios per school (about 500 at province scale).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from schemas.reference import CITY_CIRCLE, Community

CST = timezone(timedelta(hours=8))
CITIES = list(CITY_CIRCLE)
LEVELS = [("secondary", 0.70), ("higher", 0.18), ("technician", 0.10), ("undergraduate", 0.02)]
RATIO = {"secondary": 17.6, "higher": 18.9, "technician": 17.0, "undergraduate": 17.6}
POSTGRAD = {"secondary": 0.10, "higher": 0.35, "technician": 0.12, "undergraduate": 0.55}
SCALES = {"province": 550, "national": 11_000}


class Simulator:
    def __init__(
        self,
        schools: int = 550,
        seed: int = 7,
        start: date = date(2023, 1, 1),
        years: int = 3,
        prefix: str = "SD",
    ) -> None:
        self.rnd = random.Random(seed)
        #: school ids are the prefix and a number (a province's ISO letters in the national simulation)
        self.prefix = prefix
        self.n_schools = schools
        self.start = datetime(start.year, start.month, start.day, 8, tzinfo=CST)
        self.end = self.start + timedelta(days=365 * years + years // 4)
        self._uuid = random.Random(seed + 1)
        self.stale_school = ""

    def _id(self) -> str:
        return str(uuid.UUID(int=self._uuid.getrandbits(128), version=4))

    def _at(self, t: datetime) -> str:
        return t.replace(microsecond=0).isoformat()

    def _ev(self, event_type: str, school: str, t: datetime, payload: dict[str, Any]) -> dict[str, Any]:
        return {"event_id": self._id(), "event_type": event_type, "schema_version": 1, "school_id": school,
                "occurred_at": self._at(t), "emitted_at": self._at(t + timedelta(minutes=self.rnd.randint(1, 600))),
                "source": f"hr-{school}", "payload": payload}  # fmt: skip

    def _when(self, lo: datetime, hi: datetime) -> datetime:
        span = max(int((hi - lo).total_seconds()), 1)
        return lo + timedelta(seconds=self.rnd.randrange(span))

    def events(self) -> list[dict[str, Any]]:
        """Every event of the simulation, in emission order (mostly time order, some late)."""
        out: list[dict[str, Any]] = []
        end = self.end.timestamp()
        for n in range(self.n_schools):
            # nothing after the simulation's end (today, in the demo): no events from the future
            out.extend(
                e
                for e in self._school(f"{self.prefix}{n:05d}", n)
                if datetime.fromisoformat(e["occurred_at"]).timestamp() <= end
            )
        out.sort(key=lambda e: e["emitted_at"])
        return self._noise(out)

    def _level(self) -> str:
        x, acc = self.rnd.random(), 0.0
        for level, p in LEVELS:
            acc += p
            if x < acc:
                return level
        return "secondary"

    def _school(self, sid: str, n: int) -> Iterator[dict[str, Any]]:
        r = self.rnd
        level = self._level()
        reg = self.start + timedelta(hours=r.randint(0, 240))
        communities = r.sample([c.value for c in Community], k=r.randint(1, 2))
        yield self._ev("school.registered", sid, reg, {"name": f"{sid} Vocational School", "level": level,
                                                       "city": CITIES[n % len(CITIES)], "communities": communities})  # fmt: skip
        base = r.randint(600, 2400) if level == "secondary" else r.randint(1500, 6000)
        ratio = r.gauss(RATIO[level], 2.0)
        ft = max(8, round(base / max(ratio, 9) * 0.92))
        pt = round(ft * r.uniform(0.05, 0.22))
        teachers: list[str] = []
        for i in range(ft + pt):
            tid = f"T-{sid}-{i:04d}"
            teachers.append(tid)
            hired = self._when(reg, reg + timedelta(days=30))
            prof = r.random() < 0.62
            degree = "master" if r.random() < POSTGRAD[level] else "bachelor"
            if degree == "master" and level == "undergraduate" and r.random() < 0.3:
                degree = "doctor"
            yield self._ev("teacher.hired", sid, hired, {
                "teacher_id": tid, "employment": "full_time" if i < ft else "part_time",
                "course_type": "professional" if prof else "general",
                "title": r.choices(["none", "junior", "intermediate", "associate_senior", "senior"],
                                   [5, 25, 45, 20, 5])[0],
                "degree": degree})  # fmt: skip
            if prof and i < ft and r.random() < 0.70:
                issued = (hired - timedelta(days=r.randint(0, 3 * 365))).date()
                valid = issued + timedelta(days=365 * r.choice([3, 4, 5]))
                yield self._ev("certification.granted", sid, hired + timedelta(days=1), {
                    "certificate_id": f"C-{tid}", "teacher_id": tid, "level": r.choice(["junior", "intermediate", "senior"]),
                    "issued_on": issued.isoformat(), "valid_until": valid.isoformat()})  # fmt: skip
                if valid < self.end.date() and r.random() < 0.85:  # most renew a little before expiry
                    renew = datetime(valid.year, valid.month, valid.day, 9, tzinfo=CST) - timedelta(
                        days=r.randint(5, 60)
                    )
                    yield self._ev("certification.granted", sid, renew, {
                        "certificate_id": f"C-{tid}-r", "teacher_id": tid, "level": "intermediate",
                        "issued_on": renew.date().isoformat(),
                        "valid_until": (renew.date() + timedelta(days=365 * 4)).isoformat()})  # fmt: skip
                elif r.random() < 0.01:
                    yield self._ev(
                        "certification.revoked",
                        sid,
                        self._when(hired, self.end),
                        {"certificate_id": f"C-{tid}"},
                    )
            if i < ft and degree == "bachelor" and r.random() < 0.05:
                pid = f"P-{tid}"
                enrolled = self._when(hired, self.end - timedelta(days=400))
                yield self._ev(
                    "degree.enrolled",
                    sid,
                    enrolled,
                    {"programme_id": pid, "teacher_id": tid, "target_degree": "master"},
                )
                outcome = "degree.conferred" if r.random() < 0.8 else "degree.withdrawn"
                yield self._ev(
                    outcome, sid, enrolled + timedelta(days=r.randint(300, 800)), {"programme_id": pid}
                )
        # churn: departures, most replaced a few weeks later
        for j, tid in enumerate(r.sample(teachers, k=round(len(teachers) * 0.06))):
            left = self._when(reg + timedelta(days=60), self.end)
            yield self._ev("teacher.departed", sid, left,
                           {"teacher_id": tid, "reason": r.choice(["retired", "resigned", "transfer"])})  # fmt: skip
            if r.random() < 0.9:
                yield self._ev("teacher.hired", sid, left + timedelta(days=r.randint(20, 90)), {
                    "teacher_id": f"{tid}-n{j}", "employment": "full_time",
                    "course_type": "professional" if r.random() < 0.62 else "general", "title": "junior",
                    "degree": "master" if r.random() < POSTGRAD[level] else "bachelor"})  # fmt: skip
        # enrollment every autumn term, growing a little
        for year in range(self.start.year, self.end.year + 1):
            t = datetime(year, 9, 15, 10, tzinfo=CST) + timedelta(minutes=n % 600)
            if not reg < t < self.end:
                continue
            count = round(base * (1 + 0.01 * (year - self.start.year)) * r.uniform(0.97, 1.03))
            yield self._ev("enrollment.reported", sid, t, {"term": f"{year}-autumn",
                           "counts": {"full_time": count, "night": r.randint(0, 80), "correspondence": r.randint(0, 200)}})  # fmt: skip
        # about 0.9 skill-master studios per school
        for k in range(r.choices([0, 1, 2], [0.3, 0.5, 0.2])[0]):
            st = f"ST-{sid}-{k}"
            lead, *members = r.sample(teachers[:ft], k=min(ft, 5))
            est = self._when(reg + timedelta(days=30), reg + timedelta(days=200))
            yield self._ev("studio.established", sid, est, {"studio_id": st, "name": f"Master studio {st}",
                           "level": r.choice(["national", "provincial", "municipal", "school"]),
                           "lead_teacher_id": lead, "community": communities[0]})  # fmt: skip
            for m in members[: r.randint(2, 4)]:
                yield self._ev(
                    "studio.member_joined",
                    sid,
                    est + timedelta(days=2),
                    {"studio_id": st, "teacher_id": m, "role": "member"},
                )
            active_until = self.end if r.random() < 0.8 else est + timedelta(days=r.randint(100, 500))
            month = est
            while month < active_until:
                month += timedelta(days=30)
                yield self._ev("studio.activity_reported", sid, month, {"studio_id": st, "period": month.strftime("%Y-%m"),
                               "training_hours": r.randint(10, 80), "apprentices_trained": r.randint(0, 12)})  # fmt: skip
            for year in range(est.year, self.end.year):
                yield self._ev("studio.evaluated", sid, datetime(year, 12, 20, 10, tzinfo=CST),
                               {"studio_id": st, "year": year, "result": r.choices(["excellent", "pass", "fail"], [2, 7, 1])[0]})  # fmt: skip

    def _noise(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        r = self.rnd
        self.stale_school = events[0]["school_id"]  # this school stops reporting after a year
        stale = {self.stale_school}
        cutoff = self._at(self.start + timedelta(days=365))
        out: list[dict[str, Any]] = []
        for e in events:
            if e["school_id"] in stale and e["occurred_at"] > cutoff:
                continue
            out.append(e)
            if r.random() < 0.005:
                out.append(dict(e))  # a duplicate delivery
        for i in range(0, len(out) - 1, 97):  # late: swap a few neighbours
            out[i], out[i + 1] = out[i + 1], out[i]
        invalid = [
            {**out[0], "event_id": self._id(), "occurred_at": "2024-03-01 08:00"},
            {**out[1], "event_id": self._id(), "event_type": "teacher.promoted"},
            {**out[2], "event_id": self._id(), "schema_version": 2},
        ]
        for k, bad in enumerate(invalid):
            out.insert((k + 1) * len(out) // 4, bad)
        return out


def write_jsonl(events: list[dict[str, Any]], path: str) -> int:
    with open(path, "w", encoding="utf-8") as fh:
        for e in events:
            fh.write(json.dumps(e, ensure_ascii=False) + "\n")
    return len(events)


def simulate_country(
    folder: Path, schools: int, seed: int, start: date, years: int
) -> tuple[list[Path], int]:
    """The country as provinces: one file per provincial division, `<GB/T 2260 code>-<letters>.jsonl`,
    its schools dealt out by population and its ids prefixed by its letters, each province simulated
    with a seed of its own (the same seed gives the same country). Cities are Shandong's codes in every
    province (a stand-in: the event contract knows no others; docs/domain.md). Returns the files and the
    number of events written."""
    from schemas.provinces import PROVINCES, schools_per_province

    counts = schools_per_province(schools)
    folder.mkdir(parents=True, exist_ok=True)
    files, total = [], 0
    for n, p in enumerate(PROVINCES):
        sim = Simulator(counts[p.code], seed * 100 + n, start=start, years=years, prefix=p.letters)
        file = folder / f"{p.code}-{p.letters}.jsonl"
        total += write_jsonl(sim.events(), str(file))
        files.append(file)
    return files, total

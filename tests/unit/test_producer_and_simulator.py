"""The producer's privacy helper, the simulator's determinism and distributions, infra's bad input."""

from __future__ import annotations

import socket
import statistics
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from dualtrack.simulate import Simulator
from foundation.errors import InfraError
from foundation.settings import Settings
from rules.engine import fold
from rules.limits import load_rules
from rules.report import build_report
from schemas.validation import Accepted, validate
from streams.producer import teacher_id_from_national_id

NID = "11010519491231002X"


def test_teacher_id_is_a_keyed_hash_that_never_carries_the_number() -> None:
    a = teacher_id_from_national_id(NID, "provincial-secret")
    assert a == teacher_id_from_national_id(NID.lower(), "provincial-secret")  # normalised
    assert a != teacher_id_from_national_id(NID, "another-secret")
    assert a.startswith("T-") and NID not in a and "19491231" not in a
    with pytest.raises(ValueError, match="check"):
        teacher_id_from_national_id("110105194912310021", "s")
    with pytest.raises(ValueError, match="secret"):
        teacher_id_from_national_id(NID, "")


def test_simulation_is_deterministic_by_seed() -> None:
    assert Simulator(5, seed=11).events() == Simulator(5, seed=11).events()
    assert Simulator(5, seed=11).events() != Simulator(5, seed=12).events()


@pytest.fixture(scope="module")
def province() -> tuple[list[dict], dict, str]:  # type: ignore[type-arg]
    sim = Simulator(64, seed=7)
    events = sim.events()
    kept: dict[str, Accepted] = {}
    for e in events:
        r = validate(__import__("json").dumps(e))
        if isinstance(r, Accepted):
            kept.setdefault(r.event_id, r)
    t = datetime.fromisoformat("2025-12-31T23:59:59+08:00")
    return events, build_report(fold(kept.values(), load_rules(), t), t), sim.stale_school


def test_simulated_mixes_are_near_the_published_figures(province) -> None:  # type: ignore[no-untyped-def]
    _, rep, _ = province
    secondary = [s for s in rep["schools"] if s["level"] == "secondary"]
    assert 16.0 <= statistics.median(s["student_teacher_ratio"] for s in secondary) <= 20.0
    assert (
        0.50
        <= statistics.median(s["dual_share"] for s in rep["schools"] if s["dual_share"] is not None)
        <= 0.66
    )
    assert 0.06 <= statistics.median(s["postgraduate_share"] for s in secondary) <= 0.16
    cities = Counter(s["city"] for s in rep["schools"])
    assert len(cities) == 16 and max(cities.values()) - min(cities.values()) <= 1
    assert 0.7 <= rep["province"]["studios_active"] / len(rep["schools"]) <= 1.1  # about 500 for 550 schools


def test_simulation_carries_its_noise(province) -> None:  # type: ignore[no-untyped-def]
    events, _, stale = province
    ids = Counter(e["event_id"] for e in events)
    assert any(n > 1 for n in ids.values())  # duplicates
    invalid = [e for e in events if not isinstance(validate(__import__("json").dumps(e)), Accepted)]
    assert len(invalid) == 3
    assert stale and max(e["occurred_at"] for e in events if e["school_id"] == stale) < "2024-01-02"


def test_a_taken_port_is_named_with_the_fix(tmp_path: Path) -> None:
    from infra.kafka import Kafka

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        svc = Kafka(Settings(var_dir=tmp_path, kafka_port=port, kafka_controller_port=port))
        with pytest.raises(InfraError, match=rf"port {port} is taken.*DUALTRACK_KAFKA_PORT"):
            svc.up()
    assert not (tmp_path / "kafka" / "kafka.pid").exists()  # nothing half-started


def test_missing_java_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import infra.kafka as kafka

    monkeypatch.setattr(kafka, "LIB", tmp_path / "lib")
    monkeypatch.setattr(kafka.shutil, "which", lambda name: None)
    with pytest.raises(InfraError, match=r"java not found.*Java 17"):
        kafka.fetch()

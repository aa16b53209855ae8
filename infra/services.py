"""Local services managed by pid file: only what `up` started is ever stopped by `down`."""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from foundation.errors import InfraError
from foundation.settings import Settings

HERE = Path(__file__).resolve().parent
#: services started by this process outlive their Popen objects on purpose; keeping them here stops
#: Popen.__del__ from warning that a (deliberately) running child is being forgotten
_STARTED: list[subprocess.Popen[bytes]] = []


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


def fill(template: Path, target: Path, values: dict[str, str]) -> None:
    """Write the template with its `${NAME}` values to target, readable by its owner only: service
    configurations carry passwords or their hashes."""
    text = template.read_text(encoding="utf-8")
    for k, v in values.items():
        text = text.replace("${" + k + "}", v)
    write_private(target, text)


def write_private(target: Path, text: str) -> None:
    """Write a file only its owner may read (also when it existed with wider permissions)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


@dataclass
class Status:
    name: str
    running: bool
    pid: int | None
    address: str
    detail: str = ""


class Service(abc.ABC):
    name: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.var = Path(settings.var_dir).resolve() / self.name
        self.pid_file = self.var / f"{self.name}.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    # --- per service ---------------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def ports(self) -> list[int]: ...

    @abc.abstractmethod
    def prepare(self) -> None:
        """Fetch or install what the service needs (idempotent, cached)."""

    @abc.abstractmethod
    def command(self) -> list[str]: ...

    @abc.abstractmethod
    def ready(self) -> bool:
        """Whether the service answers (not only listens)."""

    startup_seconds = 90.0

    @property
    def port_setting(self) -> str:
        """The setting that moves this service's ports."""
        return f"DUALTRACK_{self.name.upper()}_PORT"

    # --- shared ----------------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports[0]}"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def status(self) -> Status:
        pid = self.pid()
        if pid is not None:
            return Status(self.name, self.ready(), pid, self.address, "started by dualtrack")
        if any(port_open(p) for p in self.ports):
            return Status(self.name, self.ready(), None, self.address, "running, not started by dualtrack")
        return Status(self.name, False, None, self.address, "stopped")

    def up(self, wait: bool = True) -> str:
        """Start the service unless it already runs; a clear InfraError when it cannot. With `wait`
        False the process is started and `finish_up` waits for it (services that need each other, such
        as the brokers of one quorum, are all started before any is waited for)."""
        if self.pid() is not None:
            if wait:
                self._wait_ready()
            return f"{self.name} already running (pid {self.pid()}) on {self.address}"
        busy = [p for p in self.ports if port_open(p)]
        if busy:
            if self.ready():
                return (
                    f"{self.name} already answering on {self.address} (not started by dualtrack; reusing it)"
                )
            raise InfraError(
                f"port {busy[0]} is taken by another program, so {self.name} cannot start: stop that "
                f"program or set {self.port_setting} to a free port"
            )
        self.var.mkdir(parents=True, exist_ok=True)
        self.var.chmod(0o700)  # data, logs and configurations are the service's owner's alone
        self.prepare()
        log = open(self.var / f"{self.name}.out", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=self.var,
        )  # fmt: skip
        log.close()
        _STARTED.append(proc)
        self.pid_file.write_text(str(proc.pid))
        self._proc = proc
        if wait:
            self.finish_up()
        return f"{self.name} started (pid {proc.pid}) on {self.address}"

    def finish_up(self) -> None:
        """Wait for a service `up(wait=False)` started; stopped and an InfraError if it does not answer."""
        proc = self._proc
        try:
            self._wait_ready(proc)
        except InfraError:
            if proc is not None:
                self._kill(proc.pid)
                self.pid_file.unlink(missing_ok=True)
            raise

    def _wait_ready(self, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + self.startup_seconds
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise InfraError(
                    f"{self.name} exited with code {proc.returncode} while starting; see "
                    f"{self.var / (self.name + '.out')}: {self._tail()}"
                )
            if self.ready():
                return
            time.sleep(0.5)
        waited = f"{self.startup_seconds:.0f}s{self.not_ready_hint()}"
        raise InfraError(f"{self.name} did not answer within {waited}; see {self.var}")

    def not_ready_hint(self) -> str:
        """Why a running service may not answer, when the service can tell (appended to the error)."""
        return ""

    def _tail(self) -> str:
        try:
            lines = (self.var / f"{self.name}.out").read_text(errors="replace").strip().splitlines()
            return " | ".join(lines[-3:])
        except OSError:
            return ""

    def down(self) -> str:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return f"{self.name} not started by dualtrack; nothing to stop"
        self._kill(pid)
        self.pid_file.unlink(missing_ok=True)
        for proc in [p for p in _STARTED if p.pid == pid]:
            proc.poll()  # already reaped: this records its exit, so nothing warns about it later
            _STARTED.remove(proc)
        return f"{self.name} stopped (pid {pid})"

    @staticmethod
    def _kill(pid: int, grace: float = 30.0) -> None:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.2)
        if pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                return
        with contextlib.suppress(ChildProcessError):  # reap it when it is our child
            os.waitpid(pid, os.WNOHANG)


def all_services(settings: Settings, brokers: int | None = None) -> list[Service]:
    """The local services: `brokers` Kafka nodes (default: DUALTRACK_KAFKA_BROKERS, or as many as have
    a folder under the var dir, so `infra down` stops every broker `infra up --brokers N` started),
    then ClickHouse."""
    from infra.clickhouse import ClickHouse
    from infra.kafka import Kafka, nodes_present

    n = brokers or max(settings.kafka_brokers, nodes_present(settings))
    return [*(Kafka(settings, node=i, brokers=n) for i in range(1, n + 1)), ClickHouse(settings)]

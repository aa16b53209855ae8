"""Headless Chromium driven over the DevTools protocol on a pipe: load a page, evaluate, screenshot, print.

`--remote-debugging-pipe` talks NUL-terminated JSON over file descriptors 3 (commands in) and 4
(answers out): no port is opened, no websocket library is needed, and two renders never race for a
port. Pages are loaded from a private temporary file, and host resolution is switched off, so a page
cannot reach the network even if it tried.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import math
import os
import select
import shutil
import signal
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from documents.briefing.exceptions import ChromiumError, ChromiumNotFound

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell")

_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-color-profile=srgb",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-pipe",
)


def find_chromium(executable: str | os.PathLike[str] | None = None) -> str:
    """The path of the Chromium to run: `executable` when given, else the first of CANDIDATES on PATH."""
    if executable is not None:
        found = shutil.which(str(executable))
        if found is None:
            raise ChromiumNotFound(f"no Chromium executable at {executable}")
        return found
    for name in CANDIDATES:
        if found := shutil.which(name):
            return found
    raise ChromiumNotFound(
        "the PDF briefing is printed by headless Chromium, and none was found on PATH "
        f"(looked for {', '.join(CANDIDATES)}); install it (Debian: apt-get install chromium) "
        "or pass its path"
    )


class Chromium:
    """One headless browser process; use as a context manager so it is always stopped."""

    def __init__(self, executable: str | os.PathLike[str] | None = None, timeout: float = 60.0) -> None:
        self.executable = find_chromium(executable)
        self.timeout = timeout
        self._pid: int | None = None
        self._to = self._from = -1
        self._buffer = bytearray()
        self._last_id = 0
        self._events: list[dict[str, Any]] = []
        self._profile = ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the browser with a fresh profile."""
        self._profile = tempfile.mkdtemp(prefix="dualtrack-chromium-")
        flags = [*_FLAGS, f"--user-data-dir={self._profile}"]
        if os.geteuid() == 0:  # Chromium refuses to run as root with its sandbox on
            flags.append("--no-sandbox")
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        # The child's ends go above the low numbers first, so that placing them at 3 and 4 cannot
        # overwrite one with the other whatever numbers os.pipe() returned.
        child_in = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(res_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(cmd_r)
        os.close(res_w)
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, self._log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
            (os.POSIX_SPAWN_DUP2, child_in, 3),
            (os.POSIX_SPAWN_DUP2, child_out, 4),
        ]
        try:
            # its own process group, so that close() can stop the renderers it leaves behind
            self._pid = os.posix_spawn(
                self.executable,
                [self.executable, *flags],
                dict(os.environ),
                file_actions=actions,
                setpgroup=0,
            )
        except OSError as err:
            os.close(cmd_w)
            os.close(res_r)
            raise ChromiumError(f"cannot start {self.executable}: {err.strerror}") from None
        finally:
            os.close(child_in)
            os.close(child_out)
        self._to, self._from = cmd_w, res_r
        try:
            self.send("Target.setDiscoverTargets", {"discover": False})
        except ChromiumError:
            self.close()
            raise

    @property
    def _log_path(self) -> str:
        return os.path.join(self._profile, "chromium.log")

    def close(self) -> None:
        """Stop the browser (politely, then by force) and remove its profile."""
        if self._pid is not None:
            with contextlib.suppress(ChromiumError, OSError):
                self.send("Browser.close", timeout=5)
            if not self._wait_exit(5.0):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._pid, signal.SIGKILL)
                self._wait_exit(5.0)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pid, signal.SIGKILL)  # helpers still in the group
            self._pid = None
        for fd in (self._to, self._from):
            if fd >= 0:
                os.close(fd)
        self._to = self._from = -1
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = ""

    def _wait_exit(self, seconds: float) -> bool:
        if self._pid is None:
            return True
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(self._pid, os.WNOHANG)
            except ChildProcessError:
                return True
            if pid:
                return True
            time.sleep(0.05)
        return False

    def new_page(self, width: int = 1366, height: int = 900) -> Page:
        """A new tab with a `width` × `height` CSS-pixel viewport."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        page.send("Page.enable")
        page.send("Runtime.enable")
        page.set_viewport(width, height)
        return page

    # --- the protocol ---------------------------------------------------------------------------

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str = "",
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one command and return its result; a protocol error becomes a ChromiumError."""
        if self._pid is None:
            raise ChromiumError("the browser is not running")
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._to, data) :]
        except BrokenPipeError:
            raise ChromiumError(f"Chromium stopped before {method}{self._log_tail()}") from None
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            answer = self._read(deadline, method)
            if answer.get("id") == self._last_id:
                if "error" in answer:
                    raise ChromiumError(f"{method} failed: {answer['error'].get('message', answer['error'])}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            if "method" in answer:
                self._events.append(answer)

    def wait_event(self, method: str, session: str, timeout: float | None = None) -> dict[str, Any]:
        """The first unconsumed event `method` of `session` (waiting for it if needed)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for n, event in enumerate(self._events):
                if event["method"] == method and event.get("sessionId", "") == session:
                    del self._events[n]
                    return event
            answer = self._read(deadline, method)
            if "method" in answer:
                self._events.append(answer)

    def drop_events(self, method: str, session: str) -> None:
        self._events = [
            e for e in self._events if not (e["method"] == method and e.get("sessionId", "") == session)
        ]

    def _read(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while (end := self._buffer.find(b"\0")) < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChromiumError(f"Chromium did not answer {waiting_for} in time{self._log_tail()}")
            ready, _, _ = select.select([self._from], [], [], left)
            if ready:
                chunk = os.read(self._from, 1 << 20)
                if not chunk:
                    raise ChromiumError(f"Chromium stopped during {waiting_for}{self._log_tail()}")
                self._buffer += chunk
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        message: dict[str, Any] = json.loads(raw)
        return message

    def _log_tail(self) -> str:
        try:
            lines = Path(self._log_path).read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return (": " + " | ".join(lines[-3:])) if lines else ""


class Page:
    """One tab of a Chromium, attached in flat mode (commands carry its session id)."""

    def __init__(self, browser: Chromium, session: str, target: str) -> None:
        self.browser = browser
        self.session = session
        self.target = target
        self._loads = 0

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, self.session)

    def close(self) -> None:
        """Close the tab (the browser goes on)."""
        self.browser.send("Target.closeTarget", {"targetId": self.target})

    def set_viewport(self, width: int, height: int, scale: float = 1.0) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": False},
        )

    def emulate_media(self, media: str) -> None:
        """Lay the page out for `media` ("print" or "screen")."""
        self.send("Emulation.setEmulatedMedia", {"media": media})

    def load(self, html: str) -> None:
        """Show `html` (written to a private file first) and wait until it and its fonts are loaded."""
        self._loads += 1
        path = Path(self.browser._profile) / f"page-{self.target[:8]}-{self._loads}.html"
        path.write_text(html, encoding="utf-8")
        self.browser.drop_events("Page.loadEventFired", self.session)
        self.send("Page.navigate", {"url": path.as_uri()})
        self.browser.wait_event("Page.loadEventFired", self.session)
        self.evaluate("document.fonts.ready.then(() => true)")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression (promises are awaited)."""
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ChromiumError(f"script failed: {text}")
        return result["result"].get("value")

    def screenshot(self, full_page: bool = False) -> bytes:
        """A PNG of the viewport, or of the whole page."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": math.ceil(size["width"]), "height": math.ceil(size["height"])}
            params |= {"captureBeyondViewport": True, "clip": {**clip, "scale": 1}}
        return base64.b64decode(self.send("Page.captureScreenshot", params)["data"])

    def pdf(self, header: str = "", footer: str = "") -> bytes:
        """Print to PDF with the page's own @page size and margins; `header`/`footer` are HTML templates
        drawn in the margins of every page (Chromium fills `pageNumber`/`totalPages` spans)."""
        params: dict[str, Any] = {
            "printBackground": True,
            "preferCSSPageSize": True,
            "displayHeaderFooter": bool(header or footer),
            # an empty template would get Chromium's default (title, URL, date): send a blank one
            "headerTemplate": header or "<span></span>",
            "footerTemplate": footer or "<span></span>",
        }
        return base64.b64decode(self.send("Page.printToPDF", params)["data"])

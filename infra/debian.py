"""Debian packages the project runs, installed with apt-get when missing (as root): ClickHouse's server,
and for the briefing's PDF and its browser tests, Chromium with CJK fonts and poppler's pdftotext."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

from foundation.errors import InfraError


def apt_install(packages: list[str], present: Callable[[], bool], what: str) -> str:
    """Install `packages` unless `present()` says they are there; a clear InfraError when it fails."""
    if present():
        return f"{what} already installed"
    if shutil.which("apt-get") is None:
        raise InfraError(
            f"{what} is missing and apt-get is not available: install {' '.join(packages)} by hand"
        )
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:  # the package lists may be missing or stale on a fresh machine
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, check=False)
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0 or not present():
        raise InfraError(
            f"installing {' '.join(packages)} with apt-get failed: {result.stderr.strip()[-400:]}; run "
            f"`apt-get install {' '.join(packages)}` as root and try again"
        )
    return f"{what} installed"


def install_browser() -> str:
    """Chromium (the briefing's PDF), CJK fonts (Chinese text) and pdftotext (the PDF's tests)."""

    def present() -> bool:
        fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False)
        return bool(shutil.which("chromium") and shutil.which("pdftotext") and fonts.stdout.strip())

    return apt_install(["chromium", "fonts-noto-cjk", "poppler-utils", "fontconfig"], present, "chromium")

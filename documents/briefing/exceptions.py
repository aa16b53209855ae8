"""Errors of the briefing renderers."""

from __future__ import annotations

from foundation.errors import DualtrackError


class BriefingError(DualtrackError):
    """A briefing cannot be rendered; the message says what to do."""


class ChromiumError(BriefingError):
    """Headless Chromium failed to start, answer or print."""


class ChromiumNotFound(ChromiumError):
    """No Chromium executable was found (the PDF needs one)."""

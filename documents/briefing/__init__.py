"""The department's briefing: report data rendered as HTML, XLSX and PDF, in Chinese or English."""

from __future__ import annotations

from documents.briefing.chromium import Chromium, Page, find_chromium
from documents.briefing.data import (
    Briefing,
    IndicatorLimit,
    SchoolInfo,
    StudioInfo,
    Targets,
    default_limits,
    limits_from_rules,
)
from documents.briefing.exceptions import BriefingError, ChromiumError, ChromiumNotFound
from documents.briefing.page import render_html
from documents.briefing.pdf import render_pdf
from documents.briefing.xlsx import render_xlsx
from foundation.messages import MESSAGES

#: the languages a briefing can be rendered in; zh-CN is the default
LANGUAGES = tuple(MESSAGES)

__all__ = [
    "LANGUAGES",
    "Briefing",
    "BriefingError",
    "Chromium",
    "ChromiumError",
    "ChromiumNotFound",
    "IndicatorLimit",
    "Page",
    "SchoolInfo",
    "StudioInfo",
    "Targets",
    "default_limits",
    "find_chromium",
    "limits_from_rules",
    "render_html",
    "render_pdf",
    "render_xlsx",
]

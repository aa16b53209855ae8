"""The briefing as an A4 PDF: the HTML printed by headless Chromium through the DevTools protocol.

`Page.printToPDF` (rather than `chromium --print-to-pdf`) because only it takes header and footer
templates, which Chromium draws in every page's margin with the page number and page count filled
in. The templates travel inside the HTML (`<template id="pdf-header">`, `<template id="pdf-footer">`),
so the page stays the one source of what is printed; the @page rule in its stylesheet sets A4 and
the margins that hold them.
"""

from __future__ import annotations

import os
from pathlib import Path

from documents.briefing.chromium import Chromium

_TEMPLATES = """[document.getElementById("pdf-header"), document.getElementById("pdf-footer")]
  .map(function (t) { return t ? t.innerHTML : ""; })"""
_DEFAULT_FOOTER = (
    '<div style="font-size:8pt;width:100%;text-align:center">'
    '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
)


def render_pdf(
    html: str, path: Path | str, executable: str | os.PathLike[str] | None = None, timeout: float = 120.0
) -> Path:
    """Print `html` to an A4 PDF at `path`; ChromiumNotFound (a DualtrackError) when there is no Chromium."""
    with Chromium(executable, timeout=timeout) as browser:
        page = browser.new_page(794, 1123)  # A4 at 96 dpi, so that screen-size rules do not apply
        page.load(html)
        header, footer = page.evaluate(_TEMPLATES)
        data = page.pdf(header=header, footer=footer or _DEFAULT_FOOTER)
        page.close()
    out = Path(path)
    out.write_bytes(data)
    return out

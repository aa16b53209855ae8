"""URLs in settings and files: the one check of a webhook address, and redaction for logs and errors."""

from __future__ import annotations

from urllib.parse import urlparse, urlunparse


def webhook_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook (an http:// or https:// URL with a host), or None when it can."""
    try:
        u = urlparse(url)
        host = u.hostname
    except ValueError:
        return "must be an http:// or https:// URL with a host"
    if u.scheme not in ("http", "https") or not host:
        return "must be an http:// or https:// URL with a host"
    return None


def redact_url(url: str | None) -> str | None:
    """The URL with its password (and query string, which may carry a token) replaced by `***`."""
    if not url:
        return url
    try:
        u = urlparse(url)
        netloc = u.netloc
        if u.password is not None:
            netloc = f"{u.username or ''}:***@{netloc.rsplit('@', 1)[1]}"
        return urlunparse(u._replace(netloc=netloc, query="***" if u.query else ""))
    except ValueError:  # unparseable: show nothing of it rather than a secret
        return "***"

"""Reading a JSON-lines file of events: one event per line, split on the newline byte only (a JSON
string cannot hold a raw newline, while U+0085 or U+2028 inside a value are legal), in bounded memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from schemas.validation import MAX_LINE_BYTES

#: how much of an over-long line is kept (a line of gigabytes is not held whole)
KEPT_OF_A_LONG_LINE = 16 * MAX_LINE_BYTES
_CHUNK = 1 << 20


def read_lines(path: Path) -> Iterator[bytes]:
    """The lines of a file without their line endings (`\\n`, and a `\\r` before it). A line longer
    than KEPT_OF_A_LONG_LINE comes back cut to that length: still over the limit, so it is rejected
    as too_large. OSError when the file cannot be read."""
    with open(path, "rb") as fh:
        pending = b""
        while chunk := fh.read(_CHUNK):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            yield from (line.removesuffix(b"\r") for line in complete)
            if len(pending) > KEPT_OF_A_LONG_LINE:
                yield pending[:KEPT_OF_A_LONG_LINE]
                pending = _rest_after_newline(fh)
        if pending:
            yield pending.removesuffix(b"\r")


def _rest_after_newline(fh: BinaryIO) -> bytes:
    while chunk := fh.read(_CHUNK):
        newline = chunk.find(b"\n")
        if newline != -1:
            return chunk[newline + 1 :]
    return b""


def is_blank(line: bytes) -> bool:
    return not line.strip()

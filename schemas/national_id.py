"""National ID numbers (身份证号): finding them in a line, and masking them (docs/domain.md, "Privacy").

An ID is 17 digits followed by a digit or `X` (either case), not preceded or followed by another digit,
whose last character is the ISO 7064 MOD 11-2 check character of the first 17. The check runs after
Unicode NFKC normalisation (fullwidth digits count), and the 18 characters may be split 6-8-4 by one
space or hyphen at each of the two boundaries.

The search runs on the whole line, as sent: inside JSON strings (also when written with `\\u` escapes),
keys and numbers alike, and on lines that are not JSON at all, so that a dead letter can be masked
whatever it holds. Masking replaces every character of a match, as written in the line, by `*`; every
other byte of the line stays as it was (also bytes that are not UTF-8).
"""

from __future__ import annotations

import re
import unicodedata

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
# A candidate: 6, 8 and 4 characters, optionally split by one space or hyphen at each boundary, with
# no digit right before or after (the lookahead keeps overlapping candidates visible).
_ASCII = re.compile(rb"(?<![0-9])(?=([0-9]{6}[ -]?[0-9]{8}[ -]?[0-9]{3}[0-9Xx])(?![0-9]))")
_UNICODE = re.compile(r"(?<!\d)(?=(\d{6}[ -]?\d{8}[ -]?\d{3}[\dXx])(?!\d))")
# Every ID holds 8 digits in a row (the middle group): lines without such a run need no closer look.
_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_RUN = re.compile(r"\d{8}")
# A JSON escape: \uXXXX or a backslash and one character.
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.S)
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def _is_id(candidate: str) -> bool:
    digits = candidate.replace(" ", "").replace("-", "")
    return len(digits) == 18 and check_character(digits[:17]) == digits[17].upper()


def _unescape(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        body = m.group(1)
        if body[0] == "u" and len(body) == 5:
            return chr(int(body[1:], 16))
        return _SIMPLE_ESCAPES.get(body, body)

    return _ESCAPE.sub(one, text) if "\\" in text else text


def _units(text: str, escapes: bool) -> list[tuple[int, int, str]]:
    """The line as logical characters: (start, end) in `text` and the NFKC form of the character.
    With `escapes`, a JSON escape is one character (a \\uXXXX pair of surrogates is one, too)."""
    out: list[tuple[int, int, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch, j = text[i], i + 1
        if escapes and ch == "\\" and j < n:
            m = _ESCAPE.match(text, i)
            if m is not None:
                ch, j = _unescape(m.group(0)), m.end()
                if 0xD800 <= ord(ch) <= 0xDBFF:  # a high surrogate: join its low half when it follows
                    low = _ESCAPE.match(text, j)
                    if low is not None and 0xDC00 <= ord(lc := _unescape(low.group(0))) <= 0xDFFF:
                        ch, j = (ch + lc).encode("utf-16", "surrogatepass").decode("utf-16"), low.end()
        out.append((i, j, unicodedata.normalize("NFKC", ch)))
        i = j
    return out


def _spans(text: str, escapes: bool) -> list[tuple[int, int]]:
    """Where IDs are in `text`, as (start, end) character positions, in order, not overlapping."""
    units = _units(text, escapes)
    flat: list[str] = []
    owner: list[int] = []  # flat position -> the unit it came from
    for k, (_, _, norm) in enumerate(units):
        flat.append(norm)
        owner.extend([k] * len(norm))
    normal = "".join(flat)
    spans: list[tuple[int, int]] = []
    for m in _UNICODE.finditer(normal):
        candidate = m.group(1)
        if not _is_id(candidate):
            continue
        first, last = owner[m.start(1)], owner[m.start(1) + len(candidate) - 1]
        start, end = units[first][0], units[last][1]
        if spans and start < spans[-1][1]:
            continue
        spans.append((start, end))
    return spans


def _worth_a_look(text: str, escapes: bool) -> bool:
    normal = unicodedata.normalize("NFKC", _unescape(text) if escapes else text)
    return _RUN.search(normal) is not None


def id_spans(raw: bytes) -> list[tuple[int, int]]:
    """Byte spans of the national ID numbers in a raw line (JSON escapes understood)."""
    if raw.isascii() and b"\\u" not in raw:
        if b"00000000" not in raw.translate(_DIGITS_TO_ZERO):
            return []
        out: list[tuple[int, int]] = []
        for m in _ASCII.finditer(raw):
            candidate = m.group(1).decode("ascii")
            if _is_id(candidate) and not (out and m.start() < out[-1][1]):
                out.append((m.start(), m.start() + len(candidate)))
        return out
    text = raw.decode("utf-8", "surrogateescape")
    if not _worth_a_look(text, escapes=True):
        return []
    out = []
    for start, end in _spans(text, escapes=True):
        # character positions to byte positions in the original bytes
        b_start = len(text[:start].encode("utf-8", "surrogateescape"))
        b_end = b_start + len(text[start:end].encode("utf-8", "surrogateescape"))
        out.append((b_start, b_end))
    return out


def carries_national_id(raw: bytes) -> bool:
    """Whether a raw line holds a national ID number anywhere."""
    return bool(id_spans(raw))


def mask(raw: bytes) -> bytes:
    """The line with every character of every national ID number replaced by `*`."""
    spans = id_spans(raw)
    if not spans:
        return raw
    if raw.isascii():
        parts, at = [], 0
        for start, end in spans:
            parts += [raw[at:start], b"*" * (end - start)]
            at = end
        return b"".join([*parts, raw[at:]])
    text = raw.decode("utf-8", "surrogateescape")
    return mask_text(text, escapes=True).encode("utf-8", "surrogateescape")


def mask_text(text: str, escapes: bool = False) -> str:
    """A text (a message, a field value) with every national ID number replaced by `*`."""
    if not _worth_a_look(text, escapes):
        return text
    parts, at = [], 0
    for start, end in _spans(text, escapes):
        parts += [text[at:start], "*" * (end - start)]
        at = end
    return "".join([*parts, text[at:]])


def find_national_id(text: str) -> str | None:
    """The first national ID number in a decoded text (after NFKC), or None."""
    for start, end in _spans(text, escapes=False):
        return unicodedata.normalize("NFKC", text[start:end])
    return None

"""Detection of Chinese national ID numbers (身份证号) anywhere in an event (DOMAIN.md sections 3 and 6)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
# 17 digits then a digit or X, with no digit right before or after (lookarounds, so overlaps are seen).
_CANDIDATE = re.compile(r"(?<!\d)(?=(\d{17}[\dXx])(?!\d))")


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def find_national_id(text: str) -> str | None:
    """The first valid national ID number in `text`, or None."""
    for match in _CANDIDATE.finditer(text):
        candidate = match.group(1)
        if check_character(candidate[:17]) == candidate[17].upper():
            return candidate
    return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        yield str(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def carries_national_id(obj: Any) -> bool:
    """Whether any string, key or integer inside a decoded JSON value holds a national ID number."""
    return any(find_national_id(s) is not None for s in _strings(obj))

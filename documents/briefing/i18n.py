"""Translation and number/time formatting for one language. Output is plain text: renderers escape it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from documents.briefing.exceptions import BriefingError
from foundation.messages import MESSAGES

CST = timezone(timedelta(hours=8), "CST")
Number = float | int | Decimal


class Translator:
    """Messages and formats of one language of MESSAGES."""

    def __init__(self, lang: str = "zh-CN") -> None:
        if lang not in MESSAGES:
            raise BriefingError(f"no messages for language {lang!r}; choose one of {', '.join(MESSAGES)}")
        self.lang = lang
        self._messages = MESSAGES[lang]

    def text(self, key: str, **args: object) -> str:
        """The message `key`, its fields filled from `args`."""
        message = self._messages[key]
        return message.format(**args) if args else message

    def code(self, kind: str, code: str | None) -> str:
        """The name of a code (city, circle, level, status, reason, indicator); an unknown code as it is."""
        if code is None:
            return self.text("value.none")
        return self._messages.get(f"{kind}.{code}", code)

    def series(self, code: str) -> str:
        """A trend series: the province, a circle or a city."""
        if code == "province":
            return self.text("series.province")
        return self.code("circle", code) if f"circle.{code}" in self._messages else self.code("city", code)

    def join(self, items: Iterable[str]) -> str:
        return self.text("list.separator").join(items)

    # --- numbers ---------------------------------------------------------------------------------

    def num(self, value: Number | None, places: int = 0) -> str:
        """Thousands separators, `places` decimals; "—" for no value."""
        if value is None:
            return self.text("value.none")
        out = f"{value:,.{places}f}"
        return out[1:] if out.startswith("-") and not out.strip("-0.,") else out  # no "-0.0"

    def pct(self, value: float | None, places: int = 1, against: float | None = None) -> str:
        """A share as a percentage ("42.3%"). With `against`, more decimals when the rounded figure would
        look equal to that target while the exact one is not (49.96% is not "50.0%")."""
        if value is None:
            return self.text("value.none")
        while against is not None and places < 3 and value != against:
            if f"{value * 100:.{places}f}" != f"{against * 100:.{places}f}":
                break
            places += 1
        return self.num(value * 100, places) + "%"

    def ratio(self, value: float | None, infinite: bool = False, against: float | None = None) -> str:
        """A student-teacher ratio to 2 places; "∞" when infinite; more places as for pct()."""
        if infinite:
            return self.text("value.infinite")
        places = 2
        while value is not None and against is not None and places < 4 and value != against:
            if f"{value:.{places}f}" != f"{against:.{places}f}":
                break
            places += 1
        return self.num(value, places)

    def change(self, now: float | None, before: float | None, kind: str, higher_is_better: bool) -> str:
        """ "+1.2 pp (better)" style: the change since `before`, or "no data"."""
        if now is None or before is None:
            return self.text("change.no_data")
        delta = now - before
        if kind == "pct":
            shown, places, key = delta * 100, 1, "change.pp"
        else:
            shown, places, key = delta, 2 if kind == "ratio" else 0, "change.plain"
        if round(shown, places) == 0:
            return self.text(key, value=self.num(0, places)) + " · " + self.text("change.same")
        sign = "+" if shown > 0 else "−"
        verdict = "change.better" if (delta > 0) == higher_is_better else "change.worse"
        figure = sign + self.num(abs(shown), places)
        return self.text(key, value=figure) + " · " + self.text(verdict)

    # --- times -----------------------------------------------------------------------------------

    def _fields(self, t: datetime) -> dict[str, object]:
        local = t.astimezone(CST)
        return {
            "year": local.year,
            "month": local.month,
            "day": local.day,
            "hour": f"{local.hour:02d}",
            "minute": f"{local.minute:02d}",
            "month_name": self.text(f"month_name.{local.month}"),
        }

    def when(self, t: datetime) -> str:
        """A time in China Standard Time to the minute: "2025年12月31日 23:59" / "31 Dec 2025 23:59 CST"."""
        return self.text("time.format", **self._fields(t))

    def day(self, t: datetime) -> str:
        """The CST day of `t`: "2025年12月31日" / "31 Dec 2025"."""
        return self.text("date.format", **self._fields(t))

    def month(self, t: datetime, short: bool = False) -> str:
        """The CST month of `t`: "2025年12月" / "Dec 2025" (short: "12月" / "Dec")."""
        return self.text("month.short" if short else "month.label", **self._fields(t))

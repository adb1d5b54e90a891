"""Numbers for people: the one way every report writes a count, a share, an
amount of money, a ratio, a p-value or an interval.

Every function returns plain text (no Markdown, no HTML): the section that
shows it escapes it. Non-finite input (NaN, infinity) never reaches a reader
as ``nan`` or ``inf``: it becomes :data:`MISSING` ("n/a").
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

MISSING = "n/a"
DASH = "\u2013"  # an en dash, for ranges


def _finite(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def count(value) -> str:
    """A whole number with thousands separators: ``2,357``."""
    v = _finite(value)
    return MISSING if v is None else f"{round(v):,}"


def number(value, digits: int = 3) -> str:
    """A quantity with ``digits`` significant digits and thousands
    separators, never in scientific notation: ``19,980``, ``0.0123``, ``1.5``."""
    v = _finite(value)
    if v is None:
        return MISSING
    if v == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(v)))
    decimals = digits - 1 - magnitude
    rounded = round(v, decimals)
    if decimals <= 0:
        return f"{round(rounded):,}"
    text = f"{rounded:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fixed(value, decimals: int = 2) -> str:
    """A number with exactly ``decimals`` decimals: ``0.60``, ``1,234.50``."""
    v = _finite(value)
    return MISSING if v is None else f"{v:,.{decimals}f}"


def percent(value, decimals: int = 1) -> str:
    """A share (0.123) as a percentage: ``12.3%``."""
    v = _finite(value)
    return MISSING if v is None else f"{100 * v:,.{decimals}f}%"


def signed_percent(value, decimals: int = 1) -> str:
    """A relative change (0.15) with its sign: ``+15.0%``, ``-3.2%``."""
    v = _finite(value)
    return MISSING if v is None else f"{100 * v:+,.{decimals}f}%"


def points(value, decimals: int = 1) -> str:
    """A difference of two shares (0.016) in percentage points: ``+1.6 points``."""
    v = _finite(value)
    return MISSING if v is None else f"{100 * v:+,.{decimals}f} points"


def money(value, currency: str | None = None, decimals: int = 2) -> str:
    """An amount with thousands separators and its currency: ``1,234.50 USD``;
    without a currency, the number alone (never stray markup)."""
    v = _finite(value)
    if v is None:
        return MISSING
    text = f"{v:,.{decimals}f}"
    return f"{text} {currency}" if currency else text


def ratio(value, decimals: int = 2) -> str:
    """A ratio such as a hazard or rate ratio: ``0.60``; large ones keep
    three significant digits (``27.4``)."""
    v = _finite(value)
    if v is None:
        return MISSING
    return fixed(v, decimals) if abs(v) < 10 else number(v, 3)


def p_value(value) -> str:
    """``< 0.001`` below a thousandth, else two significant digits (``0.034``, ``0.41``)."""
    v = _finite(value)
    if v is None:
        return MISSING
    if v < 0.001:
        return "< 0.001"
    return f"{v:.2g}" if v < 0.1 else f"{v:.2f}"


def p_is(value, name: str = "p") -> str:
    """``p < 0.001`` or ``p = 0.034`` (``name`` for other labels: ``adjusted p``)."""
    text = p_value(value)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def interval(low, high, fmt=ratio, level: float = 0.95) -> str:
    """``95% CI 0.58 to 0.63`` with both ends written by ``fmt``."""
    if _finite(low) is None or _finite(high) is None:
        return f"{level:.0%} CI {MISSING}"
    return f"{level:.0%} CI {fmt(low)} to {fmt(high)}"


def estimate(value, low, high, fmt=ratio, level: float = 0.95) -> str:
    """``0.60 (95% CI 0.58 to 0.63)``."""
    return f"{fmt(value)} ({interval(low, high, fmt, level)})"


def with_interval(value, low, high, fmt=ratio, level: float = 0.95) -> str:
    """``0.60, 95% CI 0.58 to 0.63``: an estimate inside a parenthesis that names it."""
    return f"{fmt(value)}, {interval(low, high, fmt, level)}"


def date(value, period: str = "day") -> str:
    """A timestamp as a reader names it: ``May 2024``, ``the week of 06 May 2024``, ``06 May 2024``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING
    ts = pd.Timestamp(value)
    if period == "month":
        return f"{ts:%B %Y}"
    if period == "week":
        return f"the week of {ts:%d %b %Y}"
    return f"{ts:%d %b %Y}"


def plural(n, word: str, plural_word: str | None = None) -> str:
    """``1 user``, ``2,357 users``."""
    v = _finite(n)
    one = v is not None and round(v) == 1
    return f"{count(n)} {word if one else (plural_word or word + 's')}"


def lower_first(text: str) -> str:
    """A sentence made a clause: ``The model ...`` -> ``the model ...``; an
    acronym (``BG/NBD``, ``SRM``) keeps its capitals."""
    if not text or (len(text) > 1 and text[1].isupper()):
        return text
    return text[0].lower() + text[1:]


def listing(items) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# ------------------------------------------------------------------ tables
FORMATS = {
    "count": count,
    "number": number,
    "percent": percent,
    "signed_percent": signed_percent,
    "points": points,
    "ratio": ratio,
    "p_value": p_value,
    "fixed": fixed,
    "text": lambda v: MISSING if v is None or (isinstance(v, float) and not math.isfinite(v)) else str(v),
}


def display_table(frame: pd.DataFrame, columns: dict, *, currency: str | None = None, index: str | None = None) -> pd.DataFrame:
    """A table for people from ``frame``: ``columns`` maps each column to
    show to ``(heading, format)``, where format is a name in :data:`FORMATS`,
    ``"money"`` (with ``currency``) or a function of one value. Columns not
    named are left out, so no internal name or all-empty column reaches a
    reader; a column whose every value is missing is dropped. ``index``:
    a heading for the frame's index, shown as the first column."""
    out = {}
    if index is not None:
        out[index] = [FORMATS["text"](v) for v in frame.index]
    for col, (heading, fmt) in columns.items():
        if col not in frame.columns:
            continue
        values = frame[col]
        if _all_missing(values):
            continue
        if fmt == "money":
            fn = lambda v: money(v, currency)  # noqa: E731
        elif callable(fmt):
            fn = fmt
        else:
            fn = FORMATS[fmt]
        out[heading] = [fn(v) for v in values]
    return pd.DataFrame(out)


def _all_missing(values: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(values):
        arr = np.asarray(values, dtype=float)
        return not np.isfinite(arr).any()
    return bool(values.isna().all())


def is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))

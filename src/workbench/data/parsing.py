"""Reading typed values on every backend: the one place timestamps are parsed.

Every timestamp that enters a dataset -- a CSV cell, a Parquet column, a
warehouse column, a mapped export's column -- goes through :func:`to_utc`,
which returns a naive timestamp in UTC and gives the same instant on DuckDB,
PostgreSQL and PySpark:

- text in ISO 8601 (``2024-01-01``, ``2024-01-01 09:30:00``,
  ``2024-01-01T09:30:00.250+14:00``, ``...Z``): a UTC offset, when written,
  is honoured (``+14:00`` is 14 hours ahead of UTC); text without one is a
  local time in ``timezone`` (default UTC);
- text in a stated ``format`` (strftime directives, e.g. ``%m/%d/%Y %H:%M``):
  a local time in ``timezone``;
- a timestamp column with a time zone: converted to UTC (``timezone`` is not
  needed); without one: a local time in ``timezone``; a date: midnight there.

Text that does not parse becomes null (never an error from deep inside an
engine); callers count those rows and report them once, with
:func:`format_hint` naming a format that would parse them. A local time that
a daylight-saving change makes ambiguous (the repeated hour in autumn) is read
as standard time, the later of the two instants, on every engine; one that
does not exist (the skipped hour in spring) is read as if the clock had not
yet moved forward.
"""

from __future__ import annotations

import datetime as _dt
import re
import zoneinfo

import ibis
import ibis.expr.datatypes as dt

#: strftime directives a ``format`` may use, and how each engine writes them
DIRECTIVES = {
    #      DuckDB  Spark (Java)  PostgreSQL    regex (a guard for PostgreSQL)
    "Y": ("%Y", "yyyy", "YYYY", r"[0-9]{4}"),
    "y": ("%y", "yy", "YY", r"[0-9]{2}"),
    "m": ("%m", "M", "MM", r"(0?[1-9]|1[0-2])"),
    "d": ("%d", "d", "DD", r"(0?[1-9]|[12][0-9]|3[01])"),
    "H": ("%H", "H", "HH24", r"([01]?[0-9]|2[0-3])"),
    "I": ("%I", "h", "HH12", r"(0?[1-9]|1[0-2])"),
    "M": ("%M", "m", "MI", r"[0-5]?[0-9]"),
    "S": ("%S", "s", "SS", r"[0-5]?[0-9]"),
    "f": ("%f", "SSSSSS", "US", r"[0-9]{1,6}"),
    "p": ("%p", "a", "AM", r"(AM|PM)"),
    "b": ("%b", "MMM", "Mon", r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"),
}
_DAY_PARTS = {"Y", "y", "m", "d", "b"}
_DIRECTIVE = re.compile(r"%(.)")
#: ISO 8601 text as every engine reads it alike (a guard applied on all of them);
#: groups 1-3 are year, month and day (checked against the calendar by _real_day)
_ISO = re.compile(
    r"^\s*([0-9]{4})-(0?[1-9]|1[0-2])-(0?[1-9]|[12][0-9]|3[01])"
    r"(?:[ T](?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,9})?)?)?"
    r"\s*(?:Z|UTC|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?\s*$"
)
_DATE = r"^\s*([0-9]{4})-(0?[1-9]|1[0-2])-(0?[1-9]|[12][0-9]|3[01])\s*$"
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_OFFSET = r"(Z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)\s*$"
_NUMBER = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"

#: formats tried on a sample when text does not parse (first that parses all wins)
COMMON_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f",
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%m/%d/%Y",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
    "%m/%d/%y %H:%M", "%m/%d/%y", "%d/%m/%y %H:%M", "%d/%m/%y",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y",
    "%d %b %Y %H:%M:%S", "%d %b %Y %H:%M", "%d %b %Y", "%d-%b-%Y %H:%M:%S", "%d-%b-%Y", "%b %d %Y %H:%M", "%b %d %Y",
    "%Y%m%d %H%M%S", "%Y%m%d",
)


# ------------------------------------------------------------------ checks
def check_format(fmt: str) -> str | None:
    """Why ``fmt`` cannot be used as a timestamp format, or None if it can."""
    if not isinstance(fmt, str) or not fmt.strip():
        return "must be a non-empty strftime pattern such as '%m/%d/%Y %H:%M'"
    for d in _DIRECTIVE.findall(fmt):
        if d in ("z", "Z"):
            return ("a UTC offset (%z) cannot be part of a format; text with an offset in ISO 8601 "
                    "(2024-01-01T09:30:00+02:00) is read without a format: leave format out")
        if d not in DIRECTIVES and d != "%":
            return f"directive %{d} is not supported (use {', '.join('%' + k for k in DIRECTIVES)})"
    if "%Y" not in fmt and "%y" not in fmt:
        return "has no year (%Y or %y)"
    return None


def check_timezone(name: str) -> str | None:
    """Why ``name`` is not a time zone, or None if it is (IANA names: UTC, America/New_York)."""
    if not isinstance(name, str) or not name.strip():
        return "must be an IANA time zone name such as UTC or America/New_York"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"{name!r} is not a known time zone (use an IANA name such as UTC, Europe/Berlin, America/New_York)"
    return None


def _python_parses(fmt: str, value: str) -> bool:
    try:
        _dt.datetime.strptime(value.strip(), fmt)
    except ValueError:
        return False
    return True


def _iso_day(value: str) -> bool:
    m = _ISO.match(value)
    if not m:
        return False
    try:
        _dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return False
    return True


def parses_all(fmt: str | None, values) -> bool:
    """Whether every value parses with ``fmt`` (None: ISO 8601, offsets allowed)."""
    if fmt is None:
        return all(_iso_day(v) for v in values)
    return all(_python_parses(fmt, v) for v in values)


def guess_formats(values) -> list[str]:
    """Every format (ISO 8601 as None first, then :data:`COMMON_FORMATS`)
    that parses all ``values`` (texts; blanks ignored)."""
    values = [str(v) for v in values if v is not None and str(v).strip()]
    if not values:
        return []
    out = [None] if parses_all(None, values) else []
    return out + [f for f in COMMON_FORMATS if parses_all(f, values)]


def format_hint(values, tried: str | None = None, advice: str = 'set timestamps: format: "{fmt}"') -> str:
    """A sentence naming a format that parses every sampled value, for an
    error message; ``advice`` says where to put it (``{fmt}`` is the format)."""
    found = [f for f in guess_formats(values) if f != tried]
    if not found:
        return "no common format parses them all; give the export's pattern as timestamps: format (strftime, e.g. '%d/%m/%Y %H:%M')"
    best = found[0]
    if best is None:
        return "they are ISO 8601 (with or without a UTC offset): leave timestamps: format out"
    text = f"format '{best}' parses all {len(values):,} sampled value(s): " + advice.format(fmt=best)
    swapped = best.replace("%m", "%M_").replace("%d", "%m").replace("%M_", "%d") if "%m" in best and "%d" in best else None
    if swapped and swapped in found:
        text += f" (so does '{swapped}': check whether the export writes month or day first)"
    return text


def sample_values(t: ibis.Table, text: ibis.Value, parsed: ibis.Value, n: int = 500) -> list[str]:
    """Up to ``n`` distinct texts that did not parse and ``n`` others from ``t``,
    to guess a format from (failures first)."""
    blank = text.isnull() | (text.strip() == "")
    failed = t.filter(~blank & parsed.isnull()).select(v=text.strip()).distinct().limit(n).to_pandas()["v"].tolist()
    others = t.filter(~blank & parsed.notnull()).select(v=text.strip()).distinct().limit(n).to_pandas()["v"].tolist()
    return failed + others


# ------------------------------------------------------------------ engine functions
def _builtin(name: str, args: tuple, out):
    """An engine's own two-argument SQL function as an Ibis function."""

    def call(a, b): ...  # pragma: no cover - never called; Ibis compiles a call by name

    return ibis.udf.scalar.builtin(call, name=name, signature=(args, out))


_TZ = dt.Timestamp(timezone="UTC")
_duck_strptime = _builtin("try_strptime", (dt.string, dt.string), dt.timestamp)
_duck_timezone = _builtin("timezone", (dt.string, dt.timestamp), _TZ)
_pg_to_timestamp = _builtin("to_timestamp", (dt.string, dt.string), _TZ)
_pg_timezone = _builtin("timezone", (dt.string, dt.timestamp), _TZ)
_spark_to_timestamp = _builtin("try_to_timestamp", (dt.string, dt.string), dt.timestamp)
_spark_to_utc = _builtin("to_utc_timestamp", (dt.timestamp, dt.string), dt.timestamp)
_spark_from_utc = _builtin("from_utc_timestamp", (dt.timestamp, dt.string), dt.timestamp)


def backend_name(expr) -> str:
    """The name of the backend an expression runs on (``duckdb``, ``postgres``, ``pyspark``...)."""
    try:
        return ibis.get_backend(expr).name
    except Exception:  # an unbound expression (tests, memtables): DuckDB runs it
        return "duckdb"


def _java(fmt: str) -> str:
    out, i = [], 0
    literal = ""
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            if literal:
                out.append("'" + literal.replace("'", "''") + "'" if re.search("[A-Za-z]", literal) else literal)
                literal = ""
            d = fmt[i + 1]
            out.append("%" if d == "%" else DIRECTIVES[d][1])
            i += 2
        else:
            literal += fmt[i]
            i += 1
    if literal:
        out.append("'" + literal.replace("'", "''") + "'" if re.search("[A-Za-z]", literal) else literal)
    return "".join(out)


def _postgres(fmt: str) -> str:
    """PostgreSQL's to_timestamp pattern for ``fmt``."""
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            out.append("%" if fmt[i + 1] == "%" else DIRECTIVES[fmt[i + 1]][2])
            i += 2
        else:
            out.append(f'"{fmt[i]}"' if fmt[i].isalpha() else fmt[i])
            i += 1
    return "".join(out)


def _pattern(fmt: str) -> tuple[str, dict]:
    """A regex that text in ``fmt`` matches, and the group of each of year
    (``Y``/``y``), month (``m``/``b``) and day (``d``) in it."""
    regex, groups, i = [], {}, 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            d = fmt[i + 1]
            if d == "%":
                regex.append("%")
            else:
                inner = DIRECTIVES[d][3].replace("(", "(?:")
                if d in _DAY_PARTS:
                    groups[d] = len(groups) + 1
                    regex.append(f"({inner})")
                else:
                    regex.append(inner)
            i += 2
        else:
            regex.append(re.escape(fmt[i]))
            i += 1
    return "^\\s*" + "".join(regex) + "\\s*$", groups


def _real_day(text: ibis.Value, regex: str, groups: dict) -> ibis.Value:
    """Whether the text names a day the calendar has (no 30 February, no
    29 February in a common year), from the year, month and day groups of ``regex``."""
    def part(key):
        return text.re_extract(regex, groups[key])

    if "Y" in groups:
        year = part("Y").cast("int32")
    elif "y" in groups:
        year = part("y").cast("int32") + 2000
    else:
        year = ibis.literal(2000)  # no year: any day of any month is possible
    if "m" in groups:
        month = part("m").cast("int32")
    elif "b" in groups:
        name = part("b").lower()
        month = ibis.cases(*[(name == m, i + 1) for i, m in enumerate(_MONTHS)], else_=0)
    else:
        month = ibis.literal(1)
    if "d" not in groups:
        return ibis.literal(True)
    day = part("d").cast("int32")
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    last = ibis.cases((month == 2, leap.ifelse(29, 28)), (month.isin([4, 6, 9, 11]), 30), else_=31)
    return day <= last


def _guard(text: ibis.Value, regex: str, groups: dict) -> ibis.Value:
    """True where the text parses on every engine alike (PostgreSQL raises on the rest)."""
    return text.re_search(regex).ifelse(_real_day(text, regex, groups), False)


def _localize(ts: ibis.Value, timezone: str, backend: str) -> ibis.Value:
    """A naive local time in ``timezone`` as naive UTC."""
    if timezone in ("UTC", "Etc/UTC", "GMT", "Etc/GMT"):
        return ts
    if backend == "pyspark":
        utc = _spark_to_utc(ts, timezone)
        later = utc + ibis.interval(hours=1)
        # the repeated autumn hour: take the later instant (standard time), as DuckDB and PostgreSQL do
        return (_spark_from_utc(later, timezone) == ts).ifelse(later, utc)
    fn = _pg_timezone if backend == "postgres" else _duck_timezone
    return fn(timezone, ts).cast("timestamp")


def _iso_text(s: ibis.Value, timezone: str, backend: str) -> ibis.Value:
    text = s.strip()
    ok = _guard(text, _ISO.pattern, {"Y": 1, "m": 2, "d": 3})
    if backend == "pyspark":  # Spark reads an offset in a cast to TIMESTAMP itself
        aware = naive = text.try_cast("timestamp")
    elif backend == "postgres":
        aware, naive = text.cast(_TZ).cast("timestamp"), text.cast("timestamp")
    else:
        aware, naive = text.try_cast(_TZ).cast("timestamp"), text.try_cast("timestamp")
    if timezone not in ("UTC", "Etc/UTC", "GMT", "Etc/GMT"):
        aware = text.re_search(_OFFSET).ifelse(aware, _localize(naive, timezone, backend))
    return ok.ifelse(aware, ibis.null("timestamp"))


def _formatted_text(s: ibis.Value, fmt: str, timezone: str, backend: str) -> ibis.Value:
    text = s.strip()
    if backend == "pyspark":
        local = _spark_to_timestamp(text, _java(fmt))
    elif backend == "postgres":
        local = _pg_to_timestamp(text, _postgres(fmt)).cast("timestamp")
    else:
        local = _duck_strptime(text, fmt)
    regex, groups = _pattern(fmt)
    return _localize(_guard(text, regex, groups).ifelse(local, ibis.null("timestamp")), timezone, backend)


def to_utc(col: ibis.Value, *, format: str | None = None, timezone: str | None = None) -> ibis.Value | None:
    """``col`` as a naive UTC timestamp (see the module docstring), or None
    if its type cannot hold a timestamp (a number, a boolean...)."""
    timezone = timezone or "UTC"
    backend = backend_name(col)
    t = col.type()
    if t.is_timestamp():
        if t.timezone:
            return col.cast("timestamp")  # every session runs in UTC: the cast gives UTC wall time
        return _localize(col, timezone, backend)
    if t.is_date():
        return _localize(col.cast("timestamp"), timezone, backend)
    if t.is_string():
        return _formatted_text(col, format, timezone, backend) if format else _iso_text(col, timezone, backend)
    return None


def to_date(col: ibis.Value) -> ibis.Value | None:
    """``col`` as a date (ISO text, a date or a timestamp's UTC day), or None
    if its type cannot hold one."""
    t = col.type()
    if t.is_date():
        return col
    if t.is_timestamp():
        return to_utc(col).date()
    if t.is_string():
        text = col.strip()
        typed = text.cast("date") if backend_name(col) == "postgres" else text.try_cast("date")
        return _guard(text, _DATE, {"Y": 1, "m": 2, "d": 3}).ifelse(typed, ibis.null("date"))
    return None


def to_number(col: ibis.Value) -> ibis.Value | None:
    """``col`` as float64 (a number, or text holding one), or None if its type cannot hold one."""
    t = col.type()
    if t.is_numeric():
        return col.cast("float64")
    if t.is_string():
        if backend_name(col) == "postgres":
            return col.re_search(_NUMBER).ifelse(col.cast("float64"), ibis.null("float64"))
        return col.try_cast("float64")
    return None


__all__ = ["COMMON_FORMATS", "DIRECTIVES", "check_format", "check_timezone", "format_hint", "guess_formats",
           "parses_all", "sample_values", "to_date", "to_number", "to_utc"]

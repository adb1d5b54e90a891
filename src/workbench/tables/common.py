"""What every analysis table shares: time arithmetic that gives the same
answer on every backend, the observation end, argument checks.

Time is computed from whole seconds since 1970-01-01 UTC
(``floor(epoch_seconds)``, a BIGINT on DuckDB and on PySpark), so durations,
day numbers and bins are integer arithmetic and do not depend on how a
backend represents timestamps, rounds casts or divides integers.
"""

from __future__ import annotations

import math
import numbers

import ibis
import pandas as pd

from workbench.data.contract import reserved
from workbench.errors import ParameterError

DAY = 86_400  # seconds
PERIODS = ("day", "week", "month")
TIME_UNITS = ("day", "week")
EXPOSURES = ("feedback", "adopted")
#: how churn is read from events (docs/tables.md, "Churn"): only ``cancel``
#: events, only a silence of ``churn_after_days`` before the observation end,
#: or whichever of the two comes first
CHURN_RULES = ("cancel", "inactivity", "cancel_or_inactivity")
DEFAULT_CHURN = "cancel_or_inactivity"
#: users columns that are not attributes (identity, time origin, the referral link)
NON_ATTRIBUTES = ("user_id", "signup_at", "referred_by")


# ------------------------------------------------------------------ time
def seconds(ts: ibis.Value) -> ibis.Value:
    """Whole seconds since 1970-01-01 UTC (int64)."""
    return ts.epoch_seconds().floor().cast("int64")


def day_number(ts: ibis.Value) -> ibis.Value:
    """UTC calendar day as days since 1970-01-01 (int64)."""
    return (seconds(ts) // DAY).cast("int64")


def period_number(ts: ibis.Value, period: str) -> ibis.Value:
    """Consecutive integer per period: days, Monday-based weeks or months since 1970."""
    if period == "day":
        return day_number(ts)
    if period == "week":  # 1970-01-01 was a Thursday: day + 3 counts from Monday 1969-12-29
        return ((day_number(ts) + 3) // 7).cast("int64")
    return (ts.year() * 12 + ts.month() - 1).cast("int64")


def period_start(ts: ibis.Value, period: str) -> ibis.Value:
    """The date the period holding ``ts`` starts (weeks start on Monday)."""
    return ts.truncate({"day": "D", "week": "W", "month": "M"}[period]).date()


def days(secs: ibis.Value) -> ibis.Value:
    """Seconds as fractional days (float64)."""
    return secs.cast("float64") / DAY


def constant(value: int | float, dtype: str) -> ibis.Value:
    """``value`` as a column constant of exactly ``dtype`` ("int64" or
    "float64"). Ibis writes numeric literals bare (``0``, ``0.0``), which
    DuckDB and Spark read as INTEGER or DECIMAL (ibis issue 10890), and drops
    a cast to the type it already gives the literal; a cast from the text
    (the shortest exact form of the number) is kept by both."""
    if dtype == "int64" and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return ibis.literal(str(int(value))).cast(dtype)
    if dtype == "float64" and isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        return ibis.literal(repr(float(value))).cast(dtype)
    raise TypeError(f"constant(): {value!r} is not a finite {dtype} value")


def as_bigint(total: ibis.Value) -> ibis.Value:
    """A SUM of integers (aggregate or window) as a real int64. DuckDB sums
    integers into a 128-bit integer that reaches pandas as Python Decimal
    objects, and ibis drops a plain cast to int64 (it already types the sum as
    int64); casting through DECIMAL(38, 0) keeps both steps exact."""
    if not total.type().is_integer():
        raise TypeError(f"as_bigint(): expected an integer sum, got {total.type()}")
    return total.cast("decimal(38, 0)").cast("int64")


def ts_literal(ts: pd.Timestamp) -> ibis.Value:
    return ibis.literal(pd.Timestamp(ts).to_pydatetime(), type="timestamp")


def epoch_seconds(ts: pd.Timestamp) -> int:
    """A Python timestamp (naive = UTC) as whole seconds since 1970, like :func:`seconds`."""
    ts = pd.Timestamp(ts)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(math.floor((ts - pd.Timestamp("1970-01-01")).total_seconds()))


# ------------------------------------------------------------------ dataset
def check_backend(ds) -> None:
    """Timestamps without a zone are UTC: on PySpark the session time zone
    must be UTC, or durations across daylight-saving changes are off by an hour."""
    con = ds.con
    if getattr(con, "name", None) == "pyspark":
        session = getattr(con, "_session", None)
        tz = session.conf.get("spark.sql.session.timeZone") if session is not None else "UTC"
        if tz not in ("UTC", "Etc/UTC", "GMT", "Z", "+00:00"):
            raise ParameterError(
                f"the Spark session's time zone is {tz!r}, but dataset timestamps are UTC: "
                "build the session with .config('spark.sql.session.timeZone', 'UTC') "
                "(or spark.conf.set('spark.sql.session.timeZone', 'UTC')) before loading the dataset"
            )


def require(ds, table_fn: str, *tables: str) -> None:
    """Raise a clear error if ``ds`` lacks a table that ``table_fn`` needs."""
    for name in tables:
        if getattr(ds, name, None) is None:
            raise ParameterError(
                f"{table_fn}() needs the {name!r} table, but dataset {ds.name!r} ({ds.path}) has none; "
                f"add {name}.parquet or {name}.csv to the dataset folder, or choose another table"
            )
    check_backend(ds)


def observation_end(ds, table_fn: str) -> pd.Timestamp:
    end = ds.observation_end
    if end is None:
        raise ParameterError(
            f"{table_fn}(): dataset {ds.name!r} has no events or signups to take an observation end from; "
            "set observation_end in its dataset.yml"
        )
    return pd.Timestamp(end)


def attribute_columns(ds) -> list[str]:
    """Every users column other than user_id, signup_at and referred_by."""
    return [c for c in ds.users.columns if c not in NON_ATTRIBUTES]


def observed_users(ds, end: pd.Timestamp) -> ibis.Table:
    """Users who signed up on or before the observation end."""
    u = ds.users
    return u.filter(u.signup_at <= ts_literal(end))


def observed_events(ds, end: pd.Timestamp) -> ibis.Table:
    """Events on or before the observation end (later ones are ignored)."""
    e = ds.events
    return e.filter(e.event_at <= ts_literal(end))


# ------------------------------------------------------------------ arguments
def check_choice(table_fn: str, name: str, value, choices) -> str:
    if value not in choices:
        raise ParameterError(f"{table_fn}(): {name}={value!r} is not one of {', '.join(map(repr, choices))}")
    return value


def check_positive(table_fn: str, name: str, value, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        also = " or None" if allow_none else ""
        raise ParameterError(f"{table_fn}(): {name} must be a positive number of days{also}, got {value!r}")
    return value


def check_churn(table_fn: str, churn: str, churn_after_days) -> None:
    """A churn rule from :data:`CHURN_RULES` and a positive inactivity window
    (checked under every rule, so a typo never waits for a rule that uses it)."""
    check_choice(table_fn, "churn", churn, CHURN_RULES)
    check_positive(table_fn, "churn_after_days", churn_after_days)


def bin_seconds(table_fn: str, bin_days, name: str = "bin_days") -> int:
    """A positive length in days (argument ``name``) as whole seconds."""
    check_positive(table_fn, name, bin_days)
    secs = round(bin_days * DAY)
    if secs < 1:
        raise ParameterError(f"{table_fn}(): {name}={bin_days!r} is shorter than a second")
    return secs


def check_date(table_fn: str, name: str, value) -> pd.Timestamp:
    """A date-like argument as a day (time of day dropped)."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        ts = None
    if ts is None or pd.isna(ts):
        raise ParameterError(f"{table_fn}(): {name}={value!r} is not a date; give e.g. '1997-09-30'")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


def check_strata(table_fn: str, ds, strata) -> list[str]:
    if isinstance(strata, str):
        strata = (strata,)
    strata = list(strata or ())
    available = attribute_columns(ds)
    unknown = [s for s in strata if s not in available]
    if unknown:
        raise ParameterError(
            f"{table_fn}(): strata {', '.join(map(repr, unknown))} not among the user attributes of dataset "
            f"{ds.name!r} ({', '.join(available) or 'none'}); pass strata=() for no strata"
        )
    clash = reserved(strata)  # refused by validation too; the list is the contract's
    if clash:
        raise ParameterError(f"{table_fn}(): strata {clash} clash with the table's own columns; rename that attribute")
    if len(set(strata)) != len(strata):
        raise ParameterError(f"{table_fn}(): strata {strata} name a column twice")
    return strata

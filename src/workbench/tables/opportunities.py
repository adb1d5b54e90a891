"""Repeat purchasing at discrete opportunities: the (frequency, recency,
periods) patterns of the BG/BB model (``workbench.models.clv.fit_bgbb``).

Calendar periods (weeks starting Monday, months or years, UTC) are the
transaction opportunities. A customer's *cohort* is the period of her first
purchase; her opportunities are the following periods that ended on or
before ``calibration_end`` (``periods`` of them), and at each one she either
bought (at least one purchase in the period) or not:

- ``frequency``: opportunities with a purchase;
- ``recency``: the last of them (1 = the period after the cohort's), 0 when none;
- ``periods``: the number of opportunities, the same for every member of a cohort.

Customers whose cohort period has not been followed by a whole period before
``calibration_end`` are left out. One row per (cohort, frequency, recency)
with ``n`` customers, so the table's size does not grow with the number of
customers. BG/BB is fitted one cohort at a time (equal ``periods``).
"""

from __future__ import annotations

import ibis
import pandas as pd

from workbench.errors import ParameterError
from workbench.tables.common import check_choice, check_date, constant, day_number, epoch_seconds, observation_end, observed_events, require

OPPORTUNITY_PERIODS = ("week", "month", "year")


def _period_number(ts, period: str):
    if period == "week":  # 1970-01-01 was a Thursday: day + 3 counts from Monday 1969-12-29
        return ((day_number(ts) + 3) // 7).cast("int64")
    if period == "month":
        return (ts.year() * 12 + ts.month() - 1).cast("int64")
    return ts.year().cast("int64")


def _python_period(day: pd.Timestamp, period: str) -> int:
    if period == "week":
        return (epoch_seconds(day) // 86_400 + 3) // 7
    if period == "month":
        return day.year * 12 + day.month - 1
    return day.year


def repeat_opportunities(ds, *, period: str = "month", calibration_end=None) -> ibis.Table:
    """One row per (cohort, frequency, recency): ``cohort`` (the date the
    first-purchase period starts), ``frequency``, ``recency``, ``periods``
    and ``n`` (customers), for periods of ``period`` (``"week"``,
    ``"month"`` or ``"year"``) up to ``calibration_end`` (a date, default
    the observation end); see the module docstring."""
    fn = "repeat_opportunities"
    require(ds, fn, "events")
    check_choice(fn, "period", period, OPPORTUNITY_PERIODS)
    end = observation_end(ds, fn)
    cal = check_date(fn, "calibration_end", end if calibration_end is None else calibration_end)
    if cal.normalize() > end.normalize():
        raise ParameterError(f"{fn}(): calibration_end {cal.date()} is after the observation end {end.date()} of dataset {ds.name!r}")
    last = _python_period(cal + pd.Timedelta(days=1), period) - 1  # the last period that ended by calibration_end
    cal_n = epoch_seconds(cal) // 86_400
    e = observed_events(ds, end)
    p = e.filter((e.event_type == "purchase") & (day_number(e.event_at) <= cal_n))
    p = p.mutate(k=_period_number(p.event_at, period))
    per = p.group_by(["user_id", "k"]).aggregate(start=p.event_at.min().truncate({"week": "W", "month": "M", "year": "Y"}[period]).date())
    first = per.group_by("user_id").aggregate(k0=per.k.min(), cohort=per.start.argmin(per.k))
    first = first.filter(first.k0 < last)
    j = per.join(first, "user_id")
    j = j.filter((j.k > j.k0) & (j.k <= last))
    rep = j.group_by("user_id").aggregate(frequency=j.count().cast("int64"), recency=(j.k.max() - j.k0.max()).cast("int64"))
    c = first.left_join(rep, "user_id").select(
        first.cohort,
        frequency=ibis.coalesce(rep.frequency, constant(0, "int64")).cast("int64"),
        recency=ibis.coalesce(rep.recency, constant(0, "int64")).cast("int64"),
        periods=(constant(int(last), "int64") - first.k0).cast("int64"),
    )
    out = c.group_by(["cohort", "frequency", "recency", "periods"]).aggregate(n=c.count().cast("int64"))
    return out.order_by(["cohort", "frequency", "recency"])

"""Daily acquisitions and repeat purchases of a calibration customer base:
the actual series behind a CLV tracking plot (cumulative repeat purchases,
actual versus expected, through calibration and holdout).

Same conventions as :func:`workbench.tables.repeat_summary`: purchases are
counted by UTC calendar day, a customer is a user with a purchase day on or
before ``calibration_end``, and a repeat purchase is any later purchase day
of such a customer. One row per day, so the table's size does not grow with
the number of customers.
"""

from __future__ import annotations

import ibis

from workbench.errors import ParameterError
from workbench.tables.common import check_date, day_number, epoch_seconds, observation_end, observed_events, require


def repeat_tracking(ds, *, calibration_end=None, holdout_end=None) -> ibis.Table:
    """One row per UTC day from the first purchase day to ``holdout_end``
    (days with neither count are left out): ``day`` (days since 1970-01-01),
    ``date``, ``new_customers`` (customers whose first purchase day it is) and
    ``repeat_purchases`` (repeat purchase days of the calibration customers on
    that day). ``calibration_end`` and ``holdout_end`` default to the
    observation end."""
    fn = "repeat_tracking"
    require(ds, fn, "events")
    end = observation_end(ds, fn)
    cal = check_date(fn, "calibration_end", end if calibration_end is None else calibration_end)
    hold = check_date(fn, "holdout_end", end if holdout_end is None else holdout_end)
    end_day = epoch_seconds(end) // 86_400
    cal_n, hold_n = epoch_seconds(cal) // 86_400, epoch_seconds(hold) // 86_400
    if hold_n < cal_n:
        raise ParameterError(f"{fn}(): holdout_end {hold.date()} is before calibration_end {cal.date()}")
    if cal_n > end_day or hold_n > end_day:
        raise ParameterError(f"{fn}(): calibration_end/holdout_end after the observation end {end.date()} of dataset {ds.name!r}")
    e = observed_events(ds, end)  # events after the observation end are ignored, as everywhere
    p = e.filter(e.event_type == "purchase")
    p = p.mutate(day=day_number(p.event_at))
    p = p.filter(p.day <= hold_n)
    days = p.group_by(["user_id", "day"]).aggregate(date=p.event_at.min().date())
    first = days.group_by("user_id").aggregate(first_day=days.day.min())
    first = first.filter(first.first_day <= cal_n)
    j = days.join(first, "user_id")
    per_day = j.group_by("day").aggregate(
        date=j.date.min(),
        new_customers=j.count(where=j.day == j.first_day).cast("int64"),
        repeat_purchases=j.count(where=j.day > j.first_day).cast("int64"),
    )
    return per_day.order_by("day")


def calibration_window(ds, *, calibration_end=None, holdout_end=None) -> dict:
    """The dates of a calibration/holdout split, checked against the data.

    Returns ``first_purchase`` (the first purchase day), ``calibration_end``,
    ``holdout_end`` and ``observation_end`` as Timestamps (days).
    ``calibration_end`` defaults to halfway (rounded down to a day) between the
    first purchase day and the observation end (for CDNOW: 1997-09-30, the
    split of the published analyses); ``holdout_end`` to the observation end.
    Empty strings mean the default. Raises ParameterError for a calibration end
    before the first purchase or after the observation end, or a holdout end
    outside (calibration end, observation end]; DataError-free datasets without
    purchases raise ParameterError too (nothing to split)."""
    import pandas as pd

    fn = "calibration_window"
    require(ds, fn, "events")
    end_ts = observation_end(ds, fn)
    end = end_ts.normalize()
    e = observed_events(ds, end_ts)  # events after the observation end are ignored, as everywhere
    first = e.filter(e.event_type == "purchase").event_at.min().execute()
    if first is None or pd.isna(first):
        raise ParameterError(
            f"{fn}(): dataset {ds.name!r} has no purchase events on or before its observation "
            f"end {end_ts}, so there is no customer base to split into calibration and holdout"
        )
    first = pd.Timestamp(first).normalize()
    cal = check_date(fn, "calibration_end", calibration_end) if calibration_end not in (None, "") else first + (end - first) / 2
    cal = pd.Timestamp(cal).floor("D")
    hold = check_date(fn, "holdout_end", holdout_end) if holdout_end not in (None, "") else end
    if cal < first or cal > end:
        raise ParameterError(
            f"{fn}(): calibration_end {cal.date()} is outside the purchases of dataset {ds.name!r}, which run from "
            f"{first.date()} to the observation end {end.date()}; choose a date in between (or leave it empty for "
            f"the default, {(first + (end - first) / 2).floor('D').date()})"
        )
    if hold < cal or hold > end:
        raise ParameterError(
            f"{fn}(): holdout_end {hold.date()} must lie between calibration_end {cal.date()} and the observation end "
            f"{end.date()} of dataset {ds.name!r} (leave it empty for the observation end)"
        )
    return {"first_purchase": first, "calibration_end": cal, "holdout_end": hold, "observation_end": end}

"""KPIs per calendar period computed from users and events."""

from __future__ import annotations

import ibis
import pandas as pd

from workbench.tables.common import (
    PERIODS,
    as_bigint,
    check_choice,
    observation_end,
    observed_events,
    observed_users,
    period_start,
    require,
)

_FREQ = {"day": "D", "week": "W-MON", "month": "MS"}


def kpis(ds, *, period: str = "week") -> ibis.Table:
    """One row per period (``day``, ``week`` starting Monday, or ``month``;
    UTC) from the period of the first signup to the period of the
    observation end, with no gaps: ``period`` (date the period starts),
    ``active_users`` (users with any event), ``new_users`` (signups),
    ``customers`` (users with a purchase), ``first_time_customers`` (users
    whose first purchase falls in the period), ``revenue`` (sum of purchase
    amounts) and ``purchases`` (purchase events). Periods without any are
    zeros. Signups and events after the observation end are ignored; the
    last period is usually partial: ``complete`` is True for the periods that
    ended by the observation end.
    """
    check_choice("kpis", "period", period, PERIODS)
    require(ds, "kpis", "users", "events")
    end = observation_end(ds, "kpis")
    e = observed_events(ds, end)
    e = e.mutate(period=period_start(e.event_at, period))
    is_purchase = e.event_type == "purchase"
    # per (period, user) first, so the distinct counts below are plain counts
    pu = e.group_by(["period", "user_id"]).aggregate(
        purchases=e.count(where=is_purchase), revenue=e.amount.sum(where=is_purchase)
    )
    activity = pu.group_by("period").aggregate(
        active_users=pu.count().cast("int64"),
        customers=pu.count(where=pu.purchases > 0).cast("int64"),
        revenue=pu.revenue.sum().cast("float64"),
        purchases=as_bigint(pu.purchases.sum()),
    )
    p = e.filter(is_purchase)
    first = p.group_by("user_id").aggregate(first_at=p.event_at.min())
    first = first.mutate(period=period_start(first.first_at, period))
    first = first.group_by("period").aggregate(first_time_customers=first.count().cast("int64"))
    u = observed_users(ds, end)
    u = u.mutate(period=period_start(u.signup_at, period))
    new = u.group_by("period").aggregate(new_users=u.count().cast("int64"))

    spine = _spine(u, end, period)
    out = spine.left_join(activity, "period").left_join(new, "period").left_join(first, "period")
    counts = ("active_users", "new_users", "customers", "first_time_customers", "purchases")
    out = out.select(
        period=spine.period,
        complete=spine.complete,
        **{c: ibis.coalesce(out[c], 0).cast("int64") for c in counts},
        revenue=ibis.coalesce(out.revenue, 0.0).cast("float64"),
    )
    cols = ["period", "active_users", "new_users", "customers", "first_time_customers", "revenue", "purchases", "complete"]
    return out.select(*cols).order_by("period")


def _spine(u: ibis.Table, end: pd.Timestamp, period: str) -> ibis.Table:
    """Every period start from the first signup's period to the observation
    end's, and whether the period ended by the observation end (a small
    in-memory table; events never precede their user's signup)."""
    first = u.period.min().execute()
    dates = pd.DatetimeIndex([])
    if first is not None and not pd.isna(first):
        last = end.to_period({"day": "D", "week": "W-SUN", "month": "M"}[period]).start_time
        dates = pd.date_range(pd.Timestamp(first), last, freq=_FREQ[period])
    complete = dates.shift(1) <= end if len(dates) else []  # the next period's start: this one's end
    frame = pd.DataFrame({"period": pd.Series(list(dates.date), dtype="object"), "complete": pd.Series(complete, dtype=bool)})
    return ibis.memtable(frame, schema={"period": "date", "complete": "boolean"})

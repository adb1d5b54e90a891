"""Cohort retention: signup cohort by periods since signup."""

from __future__ import annotations

import ibis

from workbench.tables.common import (
    PERIODS,
    check_choice,
    observation_end,
    observed_events,
    observed_users,
    period_number,
    period_start,
    require,
    ts_literal,
)


def cohort_retention(ds, *, period: str = "month") -> ibis.Table:
    """One row per (signup ``cohort``, ``period_index``): ``cohort`` (date the
    signup period starts), ``period_index`` (calendar periods since the
    signup period; 0 is the signup period itself), ``cohort_size`` (users
    who signed up in the cohort), ``active`` (of them, users with any event
    in that period) and ``share`` (active / cohort_size).

    Every cohort has a row for each period index from 0 up to the period of
    the observation end (zeros where nobody was active); events after the
    observation end are ignored. Weeks start on Monday; periods are UTC.
    """
    check_choice("cohort_retention", "period", period, PERIODS)
    require(ds, "cohort_retention", "users", "events")
    end = observation_end(ds, "cohort_retention")
    end_n = period_number(ts_literal(end), period)

    u = observed_users(ds, end)
    u = u.select("user_id", cohort=period_start(u.signup_at, period), cohort_n=period_number(u.signup_at, period))
    cohorts = u.group_by(["cohort", "cohort_n"]).aggregate(cohort_size=u.count().cast("int64"))
    spine = cohorts.mutate(period_index=ibis.range(0, end_n - cohorts.cohort_n + 1).unnest().cast("int64"))

    e = observed_events(ds, end)
    e = e.select("user_id", event_n=period_number(e.event_at, period))
    e = e.distinct()  # one row per (user, active period) before the join
    j = e.join(u, "user_id")
    j = j.mutate(period_index=(j.event_n - j.cohort_n).cast("int64"))
    active = j.group_by(["cohort", "period_index"]).aggregate(active=j.count().cast("int64"))

    out = spine.left_join(active, ["cohort", "period_index"])
    out = out.select(
        cohort=spine.cohort,
        period_index=spine.period_index,
        cohort_size=spine.cohort_size,
        active=ibis.coalesce(out.active, 0).cast("int64"),
    )
    out = out.mutate(share=out.active.cast("float64") / out.cohort_size.cast("float64"))
    return out.order_by(["cohort", "period_index"])

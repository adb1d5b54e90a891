"""Survivors per period of signup cohorts in a subscription (contractual)
setting: the data of the shifted-beta-geometric retention model.

A user churns at her first ``cancel`` event (contractual churn; inactivity is
not churn here). Users are grouped into cohorts by signup month (or week);
period ``t`` of a user is the ``t``-th block of ``period_days`` days after her
signup. A cohort is followed for the number of whole periods that every one
of its members was observed (from the cohort's last signup to the
observation end), so the counts are not censored.
"""

from __future__ import annotations

import ibis

from workbench.errors import ParameterError
from workbench.tables.common import DAY, as_bigint, check_choice, check_positive, constant, epoch_seconds, observation_end, require, seconds


def subscription_survivors(ds, *, period_days: float = 30.0, cohort: str = "month") -> ibis.Table:
    """One row per (signup cohort, period): ``cohort`` (date the cohort's period
    starts), ``period`` (0, 1, ..., the last period every member was observed),
    ``survivors`` (members without a cancel in the first ``period`` periods; period
    0 holds the cohort size). Cohorts observed for less than one whole period are
    left out."""
    fn = "subscription_survivors"
    require(ds, fn, "users", "events")
    check_choice(fn, "cohort", cohort, ("week", "month"))
    check_positive(fn, "period_days", period_days)
    period_s = int(round(period_days * DAY))
    if period_s < DAY:
        raise ParameterError(f"{fn}(): period_days must be at least 1 day, got {period_days!r}")
    end_s = epoch_seconds(observation_end(ds, fn))
    u = ds.users
    u = u.filter(seconds(u.signup_at) <= end_s)
    e = ds.events
    cancels = e.filter(e.event_type == "cancel").group_by("user_id").aggregate(cancel_s=seconds(e.event_at).min())
    j = u.left_join(cancels, "user_id")
    signup_s = seconds(j.signup_at)
    j = j.mutate(
        cohort=j.signup_at.truncate("M" if cohort == "month" else "W").date(),
        signup_s=signup_s,
        # whole periods completed before the cancel (or a large number when never cancelled)
        full=ibis.coalesce(((j.cancel_s - signup_s) // period_s).cast("int64"), constant(10**9, "int64")),
    )
    meta = j.group_by("cohort").aggregate(size=j.count(), last_signup_s=j.signup_s.max())
    meta = meta.mutate(periods=((end_s - meta.last_signup_s) // period_s).cast("int64")).filter(lambda m: m.periods >= 1)
    counts = j.group_by(["cohort", "full"]).aggregate(users=j.count())
    max_periods = int(meta.periods.max().execute() or 0)
    grid = ibis.memtable({"period": list(range(0, max_periods + 1))}, schema={"period": "int64"})
    cells = meta.cross_join(grid).filter(lambda t: t.period <= t.periods)
    # survivors at period t: members whose first cancel came after t whole periods
    joined = cells.left_join(counts, [cells.cohort == counts.cohort, counts.full >= cells.period])
    out = joined.group_by([joined.cohort, joined.period]).aggregate(survivors=as_bigint(ibis.coalesce(joined.users.sum(), 0)))
    return out.order_by(["cohort", "period"])

"""Survivors per period of subscription cohorts (a contractual setting): the
data of the shifted-beta-geometric retention model.

Who counts as a subscriber (``start``):

- ``"first_purchase"`` (default): a user who paid, from her first purchase on
  (users who never paid, or cancelled before paying, hold no subscription
  and are not counted);
- ``"signup"``: every user from signup (a free membership that users end by
  cancelling).

A subscriber churns at her first ``cancel`` event after the start
(contractual churn; inactivity is not churn here). Subscribers are grouped
into cohorts by the month (or week) of their start; period ``t`` is the
``t``-th block of ``period_days`` days after the start. A cohort is followed
for the number of whole periods that every one of its members was observed
(from the cohort's last start to the observation end), so the counts are
not censored and survivors never rise within a cohort. A dataset without
``cancel`` events is not a subscription setting: the table refuses it.
"""

from __future__ import annotations

import ibis

from workbench.errors import ModelError, ParameterError
from workbench.tables.common import DAY, as_bigint, check_choice, check_positive, constant, epoch_seconds, observation_end, require, seconds

STARTS = ("first_purchase", "signup")


def subscription_survivors(ds, *, period_days: float = 30.0, cohort: str = "month", start: str = "first_purchase") -> ibis.Table:
    """One row per (cohort, period): ``cohort`` (date the cohort's start period
    begins), ``period`` (0, 1, ..., the last period every member was observed),
    ``survivors`` (subscribers without a cancel in the first ``period`` periods;
    period 0 holds the cohort size). Cohorts observed for less than one whole
    period are left out. Raises ModelError when the dataset has no ``cancel``
    events (no subscriptions end, so this is not a subscription setting)."""
    fn = "subscription_survivors"
    require(ds, fn, "users", "events")
    check_choice(fn, "cohort", cohort, ("week", "month"))
    check_choice(fn, "start", start, STARTS)
    check_positive(fn, "period_days", period_days)
    period_s = int(round(period_days * DAY))
    if period_s < DAY:
        raise ParameterError(f"{fn}(): period_days must be at least 1 day, got {period_days!r}")
    end = observation_end(ds, fn)
    end_s = epoch_seconds(end)
    e = ds.events
    e = e.filter(seconds(e.event_at) <= end_s)
    if int(e.filter(e.event_type == "cancel").count().execute()) == 0:
        raise ModelError(
            f"{fn}(): dataset {ds.name!r} has no cancel events, so no subscription ever ends: it is not a subscription "
            "(contractual) setting and the sBG model does not apply. Model churn from inactivity instead "
            "(workbench.tables.survival with churn='inactivity')."
        )
    if start == "signup":
        u = ds.users
        subs = u.filter(seconds(u.signup_at) <= end_s).select("user_id", start_at=u.signup_at)
    else:
        p = e.filter(e.event_type == "purchase")
        subs = p.group_by("user_id").aggregate(start_at=p.event_at.min())
    c = e.filter(e.event_type == "cancel")
    cancels = c.join(subs, "user_id").filter(lambda t: t.event_at >= t.start_at)
    first_cancel = cancels.group_by("user_id").aggregate(cancel_s=seconds(cancels.event_at).min())
    if start == "first_purchase":  # a cancel before the first purchase: no subscription was ever held
        before = c.join(subs, "user_id").filter(lambda t: t.event_at < t.start_at).select("user_id").distinct()
        subs = subs.anti_join(before, "user_id")
    j = subs.left_join(first_cancel, "user_id")
    start_s = seconds(j.start_at)
    j = j.mutate(
        cohort=j.start_at.truncate("M" if cohort == "month" else "W").date(),
        start_s=start_s,
        # whole periods completed before the cancel (or a large number when never cancelled)
        full=ibis.coalesce(((j.cancel_s - start_s) // period_s).cast("int64"), constant(10**9, "int64")),
    )
    meta = j.group_by("cohort").aggregate(size=j.count(), last_start_s=j.start_s.max())
    meta = meta.mutate(periods=((end_s - meta.last_start_s) // period_s).cast("int64")).filter(lambda m: m.periods >= 1)
    counts = j.group_by(["cohort", "full"]).aggregate(users=j.count())
    max_periods = int(meta.periods.max().execute() or 0)
    grid = ibis.memtable({"period": list(range(0, max_periods + 1))}, schema={"period": "int64"})
    cells = meta.cross_join(grid).filter(lambda t: t.period <= t.periods)
    # survivors at period t: members whose first cancel came after t whole periods
    joined = cells.left_join(counts, [cells.cohort == counts.cohort, counts.full >= cells.period])
    out = joined.group_by([joined.cohort, joined.period]).aggregate(survivors=as_bigint(ibis.coalesce(joined.users.sum(), 0)))
    return out.order_by(["cohort", "period"])

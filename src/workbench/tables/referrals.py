"""Referrals per user and exposure state, optionally per calendar period
(the data of a Poisson rate model of bringing others in, with log exposure
time as offset), and the same counted per (period, state, strata) cell, whose
size does not grow with the number of users."""

from __future__ import annotations

import ibis

from workbench.data.contract import reserved
from workbench.errors import ParameterError
from workbench.tables.common import (
    DEFAULT_CHURN,
    EXPOSURES,
    as_bigint,
    attribute_columns,
    bin_seconds,
    check_choice,
    check_strata,
    constant,
    days,
    observation_end,
    observed_users,
    seconds,
)
from workbench.tables.survival import lifetimes, spells


def referrals(
    ds,
    *,
    exposure: str = "feedback",
    churn: str = DEFAULT_CHURN,
    churn_after_days: float = 30,
    period_days: float | None = None,
) -> ibis.Table:
    """One row per (user, ``exposed`` state) with positive time in that
    state: ``user_id``, ``exposed`` (0/1), ``exposure_days`` (days observed
    alive in the state: the user's time (0, duration] of
    :func:`~workbench.tables.survival.survival` split at the first
    ``exposure`` event strictly before the end), ``referrals`` (users whose
    ``referred_by`` is this user and who signed up while this user was in
    that state: exposed from the first exposure event on, inclusive), then
    attributes. Referred users who sign up before the referrer or after the
    referrer's end (churn or observation end) are not counted; users with no
    observed time (churned at signup) have no rows.

    ``period_days``: also split by calendar period, ``period_days`` long from
    the first signup: one row per (user, state, ``period``) with time in it,
    ``period`` = 0, 1, ... after ``exposed``. A referral counts in the period
    its referred user signed up in (a signup exactly at the referrer's signup
    counts in the referrer's first period). Summed over periods, the rows
    equal the unsplit ones.
    """
    check_choice("referrals", "exposure", exposure, EXPOSURES)
    period_s = None if period_days is None else bin_seconds("referrals", period_days, "period_days")
    life = lifetimes(ds, "referrals", churn=churn, churn_after_days=churn_after_days, exposure=exposure)
    if "referred_by" not in ds.users.columns:
        raise ParameterError(
            f"referrals(): dataset {ds.name!r} has no users.referred_by column; "
            "add it (null, or the user_id of the referrer) to analyse referrals"
        )
    attrs = attribute_columns(ds)
    clash = reserved(attrs)  # refused by validation too; the list is the contract's
    if clash:
        raise ParameterError(
            f"referrals(): users attribute(s) {clash} of dataset {ds.name!r} clash with the table's own columns; "
            "rename them in users"
        )
    base = life.mutate(event=constant(0, "int64"))
    sp = spells(base, [*attrs, "signup_s"])

    u = ds.users
    referred = u.filter(u.referred_by.notnull()).select(referrer=u.referred_by, ref_s=seconds(u.signup_at))
    r = referred.join(base.select("user_id", "signup_s", "dur_s", "exp_s"), referred.referrer == base.user_id)
    r = r.mutate(t_s=r.ref_s - r.signup_s)
    r = r.filter((r.t_s >= 0) & (r.t_s <= r.dur_s))
    r = r.mutate(exposed=(r.exp_s.notnull() & (r.t_s >= r.exp_s)).cast("int64"))
    keys = ["user_id", "exposed"]
    if period_s is not None:
        sp, r = _by_period(ds, sp, r, period_s)
        keys.append("period")
    counts = r.group_by(keys).aggregate(referrals=r.count().cast("int64"))

    out = sp.left_join(counts, keys)
    out = out.select(
        **{k: sp[k] for k in keys},
        exposure_days=days(sp.stop_s - sp.start_s),
        referrals=ibis.coalesce(out.referrals, 0).cast("int64"),
        **{a: sp[a] for a in attrs},
    )
    return out.order_by(keys)


def _by_period(ds, sp: ibis.Table, r: ibis.Table, period_s: int) -> tuple[ibis.Table, ibis.Table]:
    """Spells (a, b] cut at calendar period boundaries: period p holds the
    time (p, p + 1] * ``period_s`` seconds after the first signup. A
    referral at calendar time x counts in period floor(x / ``period_s``),
    kept within the periods of the spell it counts in (so a referral at a
    spell's end on a boundary counts in the spell's last period)."""
    origin = seconds(observed_users(ds, observation_end(ds, "referrals")).signup_at.min()).as_scalar()
    # calendar seconds since the origin of each spell's (a, b]
    sp = sp.mutate(wb_a=sp.signup_s - origin + sp.start_s, wb_b=sp.signup_s - origin + sp.stop_s)
    sp = sp.mutate(wb_first=(sp.wb_a // period_s).cast("int64"), wb_last=((sp.wb_b - 1) // period_s).cast("int64"))
    spans = sp.select("user_id", "exposed", "wb_first", "wb_last")
    r = r.join(spans, ["user_id", "exposed"])
    r = r.mutate(period=ibis.greatest(r.wb_first, ibis.least(r.wb_last, (r.ref_s - origin) // period_s)).cast("int64"))
    cut = sp.mutate(period=ibis.range(sp.wb_first, sp.wb_last + 1).unnest().cast("int64"))
    lo, hi = cut.period * period_s, (cut.period + 1) * period_s
    cut = cut.mutate(
        start_s=ibis.greatest(cut.wb_a, lo) - cut.wb_a + cut.start_s,
        stop_s=ibis.least(cut.wb_b, hi) - cut.wb_a + cut.start_s,
    )
    return cut, r


def referral_counts(
    ds,
    *,
    exposure: str = "feedback",
    churn: str = DEFAULT_CHURN,
    churn_after_days: float = 30,
    period_days: float | None = 28,
    strata=("segment",),
) -> ibis.Table:
    """:func:`referrals` summed per cell: one row per (``period``,
    ``exposed``, strata...) with ``users`` (rows of :func:`referrals` in the
    cell: users with time in that state and period), ``exposure_days`` and
    ``referrals``. ``period_days=None``: one row per (``exposed``,
    strata...). Its size is periods x 2 x strata levels, whatever the number
    of users; a Poisson rate model on it with offset log(exposure_days) has
    the same estimates as on the per-user rows (the counts are its sufficient
    statistics); its user-clustered variance needs one more pass over
    :func:`referrals` (``workbench.models.referrals.referral_rate_ratio_cells``)."""
    strata = check_strata("referral_counts", ds, strata)
    rows = referrals(ds, exposure=exposure, churn=churn, churn_after_days=churn_after_days, period_days=period_days)
    keys = (["period"] if period_days is not None else []) + ["exposed", *strata]
    out = rows.group_by(keys).aggregate(
        users=rows.count().cast("int64"),
        exposure_days=rows.exposure_days.sum(),
        referrals=as_bigint(rows.referrals.sum()),
    )
    return out.order_by(keys)


"""Referrals per user and exposure state (the data of a Poisson rate model
of bringing others in, with log exposure time as offset)."""

from __future__ import annotations

import ibis

from workbench.errors import ParameterError
from workbench.tables.common import EXPOSURES, attribute_columns, check_choice, constant, days, seconds
from workbench.tables.survival import lifetimes, spells


def referrals(ds, *, exposure: str = "feedback", churn_after_days: float | None = 30) -> ibis.Table:
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
    """
    check_choice("referrals", "exposure", exposure, EXPOSURES)
    life = lifetimes(ds, churn_after_days, "referrals", exposure=exposure)
    if "referred_by" not in ds.users.columns:
        raise ParameterError(
            f"referrals(): dataset {ds.name!r} has no users.referred_by column; "
            "add it (null, or the user_id of the referrer) to analyse referrals"
        )
    attrs = attribute_columns(ds)
    base = life.mutate(event=constant(0, "int64"))
    sp = spells(base, attrs)

    u = ds.users
    referred = u.filter(u.referred_by.notnull()).select(referrer=u.referred_by, ref_s=seconds(u.signup_at))
    r = referred.join(base.select("user_id", "signup_s", "dur_s", "exp_s"), referred.referrer == base.user_id)
    r = r.mutate(t_s=r.ref_s - r.signup_s)
    r = r.filter((r.t_s >= 0) & (r.t_s <= r.dur_s))
    r = r.mutate(exposed=(r.exp_s.notnull() & (r.t_s >= r.exp_s)).cast("int64"))
    counts = r.group_by(["user_id", "exposed"]).aggregate(referrals=r.count().cast("int64"))

    out = sp.left_join(counts, ["user_id", "exposed"])
    out = out.select(
        user_id=sp.user_id,
        exposed=sp.exposed,
        exposure_days=days(sp.stop_s - sp.start_s),
        referrals=ibis.coalesce(out.referrals, 0).cast("int64"),
        **{a: sp[a] for a in attrs},
    )
    return out.order_by(["user_id", "exposed"])

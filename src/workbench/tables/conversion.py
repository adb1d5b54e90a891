"""Conversion of users into customers: time from signup to the first
purchase, per user and as discrete-time risk sets."""

from __future__ import annotations

import ibis

from workbench.tables.common import (
    EXPOSURES,
    attribute_columns,
    bin_seconds,
    check_choice,
    check_strata,
    days,
    epoch_seconds,
    flag,
    observation_end,
    observed_events,
    observed_users,
    require,
    seconds,
)
from workbench.tables.survival import aggregate_risk_sets, spells


def _first_times(ds, table_fn: str) -> ibis.Table:
    """Per observed user: signup_s, obs_s (seconds to the observation end),
    first purchase, first feedback/adopted/exposure times (seconds since
    signup, null if none), attributes."""
    require(ds, table_fn, "users", "events")
    end = observation_end(ds, table_fn)
    ev = observed_events(ds, end)
    t = ev.event_type
    first = ev.group_by("user_id").aggregate(
        first_purchase_at=ev.event_at.min(where=t == "purchase"),
        first_feedback_at=ev.event_at.min(where=t == "feedback"),
        first_adopted_at=ev.event_at.min(where=t == "adopted"),
    )
    u = observed_users(ds, end)
    j = u.left_join(first, "user_id")
    signup_s = seconds(j.signup_at)
    return j.select(
        "user_id",
        "signup_at",
        *attribute_columns(ds),
        purchase_s=seconds(j.first_purchase_at) - signup_s,
        feedback_s=seconds(j.first_feedback_at) - signup_s,
        adopted_s=seconds(j.first_adopted_at) - signup_s,
        obs_s=epoch_seconds(end) - signup_s,
    )


def conversion(ds) -> ibis.Table:
    """One row per user who signed up by the observation end: ``user_id``,
    ``signup_at``, ``converted`` (0/1: a purchase by the observation end),
    ``days_to_convert`` (signup to first purchase; null if none),
    ``observed_days`` (signup to observation end),
    ``cocreated_before_conversion`` (0/1: a ``feedback`` or ``adopted``
    event strictly before the first purchase, or at any time observed if
    the user never bought), then attributes."""
    f = _first_times(ds, "conversion")
    cocreate = ibis.cases(  # the earlier of the two, either may be null
        (f.feedback_s.isnull(), f.adopted_s),
        (f.adopted_s.isnull(), f.feedback_s),
        (f.feedback_s < f.adopted_s, f.feedback_s),
        else_=f.adopted_s,
    )
    before = cocreate.notnull() & (f.purchase_s.isnull() | (cocreate < f.purchase_s))
    out = f.mutate(
        converted=flag(f.purchase_s.notnull()),
        days_to_convert=days(f.purchase_s),
        observed_days=days(f.obs_s),
        cocreated_before_conversion=flag(before),
    )
    cols = ["user_id", "signup_at", "converted", "days_to_convert", "observed_days", "cocreated_before_conversion"]
    return out.select(*cols, *attribute_columns(ds)).order_by("user_id")


def conversion_risk_sets(ds, *, bin_days: float = 7, strata=("segment",), exposure: str = "feedback") -> ibis.Table:
    """Discrete-time risk sets of the first purchase: one row per
    (``tenure_bin``, ``exposed``, strata...) with ``at_risk``, ``events``
    (first purchases) and ``exposure_days``.

    Same rule as :func:`~workbench.tables.survival.risk_sets`, with the
    first purchase as the event and censoring at the observation end: a
    user's time (0, time to first purchase or to the observation end] is
    split at the first ``exposure`` event strictly before that end into an
    unexposed and an exposed spell; bin b is (b*bin_days, (b+1)*bin_days]
    days since signup; ``at_risk`` counts users with positive time in that
    state in the bin, ``events`` first purchases in the bin in the state at
    purchase time. Users who buy at signup (time 0) are at risk nowhere.
    """
    check_choice("conversion_risk_sets", "exposure", exposure, EXPOSURES)
    bin_s = bin_seconds("conversion_risk_sets", bin_days)
    strata = check_strata("conversion_risk_sets", ds, strata)
    f = _first_times(ds, "conversion_risk_sets")
    converted = f.purchase_s.notnull()
    f = f.mutate(dur_s=ibis.coalesce(f.purchase_s, f.obs_s).cast("int64"), event=flag(converted))
    exp_s = f[f"{exposure}_s"]
    f = f.mutate(exp_s=(exp_s < f.dur_s).ifelse(exp_s, ibis.null("int64")))
    return aggregate_risk_sets(spells(f, strata), bin_s, strata)

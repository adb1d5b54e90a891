"""Outcomes of a randomized experiment, one row per assigned user."""

from __future__ import annotations

import ibis

from workbench.errors import ParameterError
from workbench.tables.common import (
    DAY,
    DEFAULT_CHURN,
    attribute_columns,
    check_churn,
    check_positive,
    epoch_seconds,
    flag,
    observation_end,
    observed_events,
    require,
    seconds,
)
from workbench.tables.survival import lifetimes

PRE_DAYS = 28


def experiment_outcomes(
    ds, experiment: str, *, horizon_days: float = 90, churn: str = DEFAULT_CHURN, churn_after_days: float = 30
) -> ibis.Table:
    """One row per user assigned to ``experiment`` (who signed up by the
    observation end): ``user_id``, ``arm``, ``assigned_at``,
    ``took_part`` (0/1: a ``feedback`` event in [assigned_at, assigned_at +
    horizon]), ``retained`` (0/1: not churned by assigned_at + horizon, churn
    as in :func:`~workbench.tables.survival.survival`), ``observed`` (0/1:
    assigned_at + horizon + churn_after_days is on or before the observation
    end, so whether the user churned by the horizon is known, i.e. has been
    silent long enough to tell; with ``churn_after_days=None``, assigned_at +
    horizon on or before the end; analyse ``retained`` on observed rows
    only), ``pre_activity`` (events in the 28
    days before assignment), then attributes. Events after the observation
    end are ignored.
    """
    require(ds, "experiment_outcomes", "users", "events", "assignments")
    check_positive("experiment_outcomes", "horizon_days", horizon_days)
    check_churn("experiment_outcomes", churn, churn_after_days)
    a = ds.assignments
    names = sorted(str(x) for x in a.select("experiment").distinct().to_pandas()["experiment"].dropna())
    if experiment not in names:
        raise ParameterError(
            f"experiment_outcomes(): experiment {experiment!r} not in dataset {ds.name!r}; "
            f"its assignments hold: {', '.join(map(repr, names)) or 'no experiments'}"
        )
    end = observation_end(ds, "experiment_outcomes")
    horizon_s = round(horizon_days * DAY)
    # churn by the horizon is known once the horizon plus the inactivity window has been observed
    judge_s = horizon_s + (0 if churn == "cancel" else round(churn_after_days * DAY))

    a = a.filter(a.experiment == experiment)
    a = a.select("user_id", "arm", "assigned_at", asg_s=seconds(a.assigned_at))
    life = lifetimes(ds, "experiment_outcomes", churn=churn, churn_after_days=churn_after_days)
    j = a.join(life, "user_id")

    ev = observed_events(ds, end)
    ev = ev.select("user_id", "event_type", ev_s=seconds(ev.event_at))
    ea = ev.join(a.select("user_id", "asg_s"), "user_id")
    after = (ea.ev_s >= ea.asg_s) & (ea.ev_s <= ea.asg_s + horizon_s)
    before = (ea.ev_s >= ea.asg_s - PRE_DAYS * DAY) & (ea.ev_s < ea.asg_s)
    per_user = ea.group_by("user_id").aggregate(
        took_part=ea.count(where=after & (ea.event_type == "feedback")),
        pre_activity=ea.count(where=before),
    )
    j = j.left_join(per_user, "user_id")
    churned_by = (j.churned == 1) & (j.signup_s + j.dur_s <= j.asg_s + horizon_s)
    out = j.mutate(
        took_part=flag(ibis.coalesce(j.took_part, 0) > 0),
        retained=flag(~churned_by),
        observed=flag(j.asg_s + judge_s <= epoch_seconds(end)),
        pre_activity=ibis.coalesce(j.pre_activity, 0).cast("int64"),
    )
    cols = ["user_id", "arm", "assigned_at", "took_part", "retained", "observed", "pre_activity"]
    return out.select(*cols, *attribute_columns(ds)).order_by("user_id")

"""Survival tables: per-user lifetimes, co-creation episodes in
counting-process form, and their risk sets per tenure bin.

Lifetime rule (one place, used by every table that needs churn): time runs
from ``signup_at``; events after the observation end are ignored; users who
sign up after it are left out. Churn follows one of three rules
(``churn``), the same in every table, model and report:

- ``"cancel"``: a user's first ``cancel`` event is churn at its time; users
  without one are censored at the observation end.
- ``"inactivity"``: a user whose last activity (last event of any type,
  cancels included, or signup if there is none) is at least
  ``churn_after_days`` before the observation end churned at that last
  activity; cancel events are activity like any other.
- ``"cancel_or_inactivity"`` (the default): whichever of the two comes
  first. A cancel is itself activity, so a cancel is always the earlier.

Under the two rules that use inactivity, users who have not churned are
censored at ``end - churn_after_days``: the last time up to which inactivity
churn can be judged (a churn at any later time would need more than the
observed silence to be seen), so no survival is credited that could not yet
be known; a cancel after that time is censored there too, so every user is
followed over the same window. A user who signed up after
``end - churn_after_days`` (and has not churned) is censored at signup: one
row in :func:`survival` with duration 0 and churned 0, no time at risk
anywhere else. ``churn_cause`` says which rule fired: ``cancel``,
``inactivity`` or null (censored).
"""

from __future__ import annotations

import ibis
import pandas as pd

from workbench.errors import ParameterError
from workbench.tables.common import (
    DAY,
    DEFAULT_CHURN,
    EXPOSURES,
    as_bigint,
    attribute_columns,
    bin_seconds,
    check_choice,
    check_churn,
    check_strata,
    constant,
    days,
    epoch_seconds,
    flag,
    observation_end,
    observed_events,
    observed_users,
    require,
    seconds,
    ts_literal,
)


# ------------------------------------------------------------------ lifetimes
def lifetimes(
    ds, table_fn: str = "survival", *, churn: str = DEFAULT_CHURN, churn_after_days: float = 30, exposure: str | None = None
) -> ibis.Table:
    """Per user: user_id, signup_at, signup_s, end_at, dur_s (seconds from
    signup to end), churned (int 0/1), churn_cause (string: cancel,
    inactivity, or null), the user's attributes and, if ``exposure`` is given,
    exp_s: seconds from signup to the first ``exposure`` event, null if there
    is none strictly before the end. One scan of the events."""
    require(ds, table_fn, "users", "events")
    check_churn(table_fn, churn, churn_after_days)
    end = observation_end(ds, table_fn)
    end_lit, end_s = ts_literal(end), epoch_seconds(end)

    ev = observed_events(ds, end)
    aggs = {"cancel_at": ev.event_at.min(where=ev.event_type == "cancel"), "last_at": ev.event_at.max()}
    if exposure is not None:
        aggs["first_exp_at"] = ev.event_at.min(where=ev.event_type == exposure)
    per_user = ev.group_by("user_id").aggregate(**aggs)
    u = observed_users(ds, end)
    attrs = attribute_columns(ds)
    j = u.left_join(per_user, "user_id").select("user_id", "signup_at", *attrs, *aggs)
    last_activity = ibis.coalesce(j.last_at, j.signup_at)
    if churn == "cancel":
        censor_lit = end_lit
        inactive = ibis.literal(False)
    else:
        window_s = round(churn_after_days * DAY)
        inactive = (end_s - seconds(last_activity)) >= window_s
        # the last time churn can be judged; same whole seconds as seconds(end) - window_s
        censor_lit = ts_literal(pd.Timestamp(epoch_seconds(end) - window_s, unit="s"))
    cancelled = (j.cancel_at.notnull() & (j.cancel_at <= censor_lit)) if churn != "inactivity" else ibis.literal(False)
    end_at = ibis.cases(
        (cancelled, j.cancel_at),
        (inactive, last_activity),
        (j.signup_at > censor_lit, j.signup_at),
        else_=censor_lit,
    )
    cause = ibis.cases((cancelled, "cancel"), (inactive, "inactivity"), else_=ibis.null("string"))
    out = j.mutate(end_at=end_at, churned=flag(cancelled | inactive), churn_cause=cause, signup_s=seconds(j.signup_at))
    out = out.mutate(dur_s=seconds(out.end_at) - out.signup_s)
    cols = ["user_id", "signup_at", "signup_s", "end_at", "dur_s", "churned", "churn_cause", *attrs]
    if exposure is not None:
        exp_s = seconds(out.first_exp_at) - out.signup_s
        out = out.mutate(exp_s=(exp_s < out.dur_s).ifelse(exp_s, ibis.null("int64")))
        cols.append("exp_s")
    return out.select(*cols)


def spells(base: ibis.Table, keep: list[str]) -> ibis.Table:
    """Per (user, exposed): the time spent in that state as one spell
    (start_s, stop_s] in seconds since signup, with ``event`` = 1 on the spell
    that ends in the user's event. ``base`` has user_id, dur_s, event, exp_s
    (null or < dur_s). Exposure is monotone, so each state is one contiguous
    spell. Zero-length spells are dropped."""
    unexposed = base.select(
        "user_id",
        *keep,
        exposed=constant(0, "int64"),
        start_s=constant(0, "int64"),
        stop_s=ibis.coalesce(base.exp_s, base.dur_s).cast("int64"),
        event=(base.exp_s.isnull()).ifelse(base.event, 0).cast("int64"),
    )
    exp = base.filter(base.exp_s.notnull())
    exposed = exp.select(
        "user_id",
        *keep,
        exposed=constant(1, "int64"),
        start_s=exp.exp_s.cast("int64"),
        stop_s=exp.dur_s.cast("int64"),
        event=exp.event.cast("int64"),
    )
    both = unexposed.union(exposed)
    return both.filter(both.stop_s > both.start_s)


def aggregate_risk_sets(sp: ibis.Table, bin_s: int, strata: list[str]) -> ibis.Table:
    """Count spells (start_s, stop_s] per right-closed tenure bin
    (b*bin_s, (b+1)*bin_s] and (exposed, strata), in time linear in the
    number of spells (not spells x bins).

    A spell covers bins f = floor(start / bin) .. l = ceil(stop / bin) - 1.
    Each spell leaves three marks: +1 user at bin f, -1 at bin l + 1, and the
    time it does not cover of its first and last bins (start - f*bin at f,
    (l+1)*bin - stop at l), plus its event at bin l. A running sum of the
    +1/-1 marks over the bins of each (exposed, strata) group gives
    ``at_risk``; ``at_risk * bin`` minus the uncovered time gives the
    person-time. A zero mark at every bin of each group's range makes the
    running sum see every bin.
    """
    groups = ["exposed", *strata]
    f = (sp.start_s // bin_s).cast("int64")
    last = ((sp.stop_s + (bin_s - 1)) // bin_s - 1).cast("int64")  # ceil(stop / bin) - 1
    sp = sp.mutate(wb_f=f, wb_l=last)

    def as_int(x):
        return constant(x, "int64") if isinstance(x, int) else x.cast("int64")

    def marks(t, bin_, d, cut, ev):
        return t.select(*groups, tenure_bin=as_int(bin_), wb_d=as_int(d), wb_cut=as_int(cut), wb_ev=as_int(ev))

    enter = marks(sp, sp.wb_f, 1, sp.start_s - sp.wb_f * bin_s, 0)
    leave = marks(sp, sp.wb_l + 1, -1, 0, 0)
    tail = marks(sp, sp.wb_l, 0, (sp.wb_l + 1) * bin_s - sp.stop_s, sp.event)
    ranges = sp.group_by(groups).aggregate(wb_lo=sp.wb_f.min(), wb_hi=sp.wb_l.max())
    grid = ranges.select(*groups, tenure_bin=ibis.range(ranges.wb_lo, ranges.wb_hi + 1).unnest())
    grid = marks(grid, grid.tenure_bin, 0, 0, 0)
    allm = enter.union(leave).union(tail).union(grid)
    cells = allm.group_by(["tenure_bin", *groups]).aggregate(wb_d=allm.wb_d.sum(), wb_cut=allm.wb_cut.sum(), wb_ev=allm.wb_ev.sum())
    w = ibis.window(group_by=groups, order_by="tenure_bin", preceding=None, following=0)
    cells = cells.mutate(at_risk=as_bigint(cells.wb_d.sum().over(w)))
    cells = cells.filter(cells.at_risk > 0)
    out = cells.select(
        "tenure_bin",
        *groups,
        at_risk=cells.at_risk,
        events=as_bigint(cells.wb_ev),
        exposure_days=days(cells.at_risk * bin_s - cells.wb_cut),
    )
    return out.order_by(["tenure_bin", *groups])


# ------------------------------------------------------------------ public
def survival(ds, *, churn: str = DEFAULT_CHURN, churn_after_days: float = 30) -> ibis.Table:
    """One row per user: ``user_id``, ``signup_at``, ``end_at``,
    ``duration`` (days from signup to end_at, float), ``churned`` (0/1),
    ``churn_cause`` (``cancel``, ``inactivity`` or null), then the user's
    attributes. Churn and censoring follow the rule ``churn`` (module
    docstring): ``cancel``, ``inactivity`` (a silence of
    ``churn_after_days`` before the observation end) or
    ``cancel_or_inactivity``.
    """
    life = lifetimes(ds, "survival", churn=churn, churn_after_days=churn_after_days)
    out = life.mutate(duration=days(life.dur_s))
    out = out.select("user_id", "signup_at", "end_at", "duration", "churned", "churn_cause", *attribute_columns(ds))
    return out.order_by("user_id")


def churn_causes(ds, *, churn: str = DEFAULT_CHURN, churn_after_days: float = 30) -> ibis.Table:
    """How many users churned by each cause under the rule ``churn``: one row
    per ``churn_cause`` (``cancel``, ``inactivity``, ``censored``) with
    ``users``; causes nobody has are left out."""
    life = lifetimes(ds, "churn_causes", churn=churn, churn_after_days=churn_after_days)
    life = life.mutate(churn_cause=life.churn_cause.fill_null("censored"))
    out = life.group_by("churn_cause").aggregate(users=life.count().cast("int64"))
    return out.order_by("churn_cause")


def episodes(ds, *, exposure: str = "adopted", churn: str = DEFAULT_CHURN, churn_after_days: float = 30) -> ibis.Table:
    """Counting-process episodes per user: ``user_id``, ``start``, ``stop``
    (days since signup), ``exposed`` (0/1: a first ``exposure`` event at or
    before ``start``), ``dose`` (``exposure`` events at or before ``start``),
    ``churned`` (1 only on the episode ending in churn), attributes.

    Each user's observed time (0, duration] (see :func:`survival`) is split at
    every distinct time of an ``exposure`` event strictly inside it; several
    events at one time give one split and raise the dose by their number.
    Exposure events at signup count from the first episode; those at or after
    the end are ignored. Zero-length episodes (users churned or censored at
    signup) are dropped.
    """
    check_choice("episodes", "exposure", exposure, EXPOSURES)
    life = lifetimes(ds, "episodes", churn=churn, churn_after_days=churn_after_days)
    end = observation_end(ds, "episodes")
    ev = observed_events(ds, end)
    ev = ev.filter(ev.event_type == exposure)
    j = ev.join(life.select("user_id", "signup_s", "dur_s"), "user_id")
    j = j.mutate(t_s=seconds(j.event_at) - j.signup_s)
    j = j.filter(j.t_s < j.dur_s)
    points = j.group_by(["user_id", "t_s"]).aggregate(n=j.count().cast("int64"))
    origin = life.select("user_id", t_s=constant(0, "int64"), n=constant(0, "int64"))
    both = origin.union(points)
    points = both.group_by(["user_id", "t_s"]).aggregate(n=as_bigint(both.n.sum()))

    w_cum = ibis.window(group_by="user_id", order_by="t_s", preceding=None, following=0)
    w = ibis.window(group_by="user_id", order_by="t_s")
    points = points.mutate(dose=as_bigint(points.n.sum().over(w_cum)), next_s=points.t_s.lead().over(w))
    e = points.join(life, "user_id")
    last = e.next_s.isnull()
    e = e.mutate(stop_s=ibis.coalesce(e.next_s, e.dur_s), is_last=last)
    e = e.filter(e.stop_s > e.t_s)
    out = e.mutate(
        start=days(e.t_s),
        stop=days(e.stop_s),
        exposed=flag(e.dose > 0),
        churned=flag(e.is_last & (e.churned == 1)),
    )
    out = out.select("user_id", "start", "stop", "exposed", "dose", "churned", *attribute_columns(ds))
    return out.order_by(["user_id", "start"])


def risk_sets(
    ds,
    *,
    exposure: str = "adopted",
    churn: str = DEFAULT_CHURN,
    churn_after_days: float = 30,
    bin_days: float = 7,
    strata=("segment",),
    naive_ever: bool = False,
) -> ibis.Table:
    """Discrete-time risk sets: one row per (``tenure_bin``, ``exposed``,
    strata...) with ``at_risk``, ``events`` and ``exposure_days``.

    Exact rule. Tenure bin b is the interval (b*bin_days, (b+1)*bin_days]
    days since signup (right-closed, as a churn at the end of an episode
    belongs to the bin it ends in); an event at tenure t > 0 falls in bin
    ceil(t / bin_days) - 1. A user's observed time (0, duration] is split at
    the first ``exposure`` event into an unexposed and an exposed spell
    (exactly the union of the user's :func:`episodes` in each state), so a
    user exposed during a bin appears in that bin in both states:

    - ``at_risk``: users with positive time in that state in the bin (each
      user at most once per (bin, state));
    - ``events``: churns in the bin, counted in the state at churn time
      (so events <= at_risk in every row);
    - ``exposure_days``: person-days in that state in the bin.

    Fit a complementary log-log binomial GLM on (events, at_risk - events),
    or a Poisson GLM on events with offset log(exposure_days). Users churned
    or censored at signup (zero observed time) are not at risk anywhere.

    ``naive_ever=True``: the naive, immortal-time-biased classification for
    contrast: a user whose first ``exposure`` event comes before the end is
    exposed from signup on (all their time in ``exposed`` = 1).
    """
    check_choice("risk_sets", "exposure", exposure, EXPOSURES)
    bin_s = bin_seconds("risk_sets", bin_days)
    strata = check_strata("risk_sets", ds, strata)
    if not isinstance(naive_ever, bool):
        raise ParameterError(f"risk_sets(): naive_ever must be True or False, got {naive_ever!r}")
    base = lifetimes(ds, "risk_sets", churn=churn, churn_after_days=churn_after_days, exposure=exposure)
    base = base.mutate(event=base.churned)
    if naive_ever:
        base = base.mutate(exp_s=base.exp_s.notnull().ifelse(constant(0, "int64"), ibis.null("int64")))
    return aggregate_risk_sets(spells(base, strata), bin_s, strata)


def dose_risk_sets(
    ds,
    *,
    exposure: str = "adopted",
    max_dose: int = 3,
    churn: str = DEFAULT_CHURN,
    churn_after_days: float = 30,
    bin_days: float = 7,
    strata=("segment",),
) -> ibis.Table:
    """:func:`risk_sets` by dose: one row per (``tenure_bin``, ``dose``,
    strata...) with ``at_risk``, ``events`` and ``exposure_days``, where
    ``dose`` is the number of ``exposure`` events so far (as in
    :func:`episodes`), capped at ``max_dose`` (``max_dose`` means that many or
    more). Each user's observed time is split where the capped dose rises,
    one spell per level reached; bins, at-risk counts, events (in the level at
    churn time) and person-days follow the rules of :func:`risk_sets`. A
    discrete-time model with the dose levels as covariates (or strata) is the
    aggregated dose-response model; its size does not grow with the users."""
    check_choice("dose_risk_sets", "exposure", exposure, EXPOSURES)
    if isinstance(max_dose, bool) or not isinstance(max_dose, int) or max_dose < 1:
        raise ParameterError(f"dose_risk_sets(): max_dose must be a positive whole number, got {max_dose!r}")
    bin_s = bin_seconds("dose_risk_sets", bin_days)
    strata = check_strata("dose_risk_sets", ds, strata)
    life = lifetimes(ds, "dose_risk_sets", churn=churn, churn_after_days=churn_after_days)
    end = observation_end(ds, "dose_risk_sets")
    ev = observed_events(ds, end)
    ev = ev.filter(ev.event_type == exposure)
    j = ev.join(life.select("user_id", "signup_s", "dur_s"), "user_id")
    j = j.mutate(t_s=seconds(j.event_at) - j.signup_s)
    j = j.filter(j.t_s < j.dur_s)
    points = j.group_by(["user_id", "t_s"]).aggregate(n=j.count().cast("int64"))
    origin = life.select("user_id", t_s=constant(0, "int64"), n=constant(0, "int64"))
    both = origin.union(points)
    points = both.group_by(["user_id", "t_s"]).aggregate(n=as_bigint(both.n.sum()))
    w_cum = ibis.window(group_by="user_id", order_by="t_s", preceding=None, following=0)
    points = points.mutate(level=ibis.least(as_bigint(points.n.sum().over(w_cum)), max_dose).cast("int64"))
    levels = points.group_by(["user_id", "level"]).aggregate(start_s=points.t_s.min())
    w = ibis.window(group_by="user_id", order_by="start_s")
    levels = levels.mutate(next_s=levels.start_s.lead().over(w))
    s = levels.join(life, "user_id")
    sp = s.select(
        "user_id",
        *strata,
        exposed=s.level,  # aggregate_risk_sets groups by "exposed": here the dose level
        start_s=s.start_s.cast("int64"),
        stop_s=ibis.coalesce(s.next_s, s.dur_s).cast("int64"),
        event=flag(s.next_s.isnull() & (s.churned == 1)),
    )
    sp = sp.filter(sp.stop_s > sp.start_s)
    out = aggregate_risk_sets(sp, bin_s, strata)
    out = out.rename(dose="exposed")
    return out.select("tenure_bin", "dose", *strata, "at_risk", "events", "exposure_days").order_by(["tenure_bin", "dose", *strata])

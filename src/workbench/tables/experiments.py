"""Outcomes of randomized experiments in the engine.

- :func:`experiment_outcomes`: the invitation experiment's per-user table
  (took part, retained at the horizon, observed, pre-activity).
- The experiment engine: :func:`experiment_users` (one row per assigned user
  with every metric of :data:`METRICS`, its observed flags and pre-assignment
  values), :func:`experiment_arms` (users per arm), and the sufficient
  statistics the models fit on: :func:`experiment_arm_stats` (per arm and
  metric: n, sums, sums of squares and cross-products, after optional
  capping), :func:`experiment_daily` (the same, cumulative by day since the
  experiment started) and :func:`experiment_time_to_event` (counts per arm,
  day and event). :func:`experiment_tables` builds them all from one
  per-user table. Definitions: docs/experiments.md.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import ibis

from workbench.data.contract import reserved
from workbench.errors import ParameterError
from workbench.tables.common import (
    DAY,
    DEFAULT_CHURN,
    as_bigint,
    attribute_columns,
    check_churn,
    check_positive,
    constant,
    days,
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
    _check_experiment_name(ds, "experiment_outcomes", experiment)
    a = ds.assignments
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


# ====================================================================== the experiment engine
@dataclass(frozen=True)
class Metric:
    """One experiment metric: how it is read from :func:`experiment_users`.

    ``kind`` is ``binary`` (0/1 per user), ``mean`` (a count or amount per
    user), ``ratio`` (sum of ``column`` over sum of ``denominator`` across the
    arm's users, delta method) or ``time_to_event`` (days ``column`` with 0/1
    ``event``, censored otherwise). ``pre`` / ``pre_denominator`` name the
    same quantity over the window of the same length before assignment (the
    CUPED covariate; None: there is none). ``needs``: the event types the
    metric is made of (a dataset without them cannot support it).
    """

    name: str
    kind: str
    column: str
    denominator: str | None = None
    pre: str | None = None
    pre_denominator: str | None = None
    event: str | None = None
    needs: tuple = ()
    description: str = ""


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("retained", "binary", "retained", pre="pre_active",
               description="not churned before assigned_at + horizon (churn rule as in tables.survival)"),
        Metric("converted", "binary", "converted", needs=("purchase",),
               description="first purchase ever in [assigned_at, assigned_at + horizon); users who were customers at assignment are left out"),
        Metric("feedback", "binary", "feedback", pre="pre_feedback", needs=("feedback",),
               description="submitted an idea (a feedback event) in the window"),
        Metric("adopted", "binary", "adopted", pre="pre_adopted", needs=("adopted",),
               description="had an idea adopted (an adopted event) in the window"),
        Metric("purchases", "mean", "purchases", pre="pre_purchases", needs=("purchase",),
               description="purchase events in the window, per user"),
        Metric("revenue", "mean", "revenue", pre="pre_revenue", needs=("purchase",),
               description="sum of purchase amounts in the window, per user"),
        Metric("active_days", "mean", "active_days", pre="pre_active_days",
               description="days (24-hour periods counted from assigned_at) in the window with any event"),
        Metric("revenue_per_purchase", "ratio", "revenue", denominator="purchases", pre="pre_revenue",
               pre_denominator="pre_purchases", needs=("purchase",),
               description="the arm's revenue over its purchases in the window (delta method)"),
        Metric("revenue_per_active_day", "ratio", "revenue", denominator="active_days", pre="pre_revenue",
               pre_denominator="pre_active_days", needs=("purchase",),
               description="the arm's revenue over its active days in the window (delta method)"),
        Metric("time_to_churn", "time_to_event", "churn_days", event="churn_event",
               description="days from assignment to churn, censored at the horizon or the end of follow-up"),
        Metric("time_to_purchase", "time_to_event", "purchase_days", event="purchase_event", needs=("purchase",),
               description="days from assignment to the first purchase ever (users not yet customers at assignment)"),
        Metric("time_to_idea", "time_to_event", "idea_days", event="idea_event", needs=("feedback",),
               description="days from assignment to the first feedback event at or after it"),
    )
}
#: metrics of the fixed-horizon engine (one value per user) and the time-to-event ones
FIXED_HORIZON_METRICS = tuple(n for n, m in METRICS.items() if m.kind != "time_to_event")
TIME_TO_EVENT_METRICS = tuple(n for n, m in METRICS.items() if m.kind == "time_to_event")
HOUR = 3_600  # seconds: the time grid of experiment_time_to_event
#: per-user window values that capping applies to (binary values are never capped)
CAPPABLE = ("purchases", "revenue", "active_days", "pre_purchases", "pre_revenue", "pre_active_days")
#: the sufficient-statistics columns of experiment_arm_stats / experiment_daily:
#: y (value or ratio numerator), d (ratio denominator; 1 otherwise), x and v
#: (the pre-assignment numerator and denominator; x = 0 and v = 1 without one)
COMPONENTS = ("y", "d", "x", "v")
SUMS = ("sum_y", "sum_d", "sum_x", "sum_v", "sum_yy", "sum_dd", "sum_xx", "sum_vv",
        "sum_yd", "sum_yx", "sum_yv", "sum_dx", "sum_dv", "sum_xv")
CAPS = ("cap_y", "cap_d", "cap_x", "cap_v")


def check_metrics(table_fn: str, metrics, kinds=None) -> list[str]:
    """``metrics`` (a name, a list of names or None: every metric of ``kinds``) as a list of known names."""
    allowed = [n for n, m in METRICS.items() if kinds is None or m.kind in kinds]
    if metrics is None:
        return allowed
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ParameterError(f"{table_fn}(): unknown metric(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                             f"the metrics are: {', '.join(METRICS)}")
    wrong = [m for m in names if m not in allowed]
    if wrong:
        raise ParameterError(f"{table_fn}(): {', '.join(map(repr, wrong))} cannot go in this table (it takes: {', '.join(allowed)})")
    if len(set(names)) != len(names):
        raise ParameterError(f"{table_fn}(): metrics {names} name one twice")
    return names


def _check_experiment_name(ds, table_fn: str, experiment) -> None:
    a = ds.assignments
    names = sorted(str(x) for x in a.select("experiment").distinct().to_pandas()["experiment"].dropna())
    if experiment not in names:
        raise ParameterError(
            f"{table_fn}(): experiment {experiment!r} not in dataset {ds.name!r}; "
            f"its assignments hold: {', '.join(map(repr, names)) or 'no experiments'}"
        )


def _check_segment(table_fn: str, ds, segment_by) -> str | None:
    if segment_by is None:
        return None
    available = attribute_columns(ds)
    if not isinstance(segment_by, str) or segment_by not in available:
        raise ParameterError(
            f"{table_fn}(): segment_by={segment_by!r} is not a user attribute of dataset {ds.name!r} "
            f"(attributes: {', '.join(available) or 'none'}); pass one of them, or segment_by=None"
        )
    if reserved([segment_by]):  # refused by validation too; the list is the contract's
        raise ParameterError(f"{table_fn}(): segment_by={segment_by!r} clashes with the table's own columns; rename that attribute")
    return segment_by


def _user_rows(ds, table_fn: str, experiment: str, horizon_days, churn: str, churn_after_days) -> ibis.Table:
    """Per assigned user: every metric plus the internal seconds columns
    (asg_s, known_s, known_retained_s, start_s)."""
    require(ds, table_fn, "users", "events", "assignments")
    check_positive(table_fn, "horizon_days", horizon_days)
    check_churn(table_fn, churn, churn_after_days)
    _check_experiment_name(ds, table_fn, experiment)
    end = observation_end(ds, table_fn)
    end_s = epoch_seconds(end)
    h_s = round(horizon_days * DAY)
    judge_s = h_s + (0 if churn == "cancel" else round(churn_after_days * DAY))

    a = ds.assignments
    a = a.filter(a.experiment == experiment)
    a = a.select("user_id", "arm", "assigned_at", asg_s=seconds(a.assigned_at))
    a = a.filter(a.asg_s <= end_s)  # assignments after the observation end are not observed yet
    attrs = attribute_columns(ds)
    clash = reserved(attrs)  # refused by validation too; the list is the contract's
    if clash:
        raise ParameterError(f"{table_fn}(): user attribute(s) {', '.join(map(repr, clash))} of dataset {ds.name!r} clash with "
                             "the experiment table's own columns; rename them in the users table")
    life = lifetimes(ds, table_fn, churn=churn, churn_after_days=churn_after_days)
    j = a.join(life.select("user_id", "signup_s", "dur_s", "churned", *attrs), "user_id")

    ev = observed_events(ds, end)
    ev = ev.select("user_id", "event_type", "amount", ev_s=seconds(ev.event_at))
    ea = ev.join(a.select("user_id", "asg_s"), "user_id")
    rel = ea.ev_s - ea.asg_s
    post = (rel >= 0) & (rel < h_s)
    pre = (rel < 0) & (rel >= -h_s)
    kind = ea.event_type
    purchase = kind == "purchase"
    # the first purchase ever and the first idea since assignment, from those events only
    firsts = ea.filter(purchase | ((kind == "feedback") & (rel >= 0)))
    firsts = firsts.group_by("user_id").aggregate(
        first_purchase_s=firsts.ev_s.min(where=firsts.event_type == "purchase"),
        idea_s=firsts.ev_s.min(where=firsts.event_type == "feedback"),
    )
    # window and pre-window counts from the events in them
    ea = ea.filter(post | pre)
    rel = ea.ev_s - ea.asg_s
    post = (rel >= 0) & (rel < h_s)
    pre = rel < 0
    kind = ea.event_type
    purchase = kind == "purchase"
    per = ea.group_by("user_id").aggregate(
        w_purchases=ea.count(where=post & purchase),
        w_revenue=ea.amount.sum(where=post & purchase),
        w_feedback=ea.count(where=post & (kind == "feedback")),
        w_adopted=ea.count(where=post & (kind == "adopted")),
        p_events=ea.count(where=pre),
        p_purchases=ea.count(where=pre & purchase),
        p_revenue=ea.amount.sum(where=pre & purchase),
        p_feedback=ea.count(where=pre & (kind == "feedback")),
        p_adopted=ea.count(where=pre & (kind == "adopted")),
    )
    # active days: distinct (user, day) pairs first (a grouped COUNT DISTINCT is slow), days after
    # assignment numbered 0, 1, ... and days before it -1, -2, ...
    act = ea.select("user_id", wb_day=(rel >= 0).ifelse(rel // DAY, -1 - ((rel + h_s) // DAY)).cast("int64"))
    act = act.distinct()
    act = act.group_by("user_id").aggregate(w_active_days=act.count(where=act.wb_day >= 0),
                                            p_active_days=act.count(where=act.wb_day < 0))
    j = j.left_join(firsts, "user_id").select(j, "first_purchase_s", "idea_s")
    j = j.left_join(per, "user_id").select(j, *[c for c in per.columns if c != "user_id"])
    j = j.left_join(act, "user_id").select(j, "w_active_days", "p_active_days")

    def count(col):
        return ibis.coalesce(col, constant(0, "int64")).cast("int64")

    def amount(col):
        return ibis.coalesce(col, constant(0.0, "float64")).cast("float64")

    observed = j.asg_s + h_s <= end_s
    retained_observed = j.asg_s + judge_s <= end_s
    customer = j.first_purchase_s.notnull() & (j.first_purchase_s < j.asg_s)
    t_churn = j.signup_s + j.dur_s - j.asg_s  # negative: churned (or censored) before assignment
    churn_event = (j.churned == 1) & (t_churn < h_s)
    follow = ibis.least(constant(h_s, "int64"), end_s - j.asg_s)
    t_buy = j.first_purchase_s - j.asg_s
    buy_event = j.first_purchase_s.notnull() & (t_buy < h_s)
    t_idea = j.idea_s - j.asg_s
    idea_event = j.idea_s.notnull() & (t_idea < h_s)

    def when(cond, value, dtype):
        return cond.ifelse(value, ibis.null(dtype))

    out = j.mutate(
        followup_days=days(end_s - j.asg_s),
        observed=flag(observed),
        retained_observed=flag(retained_observed),
        customer_at_assignment=flag(customer),
        retained=when(retained_observed, flag(~((j.churned == 1) & (t_churn < h_s))), "int64"),
        converted=when(observed & ~customer, flag(buy_event), "int64"),
        feedback=when(observed, flag(count(j.w_feedback) > 0), "int64"),
        adopted=when(observed, flag(count(j.w_adopted) > 0), "int64"),
        purchases=when(observed, count(j.w_purchases), "int64"),
        revenue=when(observed, amount(j.w_revenue), "float64"),
        active_days=when(observed, count(j.w_active_days), "int64"),
        pre_active=flag(count(j.p_events) > 0),
        pre_feedback=flag(count(j.p_feedback) > 0),
        pre_adopted=flag(count(j.p_adopted) > 0),
        pre_purchases=count(j.p_purchases),
        pre_revenue=amount(j.p_revenue),
        pre_active_days=count(j.p_active_days),
        churn_days=days(ibis.greatest(constant(0, "int64"), ibis.least(t_churn, constant(h_s, "int64")))),
        churn_event=flag(churn_event),
        purchase_days=when(~customer, days(buy_event.ifelse(t_buy, follow)), "float64"),
        purchase_event=when(~customer, flag(buy_event), "int64"),
        idea_days=days(idea_event.ifelse(t_idea, follow)),
        idea_event=flag(idea_event),
        known_s=j.asg_s + h_s,
        known_retained_s=j.asg_s + judge_s,
        start_s=j.asg_s.min().over(ibis.window()),
    )
    return out


USER_COLUMNS = (
    "user_id", "arm", "assigned_at", "followup_days", "observed", "retained_observed", "customer_at_assignment",
    "retained", "converted", "feedback", "adopted", "purchases", "revenue", "active_days",
    "pre_active", "pre_feedback", "pre_adopted", "pre_purchases", "pre_revenue", "pre_active_days",
    "churn_days", "churn_event", "purchase_days", "purchase_event", "idea_days", "idea_event",
)


def experiment_users(
    ds, experiment: str, *, horizon_days: float = 30, churn: str = DEFAULT_CHURN, churn_after_days: float = 30
) -> ibis.Table:
    """One row per user assigned to ``experiment`` (signed up and assigned by
    the observation end) with every metric of :data:`METRICS`, its observed
    flags and its pre-assignment values, then the user's attributes. The
    exact definitions are in docs/experiments.md; in short, the window is
    [assigned_at, assigned_at + horizon), the pre-window the same length
    before assigned_at, and a window value is null unless the user's window
    is over (``observed``; ``retained`` needs ``retained_observed``, the
    horizon plus ``churn_after_days`` under the rules that use inactivity).
    Time-to-event columns (days since assignment, 0/1 event) are censored at
    the horizon or the end of the user's follow-up, never counted as events.
    """
    rows = _user_rows(ds, "experiment_users", experiment, horizon_days, churn, churn_after_days)
    return rows.select(*USER_COLUMNS, *attribute_columns(ds)).order_by("user_id")


def experiment_arms(
    ds, experiment: str, *, horizon_days: float = 30, churn: str = DEFAULT_CHURN, churn_after_days: float = 30
) -> ibis.Table:
    """One row per arm: ``users`` (assigned), ``observed`` (window over),
    ``retained_observed``, ``customers_at_assignment``, ``max_followup_days``
    (the longest time any of its users has been followed since assignment)."""
    rows = _user_rows(ds, "experiment_arms", experiment, horizon_days, churn, churn_after_days)
    return _arms_table(rows)


def _arms_table(rows: ibis.Table) -> ibis.Table:
    out = rows.group_by("arm").aggregate(
        users=rows.count().cast("int64"),
        observed=as_bigint(rows.observed.sum()),
        retained_observed=as_bigint(rows.retained_observed.sum()),
        customers_at_assignment=as_bigint(rows.customer_at_assignment.sum()),
        max_followup_days=rows.followup_days.max(),
    )
    return out.order_by("arm")


def _caps(rows: ibis.Table, cap_percentile) -> ibis.Table:
    """One row: ``cap_<column>`` = the ``cap_percentile`` percentile of each
    cappable column among users observed for the whole horizon, arms pooled."""
    q = cap_percentile / 100.0
    obs = rows.observed == 1
    return rows.aggregate(**{f"cap_{c}": rows[c].cast("float64").quantile(q, where=obs) for c in CAPPABLE})


def _capped(rows: ibis.Table, cap_percentile) -> ibis.Table:
    if cap_percentile is None:
        return rows
    caps = _caps(rows, cap_percentile)
    j = rows.cross_join(caps)
    # LEAST skips nulls on DuckDB and Spark: a null (unknown) value must stay null
    return j.mutate(**{c: j[c].isnull().ifelse(ibis.null("float64"), ibis.least(j[c].cast("float64"), j[f"cap_{c}"]))
                       for c in CAPPABLE})


def _components(rows: ibis.Table, metric: Metric, capped: bool) -> dict:
    """y, d, x, v (None: the constant 1) and the rows that count, for one metric."""
    col = rows[metric.column]
    inc = col.notnull()
    comp = {"y": col.cast("float64"), "d": None, "x": None, "v": None, "inc": inc}
    if metric.denominator:
        comp["d"] = rows[metric.denominator].cast("float64")
    if metric.pre:
        comp["x"] = rows[metric.pre].cast("float64")
        comp["v"] = rows[metric.pre_denominator].cast("float64") if metric.pre_denominator else None
    else:
        comp["x"] = 0.0  # no pre-assignment value: x = 0
    comp["caps"] = {
        "cap_y": metric.column if capped and metric.column in CAPPABLE else None,
        "cap_d": metric.denominator if capped and metric.denominator in CAPPABLE else None,
        "cap_x": metric.pre if capped and metric.pre in CAPPABLE else None,
        "cap_v": metric.pre_denominator if capped and metric.pre_denominator in CAPPABLE else None,
    }
    return comp


def _wide_sums(rows: ibis.Table, keys: list[str], metrics: list[str], capped: bool) -> tuple[ibis.Table, dict]:
    """One aggregate over ``rows`` by ``keys``: n and the sums of every metric
    (columns ``<metric>__<sum>``), and per metric the struct fields to unpack."""
    aggs, fields = {}, {}
    for name in metrics:
        m = METRICS[name]
        c = _components(rows, m, capped)
        inc = c["inc"]
        n_col = f"{name}__n"
        aggs[n_col] = rows.count(where=inc).cast("int64")

        def total(expr, label, name=name, inc=inc):
            aggs[f"{name}__{label}"] = expr.sum(where=inc)
            return f"{name}__{label}"

        f = {"n": n_col}
        one = {k: c[k] is None for k in COMPONENTS}
        zero = {k: isinstance(c[k], float) for k in COMPONENTS}
        for k in COMPONENTS:  # sums of each component; None: n (the constant 1), 0.0: zero
            f[f"sum_{k}"] = None if one[k] else 0.0 if zero[k] else total(c[k], f"sum_{k}")
        for a_, b_ in (("y", "y"), ("d", "d"), ("x", "x"), ("v", "v"), ("y", "d"), ("y", "x"), ("y", "v"),
                       ("d", "x"), ("d", "v"), ("x", "v")):
            label = f"sum_{a_}{b_}"
            if zero[a_] or zero[b_]:
                f[label] = 0.0
            elif one[a_] and one[b_]:
                f[label] = None
            elif one[a_]:
                f[label] = f[f"sum_{b_}"]
            elif one[b_]:
                f[label] = f[f"sum_{a_}"]
            else:
                f[label] = total(c[a_] * c[b_], label)
        f["caps"] = c["caps"]
        fields[name] = f
    return rows.group_by(keys).aggregate(**aggs), fields


def _long(wide: ibis.Table, keys: list[str], fields: dict) -> ibis.Table:
    """The wide sums as one row per (keys, metric), via an array of structs."""
    structs = []
    for name, f in fields.items():
        n = wide[f["n"]]
        vals = {"metric": ibis.literal(name), "n": n}

        def get(label, f=f, n=n):
            ref = f[label]
            if ref is None:
                return n.cast("float64")
            if isinstance(ref, float):
                return constant(ref, "float64")
            return ibis.coalesce(wide[ref].cast("float64"), constant(0.0, "float64"))

        for s in SUMS:
            vals[s] = get(s)
        for cap, column in f["caps"].items():
            vals[cap] = wide[f"cap_{column}"] if column else ibis.null("float64")
        structs.append(ibis.struct(vals))
    out = wide.select(*keys, wb_s=ibis.array(structs)).unnest("wb_s").unpack("wb_s")
    return out


def _arm_stats(rows: ibis.Table, metrics: list[str], cap_percentile, segment_by: str | None = None) -> ibis.Table:
    capped = cap_percentile is not None
    rows = _capped(rows, cap_percentile)
    keys = ["arm"] + ([segment_by] if segment_by else [])
    if capped:  # the caps travel with every row (one value per column)
        keys_c = keys + [f"cap_{c}" for c in CAPPABLE]
    else:
        keys_c = keys
    wide, fields = _wide_sums(rows, keys_c, metrics, capped)
    out = _long(wide, keys, fields)
    return out.select(*keys, "metric", "n", *SUMS, *CAPS).order_by([*keys, "metric"])


def experiment_arm_stats(
    ds,
    experiment: str,
    *,
    metrics=None,
    horizon_days: float = 30,
    churn: str = DEFAULT_CHURN,
    churn_after_days: float = 30,
    cap_percentile: float | None = None,
    segment_by: str | None = None,
) -> ibis.Table:
    """Sufficient statistics per (``arm``[, ``segment_by``], ``metric``) for
    every fixed-horizon metric (default all of them): ``n`` (users whose
    value is known), the sums ``sum_y, sum_d, sum_x, sum_v`` and the sums of
    products ``sum_yy, sum_dd, ... sum_xv`` of y (the value, or a ratio's
    numerator), d (a ratio's denominator; 1 otherwise), x and v (the same over
    the pre-assignment window; x = 0 without one), and the caps applied
    (``cap_y, cap_d, cap_x, cap_v``; null when not capped). With
    ``cap_percentile`` (e.g. 99), every non-binary value is first capped at
    that percentile of its column among users observed for the whole
    horizon, all arms pooled (computed in the engine)."""
    metrics = check_metrics("experiment_arm_stats", metrics, ("binary", "mean", "ratio"))
    check_cap("experiment_arm_stats", cap_percentile)
    segment_by = _check_segment("experiment_arm_stats", ds, segment_by)
    rows = _user_rows(ds, "experiment_arm_stats", experiment, horizon_days, churn, churn_after_days)
    return _arm_stats(rows, metrics, cap_percentile, segment_by)


def check_cap(table_fn: str, cap_percentile) -> None:
    if cap_percentile is None:
        return
    if isinstance(cap_percentile, bool) or not isinstance(cap_percentile, numbers.Real) or not 50 <= cap_percentile < 100:
        raise ParameterError(f"{table_fn}(): cap_percentile must be a percentile in [50, 100), e.g. 99, or None; got {cap_percentile!r}")


def _daily(rows: ibis.Table, metrics: list[str], cap_percentile) -> ibis.Table:
    capped = cap_percentile is not None
    rows = _capped(rows, cap_percentile)
    caps = [f"cap_{c}" for c in CAPPABLE] if capped else []
    parts = []
    for known, observed, group in (("known_retained_s", "retained_observed", [m for m in metrics if m == "retained"]),
                               ("known_s", "observed", [m for m in metrics if m != "retained"])):
        if not group:
            continue
        r = rows.filter(rows[observed] == 1)
        r = r.mutate(day=((r[known] - r.start_s + (DAY - 1)) // DAY).cast("int64"))
        wide, fields = _wide_sums(r, ["day", "arm", *caps], group, capped)
        parts.append(_long(wide, ["day", "arm"], fields))
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p)
    w = ibis.window(group_by=["arm", "metric"], order_by="day", preceding=None, following=0)
    cum = {s: out[s].sum().over(w) for s in SUMS}
    out = out.mutate(n=as_bigint(out.n.sum().over(w)), **cum)
    return out.select("day", "arm", "metric", "n", *SUMS, *CAPS).order_by(["metric", "arm", "day"])


def experiment_daily(
    ds,
    experiment: str,
    *,
    metrics=None,
    horizon_days: float = 30,
    churn: str = DEFAULT_CHURN,
    churn_after_days: float = 30,
    cap_percentile: float | None = None,
) -> ibis.Table:
    """The sufficient statistics of :func:`experiment_arm_stats`, cumulative
    by ``day`` since the experiment started (its first assignment): the row
    for day k holds the users whose value was known k days after the start
    (assigned_at + horizon, plus ``churn_after_days`` for ``retained`` under
    the rules that use inactivity, rounded up to a whole day). One row per
    (metric, arm, day) on which that arm gained users; the last day is the
    observation end, where the sums equal :func:`experiment_arm_stats`."""
    metrics = check_metrics("experiment_daily", metrics, ("binary", "mean", "ratio"))
    check_cap("experiment_daily", cap_percentile)
    rows = _user_rows(ds, "experiment_daily", experiment, horizon_days, churn, churn_after_days)
    return _daily(rows, metrics, cap_percentile)


def _time_to_event(rows: ibis.Table, metrics: list[str]) -> ibis.Table:
    parts = []
    for name in metrics:
        m = METRICS[name]
        r = rows.filter(rows[m.event].notnull())
        secs = (r[m.column] * DAY).round().cast("int64")
        r = r.select("arm", hours=((secs + (HOUR - 1)) // HOUR).cast("int64"), event=r[m.event].cast("int64"))
        g = r.group_by(["arm", "hours", "event"]).aggregate(users=r.count().cast("int64"))
        parts.append(g.select(metric=ibis.literal(name), arm=g.arm, days=g.hours.cast("float64") / 24, event=g.event,
                              users=g.users))
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p)
    return out.order_by(["metric", "arm", "days", "event"])


def experiment_time_to_event(
    ds,
    experiment: str,
    *,
    metrics=None,
    horizon_days: float = 30,
    churn: str = DEFAULT_CHURN,
    churn_after_days: float = 30,
) -> ibis.Table:
    """Time-to-event outcomes as counts: one row per (``metric``, ``arm``,
    ``days``, ``event``) with ``users``, where ``days`` is the time since
    assignment rounded up to a whole hour (in days: an event in the k-th hour
    is at k / 24) and ``event`` is 1 for the event, 0 for censoring (at the
    horizon or the end of follow-up). The Kaplan-Meier curve of these counts
    with frequency weights is the users' curve on an hourly grid; the table's
    size grows with the horizon, not with the users."""
    metrics = check_metrics("experiment_time_to_event", metrics, ("time_to_event",))
    rows = _user_rows(ds, "experiment_time_to_event", experiment, horizon_days, churn, churn_after_days)
    return _time_to_event(rows, metrics)


@dataclass(frozen=True)
class ExperimentTables:
    """Every table of one experiment readout, built on one per-user table
    (cached in the engine when ``cache=True``): Ibis expressions, none run yet."""

    users: ibis.Table
    arms: ibis.Table
    arm_stats: ibis.Table
    daily: ibis.Table | None
    time_to_event: ibis.Table | None
    segment_stats: ibis.Table | None


def experiment_tables(
    ds,
    experiment: str,
    *,
    metrics=None,
    horizon_days: float = 30,
    churn: str = DEFAULT_CHURN,
    churn_after_days: float = 30,
    cap_percentile: float | None = None,
    segment_by: str | None = None,
    daily: bool = True,
    cache: bool = True,
) -> ExperimentTables:
    """:func:`experiment_arms`, :func:`experiment_arm_stats`,
    :func:`experiment_daily` (if ``daily``), :func:`experiment_time_to_event`
    and, with ``segment_by``, the arm statistics per level of that attribute,
    all from one per-user table; ``cache=True`` materialises it once in the
    engine (Ibis ``cache``), so the events are scanned once for all tables."""
    metrics = check_metrics("experiment_tables", metrics)
    check_cap("experiment_tables", cap_percentile)
    segment_by = _check_segment("experiment_tables", ds, segment_by)
    rows = _user_rows(ds, "experiment_tables", experiment, horizon_days, churn, churn_after_days)
    if cache:
        rows = rows.cache()
    fixed = [m for m in metrics if m in FIXED_HORIZON_METRICS]
    tte = [m for m in metrics if m in TIME_TO_EVENT_METRICS]
    return ExperimentTables(
        users=rows.select(*USER_COLUMNS, *attribute_columns(ds)),
        arms=_arms_table(rows),
        arm_stats=_arm_stats(rows, fixed, cap_percentile) if fixed else None,
        daily=_daily(rows, fixed, cap_percentile) if fixed and daily else None,
        time_to_event=_time_to_event(rows, tte) if tte else None,
        segment_stats=_arm_stats(rows, fixed, cap_percentile, segment_by) if fixed and segment_by else None,
    )

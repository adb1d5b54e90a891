"""Per-customer repeat-purchase summary (the sufficient statistics of BG/NBD,
Pareto/NBD and Gamma-Gamma) and its compressed form.

Convention (as in Fader, Hardie and Lee's CDNOW analyses and the
``lifetimes`` package with daily periods): purchases are counted by UTC
calendar DAY, several purchases on one day being one purchase day whose spend
is their sum. Calibration holds the days on or before ``calibration_end``.
A customer is a user with at least one calibration purchase day.

- ``frequency``: calibration purchase days minus one (repeat purchase days);
- ``recency``: last minus first calibration purchase day;
- ``T``: ``calibration_end`` minus the first purchase day;
- ``monetary_value``: mean spend per repeat purchase day (the first day
  excluded), null when frequency is 0;
- ``frequency_holdout``: purchase days in (calibration_end, holdout_end];
  ``monetary_holdout``: their spend; ``duration_holdout``: holdout_end minus
  calibration_end.

Times are whole days, divided by 7 for ``time_unit="week"``. Purchases after
the observation end (even later on its day) are ignored. With CDNOW's
2,357-customer sample and calibration end 1997-09-30 this gives 946 repeat
customers and 2,457 repeat transactions.

Covariates (``covariates=``, for the purchase models' covariate effects) are
user attributes (columns of ``users`` such as ``segment`` or ``channel``) and
``exposed``: 1 for a customer with an ``exposure`` event (``feedback`` or
``adopted``) on or before the calibration end's day, else 0 (a co-creator by
the calibration end). They are joined onto the customer rows after the
purchase days are grouped.
"""

from __future__ import annotations

import ibis

from workbench.data.contract import reserved
from workbench.errors import ParameterError
from workbench.tables.common import (
    EXPOSURES,
    TIME_UNITS,
    as_bigint,
    attribute_columns,
    check_choice,
    check_date,
    constant,
    day_number,
    epoch_seconds,
    flag,
    observation_end,
    observed_events,
    require,
)

_UNIT_DAYS = {"day": 1, "week": 7}


def _days_per_customer(ds, calibration_end, holdout_end, table_fn):
    """Customer rows with whole-day times (first_day_n, frequency, recency_d,
    T_d, ...) and the (calibration, holdout) day numbers."""
    require(ds, table_fn, "users", "events")
    end = observation_end(ds, table_fn)
    cal = check_date(table_fn, "calibration_end", end if calibration_end is None else calibration_end)
    hold = check_date(table_fn, "holdout_end", end if holdout_end is None else holdout_end)
    end_day = epoch_seconds(end) // 86_400
    cal_n, hold_n = epoch_seconds(cal) // 86_400, epoch_seconds(hold) // 86_400
    if cal_n > end_day:
        raise ParameterError(
            f"{table_fn}(): calibration_end {cal.date()} is after the observation end {end.date()} of "
            f"dataset {ds.name!r}; T would count days nobody observed"
        )
    if hold_n > end_day:
        raise ParameterError(
            f"{table_fn}(): holdout_end {hold.date()} is after the observation end {end.date()} of dataset {ds.name!r}"
        )
    if hold < cal:
        raise ParameterError(
            f"{table_fn}(): holdout_end {hold.date()} is before calibration_end {cal.date()}; "
            "give a holdout_end on or after the calibration end (default: the observation end)"
        )

    e = observed_events(ds, end)  # events after the observation end are ignored, as everywhere
    p = e.filter(e.event_type == "purchase")
    # Joined to the users (a no-op on valid data: every event's user is a user) so that the grouping by
    # (user, day) below does not sit straight on the scan: DuckDB 2.0's partitioned_execution optimizer
    # splits such a group-by into key ranges of the user-sorted file and, with the purchase filter pushed
    # into the scan, rescans every row group for every range: 2 ranges at 1M users, 9 at 3M, more beyond,
    # so the cost grew with the square of the data (benchmarks/bench_tables.py --sizes shows it linear now).
    p = p.join(ds.users.select("user_id"), "user_id")
    p = p.mutate(day=day_number(p.event_at))
    p = p.filter(p.day <= hold_n)
    pdays = p.group_by(["user_id", "day"]).aggregate(spend=p.amount.sum(), first_at=p.event_at.min())
    in_cal = pdays.day <= cal_n
    in_hold = (pdays.day > cal_n) & (pdays.day <= hold_n)
    has_holdout = hold_n > cal_n
    cal_filter = in_cal if has_holdout else None  # without a holdout every day is a calibration day: no filters
    holdout = (
        {"frequency_holdout": pdays.count(where=in_hold), "monetary_holdout": pdays.spend.sum(where=in_hold)}
        if has_holdout
        else {}
    )
    c = pdays.group_by("user_id").aggregate(
        first_purchase_at=pdays.first_at.min(where=cal_filter),
        first_day=pdays.day.min(where=cal_filter),
        last_day=pdays.day.max(where=cal_filter),
        n_days=pdays.count(where=cal_filter),
        spend_cal=pdays.spend.sum(where=cal_filter),
        first_spend=pdays.spend.argmin(pdays.day, where=cal_filter),
        **holdout,
    )
    c = c.filter(c.n_days > 0)
    c = c.mutate(
        frequency=(c.n_days - 1).cast("int64"),
        recency_d=(c.last_day - c.first_day).cast("int64"),
        T_d=(cal_n - c.first_day).cast("int64"),
        frequency_holdout=c.frequency_holdout.cast("int64") if has_holdout else constant(0, "int64"),
        monetary_holdout=ibis.coalesce(c.monetary_holdout, 0.0).cast("float64") if has_holdout else constant(0.0, "float64"),
    )
    return c, cal_n, hold_n


#: the covariate computed in the engine (not a users column)
EXPOSED = "exposed"


def _check_covariates(ds, covariates, exposure, fn) -> list[str]:
    if isinstance(covariates, str):
        covariates = (covariates,)
    covariates = list(covariates or ())
    check_choice(fn, "exposure", exposure, EXPOSURES)
    if not covariates:
        return []
    require(ds, fn, "users")
    available = attribute_columns(ds)
    unknown = [c for c in covariates if c != EXPOSED and c not in available]
    if unknown:
        raise ParameterError(
            f"{fn}(): covariates {', '.join(map(repr, unknown))} are neither user attributes of dataset {ds.name!r} "
            f"({', '.join(available) or 'none'}) nor {EXPOSED!r} (a co-creator by the calibration end)"
        )
    clash = reserved(c for c in covariates if c != EXPOSED)  # refused by validation too; the list is the contract's
    if clash:
        raise ParameterError(f"{fn}(): covariates {clash} clash with the table's own columns; rename that attribute")
    if len(set(covariates)) != len(covariates):
        raise ParameterError(f"{fn}(): covariates {covariates} name a column twice")
    return covariates


def _with_covariates(ds, c, covariates, exposure, cal_n):
    """Customer rows ``c`` with the covariate columns joined on (attributes as they are,
    ``exposed`` as 0/1)."""
    attrs = [v for v in covariates if v != EXPOSED]
    if attrs:
        u = ds.users.select("user_id", *attrs)
        c = c.left_join(u, "user_id").select(c, *[u[a] for a in attrs])
    if EXPOSED in covariates:
        e = observed_events(ds, observation_end(ds, "repeat_summary"))
        e = e.filter((e.event_type == exposure) & (day_number(e.event_at) <= cal_n))
        seen = e.group_by("user_id").aggregate(_events=e.count())
        c = c.left_join(seen, "user_id").select(c, exposed=flag(seen._events.notnull()))
    return c


def repeat_summary(ds, *, time_unit: str = "week", calibration_end=None, holdout_end=None, covariates=(), exposure: str = "feedback") -> ibis.Table:
    """One row per customer with a purchase on or before ``calibration_end``:
    ``user_id``, ``first_purchase_at``, ``frequency``, ``recency``, ``T``,
    ``monetary_value``, ``frequency_holdout``, ``monetary_holdout``,
    ``duration_holdout`` (see the module docstring for the convention), then
    the ``covariates`` columns.

    ``time_unit``: ``"day"`` or ``"week"`` (days / 7, fractional).
    ``calibration_end`` and ``holdout_end`` are dates (UTC days) and default
    to the observation end (no holdout). ``covariates``: user attributes
    and/or ``"exposed"`` (with an ``exposure`` event by the calibration end).
    """
    check_choice("repeat_summary", "time_unit", time_unit, TIME_UNITS)
    covariates = _check_covariates(ds, covariates, exposure, "repeat_summary")
    c, cal_n, hold_n = _days_per_customer(ds, calibration_end, holdout_end, "repeat_summary")
    c = _with_covariates(ds, c, covariates, exposure, cal_n)
    unit = float(_UNIT_DAYS[time_unit])
    out = c.select(
        "user_id",
        "first_purchase_at",
        "frequency",
        recency=c.recency_d.cast("float64") / unit,
        T=c.T_d.cast("float64") / unit,
        monetary_value=(c.frequency > 0).ifelse(
            (c.spend_cal - c.first_spend) / c.frequency.cast("float64"), ibis.null("float64")
        ),
        frequency_holdout=c.frequency_holdout,
        monetary_holdout=c.monetary_holdout,
        duration_holdout=constant((hold_n - cal_n) / unit, "float64"),
        **{v: c[v] for v in covariates},
    )
    return out.order_by("user_id")


def repeat_summary_compressed(ds, *, time_unit: str = "week", calibration_end=None, holdout_end=None, covariates=(), exposure: str = "feedback") -> ibis.Table:
    """:func:`repeat_summary` reduced to its unique (``frequency``,
    ``recency``, ``T``) rows, per level of the ``covariates`` when given:
    the covariate columns, ``n`` (customers with that pattern),
    ``frequency_holdout_sum`` and ``frequency_holdout_sq_sum`` (sum of the
    squared holdout purchases, for per-customer errors). A BG/NBD or
    Pareto/NBD fit with frequency weights ``n`` on this table equals the fit
    on the per-customer table."""
    check_choice("repeat_summary_compressed", "time_unit", time_unit, TIME_UNITS)
    covariates = _check_covariates(ds, covariates, exposure, "repeat_summary_compressed")
    c, cal_n, hold_n = _days_per_customer(ds, calibration_end, holdout_end, "repeat_summary_compressed")
    c = _with_covariates(ds, c, covariates, exposure, cal_n)
    unit = float(_UNIT_DAYS[time_unit])
    g = c.group_by(["frequency", "recency_d", "T_d", *covariates]).aggregate(
        n=c.count().cast("int64"),
        frequency_holdout_sum=as_bigint(c.frequency_holdout.sum()),
        frequency_holdout_sq_sum=as_bigint((c.frequency_holdout * c.frequency_holdout).sum()),
    )
    out = g.select(
        *covariates,
        "frequency",
        recency=g.recency_d.cast("float64") / unit,
        T=g.T_d.cast("float64") / unit,
        n=g.n,
        frequency_holdout_sum=g.frequency_holdout_sum,
        frequency_holdout_sq_sum=g.frequency_holdout_sq_sum,
    )
    return out.order_by([*covariates, "frequency", "recency", "T"])

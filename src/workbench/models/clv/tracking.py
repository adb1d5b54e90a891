"""Expected repeat purchases of a whole customer base over calendar time, for
the tracking plot (actual versus expected, through calibration and holdout).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.errors import ModelError, ParameterError
from workbench.models.clv.counting import CountingResult
from workbench.models.clv.rfm import as_frame, numeric_column
from workbench.models.clv.value import UNITS_PER_YEAR


def expected_cumulative_repeat(purchases: CountingResult, *, acquisitions, times) -> pd.DataFrame:
    """Expected cumulative repeat purchases of a customer base over calendar time, for a tracking plot.

    ``acquisitions``: a DataFrame with ``t`` (time of each cohort's first
    purchase, in the model's time unit, on the same clock as ``times``) and
    ``n`` (customers first buying then). Returns ``time`` and
    ``expected_cumulative = sum_j n_j E[X(time - t_j)]`` (over cohorts already
    acquired) and ``expected`` (the increment over the previous time)."""
    func = "expected_cumulative_repeat"
    acq = as_frame(acquisitions, func)
    t0 = numeric_column(acq, "t", func, "t column: time of first purchase")
    n = numeric_column(acq, "n", func, "n column: customers acquired")
    times = np.asarray(times, dtype=float)
    age = times[:, None] - t0[None, :]
    flat = np.maximum(age.ravel(), 0.0)
    uniq, inv = np.unique(flat, return_inverse=True)
    vals = purchases.expected_purchases_new(uniq)[inv.ravel()].reshape(age.shape)
    cum = (np.where(age > 0, vals, 0.0) * n[None, :]).sum(axis=1)
    return pd.DataFrame({"time": times, "expected_cumulative": cum, "expected": np.diff(cum, prepend=0.0)})


def tracking_table(daily, *, models: dict, time_unit: str = "week") -> pd.DataFrame:
    """Actual and expected repeat purchases per period of calendar time, for a tracking plot.

    ``daily``: one row per UTC day with ``day`` (an integer day number),
    ``new_customers`` and ``repeat_purchases`` (``workbench.tables.tracking.repeat_tracking``).
    ``models``: fitted BG/NBD, MBG/NBD or Pareto/NBD results (without covariates) by display name.
    Periods are weeks (``time_unit="week"``) or days counted from the first acquisition day:
    period ``k`` ends at the end of day ``origin + k * length - 1``, when a customer
    acquired on day ``d`` has age ``D - d`` days (as ``T`` in the repeat summary),
    and her repeat purchases on days up to ``D`` are counted. Returns ``time``
    (period number k), ``actual`` (repeat purchases in the period) and
    ``expected_<name>`` per model."""
    func = "tracking_table"
    df = as_frame(daily, func)
    day = numeric_column(df, "day", func, "day column: integer day number")
    new = numeric_column(df, "new_customers", func, "new_customers column")
    rep = numeric_column(df, "repeat_purchases", func, "repeat_purchases column")
    if time_unit not in UNITS_PER_YEAR:
        raise ParameterError(f"{func}: time_unit must be one of {', '.join(UNITS_PER_YEAR)}, got {time_unit!r}")
    if not len(day) or new.sum() <= 0:
        raise ModelError(f"{func}: no customers acquired in the table; nothing to track.")
    covariate_models = [name for name, m in models.items() if getattr(m, "covariates", None) is not None]
    if covariate_models:
        raise ParameterError(f"{func}: {', '.join(covariate_models)} has covariates; track the base with a model fitted without them")
    length = 7 if time_unit == "week" else 1
    origin = day[new > 0].min()
    last = day.max()
    periods = int(np.ceil((last - origin + 1) / length))
    k = np.arange(1, periods + 1)
    ends = origin + k * length - 1  # last day of each period
    actual = np.bincount(((day - origin) // length).astype(int).clip(0), weights=rep, minlength=periods)[:periods]
    acq = pd.DataFrame({"t": day[new > 0] - origin, "n": new[new > 0]})
    out = pd.DataFrame({"time": k, "actual": actual})
    unit_days = 7.0 if time_unit == "week" else 1.0
    acq_u = acq.assign(t=acq["t"] / unit_days)
    times = (ends - origin) / unit_days
    for name, model in models.items():
        exp = expected_cumulative_repeat(model, acquisitions=acq_u, times=times)
        out[f"expected_{name}"] = exp["expected"].to_numpy()
    return out

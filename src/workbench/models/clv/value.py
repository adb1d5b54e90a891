"""Customer lifetime value over a horizon, per customer and in total, with
intervals.

``CLV_i = E[M_i] * sum_{k=1..K} (E[X_i(t_k)] - E[X_i(t_{k-1})]) * (1 + d)^(-t_k / P)``

with ``E[X_i(t)]`` the conditional expected repeat purchases in ``(T_i, T_i +
t]`` from a purchase model (BG/NBD, MBG/NBD or Pareto/NBD), ``E[M_i]`` the
Gamma-Gamma conditional expected spend per transaction, ``t_k = min(k step,
horizon)``, ``d`` the annual discount rate and ``P`` the time units per year.

**Intervals** (delta method, see :mod:`workbench.models.clv.intervals`): the
purchase model's parameters and the spend model's are estimated separately
(independent), so for each customer ``var(log CLV) = var(log discounted
purchases) + var(log expected spend)``, and for the total ``sum_i n_i CLV_i``
the gradient with respect to each model's parameters is summed over
customers first. They express the uncertainty of the estimated parameters:
a 95% interval is meant to cover the customer's (or the base's) expected
value under the true parameters given the observed histories — not the
purchases a customer will actually make, which vary around that expectation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.models.clv import intervals
from workbench.models.clv.counting import CountingResult
from workbench.models.clv.gamma_gamma import GammaGammaResult
from workbench.models.clv.rfm import as_frame, count_weights, nonnegative, numeric_column, rfm_arrays
from workbench.models.mle import check_level, z_value
from workbench.models.results import Result

#: time units per year, for turning an annual discount rate into one per time unit
UNITS_PER_YEAR = {"day": 365.25, "week": 365.25 / 7.0}
#: columns of a summary carried into the per-customer table when present
ID_COLUMNS = ("user_id", "segment")


def discount_factors(times, *, discount_rate: float, time_unit: str) -> np.ndarray:
    """``(1 + d)^(-t / units_per_year)``: the value today of 1 paid at time ``t`` (in ``time_unit``)."""
    if time_unit not in UNITS_PER_YEAR:
        raise ParameterError(f"time_unit must be one of {', '.join(UNITS_PER_YEAR)}, got {time_unit!r}")
    return (1.0 + discount_rate) ** (-np.asarray(times, dtype=float) / UNITS_PER_YEAR[time_unit])


@dataclass(frozen=True, eq=False)
class CLVResult(Result):
    """Customer lifetime value over a horizon.

    ``customers`` has one row per summary row (its index kept): the id
    columns found in the summary (``user_id``, ``segment``, covariates),
    ``n`` (customers in the row; 1 per customer), ``probability_alive``,
    ``expected_purchases`` (in the horizon), ``expected_spend`` (per
    transaction), ``discounted_purchases`` and ``clv``, each prediction with
    ``_ci_low``/``_ci_high`` at ``level``. ``total_clv_ci``: the interval of
    the total over all customers."""

    customers: pd.DataFrame = field(repr=False)
    horizon: float
    discount_rate: float
    time_unit: str
    step: float
    model: str
    level: float = 0.95
    total_clv_ci: tuple[float, float] = (math.nan, math.nan)

    @property
    def n(self) -> np.ndarray:
        return self.customers["n"].to_numpy(dtype=float)

    def _mean(self, col) -> float:
        return float(np.average(self.customers[col].to_numpy(dtype=float), weights=self.n))

    @property
    def mean_clv(self) -> float:
        return self._mean("clv")

    @property
    def total_clv(self) -> float:
        return float((self.customers["clv"] * self.customers["n"]).sum())

    @property
    def mean_clv_ci(self) -> tuple[float, float]:
        total = float(self.n.sum())
        return self.total_clv_ci[0] / total, self.total_clv_ci[1] / total

    @property
    def median_clv(self) -> float:
        c = self.customers.sort_values("clv")
        cum = c["n"].cumsum().to_numpy()
        return float(c["clv"].to_numpy()[np.searchsorted(cum, cum[-1] / 2.0)])

    def top_share(self, fraction: float = 0.2) -> float:
        """Share of total CLV held by the top ``fraction`` of customers."""
        c = self.customers.sort_values("clv", ascending=False)
        cum = c["n"].cumsum().to_numpy()
        k = np.searchsorted(cum, fraction * cum[-1])
        vals = (c["clv"] * c["n"]).to_numpy()
        return float(vals[: k + 1].sum() / vals.sum()) if vals.sum() > 0 else float("nan")

    def customer_table(self) -> pd.DataFrame:
        """The per-customer export: id columns, then P(alive), expected purchases, expected spend and
        CLV, each with its interval (``_ci_low``, ``_ci_high``)."""
        c = self.customers
        ids = [col for col in c.columns if col not in _VALUE_COLUMNS and col != "n"]
        values = [col for base in ("probability_alive", "expected_purchases", "expected_spend", "clv") for col in (base, f"{base}_ci_low", f"{base}_ci_high")]
        return c[ids + values].reset_index(drop=True)

    def summary(self) -> pd.DataFrame:
        lo, hi = self.total_clv_ci
        mlo, mhi = self.mean_clv_ci
        rows = {
            "customers": (float(self.n.sum()), math.nan, math.nan),
            "mean_clv": (self.mean_clv, mlo, mhi),
            "median_clv": (self.median_clv, math.nan, math.nan),
            "total_clv": (self.total_clv, lo, hi),
            "top20_share": (self.top_share(0.2), math.nan, math.nan),
            "mean_expected_purchases": (self._mean("expected_purchases"), math.nan, math.nan),
            "mean_discounted_purchases": (self._mean("discounted_purchases"), math.nan, math.nan),
            "mean_probability_alive": (self._mean("probability_alive"), math.nan, math.nan),
            "mean_expected_spend": (self._mean("expected_spend"), math.nan, math.nan),
        }
        return pd.DataFrame.from_dict(rows, orient="index", columns=["value", "ci_low", "ci_high"]).rename_axis("quantity")

    def to_metrics(self, prefix: str = "clv") -> dict:
        s = self.summary()
        out = {f"{prefix}.{k}": float(v) for k, v in s["value"].items()}
        for k in ("mean_clv", "total_clv"):
            out[f"{prefix}.{k}_ci_low"] = float(s.loc[k, "ci_low"])
            out[f"{prefix}.{k}_ci_high"] = float(s.loc[k, "ci_high"])
        out[f"{prefix}.horizon"] = self.horizon
        out[f"{prefix}.discount_rate"] = self.discount_rate
        out[f"{prefix}.level"] = self.level
        return out

    def _repr_html_(self) -> str:
        head = (f"<strong>CLVResult</strong> — {self.model}, horizon {self.horizon:g} {self.time_unit}s, annual discount rate "
                f"{self.discount_rate:.1%}, {self.level:.0%} intervals (delta method)")
        return head + self.summary().to_html(float_format=lambda v: f"{v:,.4g}", na_rep="")


_VALUE_COLUMNS = (
    "frequency", "recency", "T", "discounted_purchases",
    *(f"{b}{s}" for b in ("probability_alive", "expected_purchases", "expected_spend", "clv") for s in ("", "_ci_low", "_ci_high")),
)


def customer_lifetime_value(
    purchases: CountingResult,
    spend: GammaGammaResult,
    summary,
    *,
    horizon: float,
    discount_rate: float,
    time_unit: str = "week",
    step: float | None = None,
    level: float | None = None,
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
    monetary_value: str = "monetary_value",
    weights: str | None = None,
) -> CLVResult:
    """Discounted customer lifetime value over ``horizon`` (in ``time_unit``) for each summary row,
    with delta-method intervals (see the module docstring).

    ``step`` defaults to about a month (4.35 weeks or 30.44 days), capped at
    the horizon; purchases in each step are discounted at the step's end.
    Spend and purchases are independent in the Gamma-Gamma model, so their
    expectations multiply. ``level`` defaults to the purchase model's.
    """
    func = "customer_lifetime_value"
    if not isinstance(purchases, CountingResult):
        raise ParameterError(f"{func}: purchases must be a fitted BG/NBD, MBG/NBD or Pareto/NBD result, got {type(purchases).__name__}")
    if not isinstance(spend, GammaGammaResult):
        raise ParameterError(f"{func}: spend must be a fitted Gamma-Gamma result, got {type(spend).__name__}")
    horizon = nonnegative(horizon, "horizon", func)
    if horizon <= 0:
        raise ParameterError(f"{func}: horizon must be > 0 (in {time_unit}s), got {horizon!r}")
    d = float(discount_rate)
    if not np.isfinite(d) or d <= -1 or d > 10:
        raise ParameterError(f"{func}: discount_rate is an annual rate such as 0.10 (10%); got {discount_rate!r}")
    if time_unit not in UNITS_PER_YEAR:
        raise ParameterError(f"{func}: time_unit must be one of {', '.join(UNITS_PER_YEAR)}, got {time_unit!r}")
    level = check_level(purchases.level if level is None else level, func)
    z = z_value(level)
    if step is None:
        step = UNITS_PER_YEAR[time_unit] / 12.0
    step = min(nonnegative(step, "step", func), horizon)
    if step <= 0:
        raise ParameterError(f"{func}: step must be > 0")
    df = as_frame(summary, func)
    rfm = rfm_arrays(df, frequency=frequency, recency=recency, T=T, weights=None, func=func, compress=False)
    g = np.zeros(len(df), dtype=np.int64) if purchases.covariates is None else purchases.covariates.groups_of(df, func)
    n = count_weights(df, weights, func)
    if monetary_value not in df.columns and (rfm.x > 0).any():
        raise ParameterError(
            f"{func}: the summary has no column {monetary_value!r}; CLV needs each repeat customer's mean spend (repeat_summary's monetary_value)."
        )
    m = (
        numeric_column(df, monetary_value, func, "monetary_value column: mean spend per repeat purchase")
        if monetary_value in df.columns
        else np.full(len(df), np.nan)
    )
    k = int(math.ceil(horizon / step - 1e-9))
    grid = np.minimum(np.arange(0, k + 1) * step, horizon)
    disc = discount_factors(grid[1:], discount_rate=d, time_unit=time_unit)

    # purchases: expected (horizon), discounted and P(alive) on the unique (x, t_x, T, group) rows
    u, inv = np.unique(np.column_stack([rfm.x, rfm.tx, rfm.T, g]), axis=0, return_inverse=True)
    inv = inv.ravel()
    ux, utx, uT, ug = u[:, 0], u[:, 1], u[:, 2], u[:, 3].astype(np.int64)

    def purchase_stats(theta):
        cum = np.column_stack([np.zeros(len(ux))] + [purchases._evaluate("expected", ux, utx, uT, ug, t, theta) for t in grid[1:]])
        return np.column_stack([cum[:, -1], np.diff(cum, axis=1) @ disc, purchases._evaluate("p_alive", ux, utx, uT, ug, theta=theta)])

    ps, Jps = intervals.jacobian(purchase_stats, purchases.theta)
    e, dp, pa = ps[:, 0], ps[:, 1], ps[:, 2]
    Je, Jdp, Jpa = Jps[:, 0, :], Jps[:, 1, :], Jps[:, 2, :]
    s, Js = intervals.jacobian(lambda th: spend.spend_at(th, rfm.x, m), spend.theta)
    var_dp = intervals.log_variance(dp, Jdp, purchases.cov)[inv]
    var_s = intervals.log_variance(s, Js, spend.cov)
    clv = dp[inv] * s
    e_lo, e_hi = intervals.log_interval(e, intervals.log_variance(e, Je, purchases.cov), z)
    pa_lo, pa_hi = intervals.logit_interval(pa, Jpa, purchases.cov, z)
    s_lo, s_hi = intervals.log_interval(s, var_s, z)
    c_lo, c_hi = intervals.log_interval(clv, var_dp + var_s, z)
    # the total: gradients summed over customers, each model's block with its own covariance
    total = float(np.sum(n * clv))
    g_theta = (n * s) @ Jdp[inv]
    g_spend = (n * dp[inv]) @ Js
    var_total = float(g_theta @ purchases.cov @ g_theta + g_spend @ spend.cov @ g_spend)
    t_lo, t_hi = intervals.log_interval(total, var_total / total**2 if total > 0 else 0.0, z)

    frame = pd.DataFrame(index=df.index)
    for col in (*ID_COLUMNS, *(purchases.covariates.columns if purchases.covariates is not None else ())):
        if col in df.columns and col not in frame.columns:
            frame[col] = df[col].to_numpy()
    frame = frame.assign(
        frequency=rfm.x, recency=rfm.tx, T=rfm.T, n=n,
        probability_alive=pa[inv], probability_alive_ci_low=pa_lo[inv], probability_alive_ci_high=pa_hi[inv],
        expected_purchases=e[inv], expected_purchases_ci_low=e_lo[inv], expected_purchases_ci_high=e_hi[inv],
        expected_spend=s, expected_spend_ci_low=s_lo, expected_spend_ci_high=s_hi,
        discounted_purchases=dp[inv],
        clv=clv, clv_ci_low=c_lo, clv_ci_high=c_hi,
    )
    return CLVResult(customers=frame, horizon=horizon, discount_rate=d, time_unit=time_unit, step=step, model=purchases.LABEL,
                     level=level, total_clv_ci=(float(t_lo), float(t_hi)))

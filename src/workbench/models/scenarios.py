"""Scenario planner: users -> customers -> revenue, with uncertainty bands.

A :class:`Strategy` combines

* **growth**: new users per period, from a fitted :class:`~workbench.models.growth.BassResult`
  (optionally scaled to a share of its market), Bass parameters ``{"p", "q", "m"}``,
  or an explicit trajectory;
* **conversion**: the share of a signup cohort that has become paying customers
  by each period since signup, from a :class:`~workbench.models.conversion.ConversionCurveResult`,
  a cumulative curve per period, or one share (everyone who ever pays does so in
  the signup period);
* **value**: revenue per paying customer per period (e.g. ARPPU, a price, or
  calibrated on the KPIs by :func:`fit_customer_value`), optionally a different
  ``first_value`` in the period a customer converts, with ``retention`` the
  share of paying customers still paying the next period; or, with
  ``value_basis="lifetime"``, a lifetime value (e.g. CLV) booked when the
  customer converts.

:func:`project_revenue` turns a strategy into projected new users, customers
and revenue per period. :func:`compare_strategies` projects several strategies
on shared draws and finds when, if ever, one overtakes another.

Uncertainty bands come from parameter uncertainty only, by simulation: each
draw takes Bass parameters from the multivariate normal approximation of the
fit (log scale), a conversion share (logit-normal around the estimate with its
standard error; a curve is rescaled to the drawn share at its horizon), values
(log-normal with the estimate as median and its standard error, by the delta
method) and a retention (logit-normal), each independently of the others (the
correlation between estimates of one fit, e.g. value and retention, is
ignored, which widens the bands somewhat). Inputs given as plain numbers are held
fixed. Within one comparison every input object shared by several strategies
is drawn once per draw (common random numbers), so differences between
strategies are not blurred by noise they share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize, stats

from workbench.errors import ModelError, ParameterError
from workbench.models.conversion import ConversionCurveResult
from workbench.models.growth import BassResult, bass_adoptions
from workbench.models.results import Result, summary_frame, summary_metrics

QUANTITIES = ("new_users", "users", "new_customers", "customers", "revenue", "cumulative_revenue")


def _is_uncertain(x) -> bool:
    return isinstance(x, tuple) and len(x) == 2


@dataclass(frozen=True)
class Strategy:
    """One way to run the product (see the module docstring).

    Parameters
    ----------
    name
        A label for tables and plots.
    adoption
        A ``BassResult`` (its fitted history plus ``horizon`` periods, with
        parameter draws), a mapping ``{"p": .., "q": .., "m": ..}`` (fixed), or
        new users per period (an array; fixed).
    conversion
        A ``ConversionCurveResult``, a cumulative share converted by the end of
        each period since signup (array, period 0 = the signup period), a share
        (number), or ``(share, std_err)``.
    value
        Revenue per paying customer per period (``value_basis="per_period"``)
        or per customer over its life (``"lifetime"``): a number or
        ``(estimate, std_err)``.
    retention
        Share of paying customers who still pay the next period (per-period
        basis only): a number in (0, 1] or ``(estimate, std_err)``.
    first_value
        Revenue per customer in the period they convert (per-period basis;
        default: ``value``), e.g. a first purchase larger than the later ones
        (see :func:`fit_customer_value`).
    market_scale
        Multiplies the Bass market size m (e.g. 0.2: a paid product reaches a
        fifth of the market a free one does).
    period_days
        Length of one period in days, to read a day-based conversion curve.
    """

    name: str
    adoption: object
    conversion: object
    value: object
    retention: object = 1.0
    first_value: object = None
    market_scale: float = 1.0
    value_basis: str = "per_period"
    period_days: float = 7.0

    def __post_init__(self):
        where = f"Strategy {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ParameterError("Strategy: name must be a non-empty string")
        if self.value_basis not in ("per_period", "lifetime"):
            raise ParameterError(f"{where}: value_basis must be 'per_period' or 'lifetime', got {self.value_basis!r}")
        if not (isinstance(self.market_scale, (int, float)) and self.market_scale > 0):
            raise ParameterError(f"{where}: market_scale must be a number > 0, got {self.market_scale!r}")
        if not (isinstance(self.period_days, (int, float)) and self.period_days > 0):
            raise ParameterError(f"{where}: period_days must be > 0, got {self.period_days!r}")
        a = self.adoption
        if isinstance(a, dict):
            if set(a) != {"p", "q", "m"} or not all(isinstance(a[k], (int, float)) and a[k] > 0 for k in a):
                raise ParameterError(f"{where}: adoption as a mapping needs positive numbers p, q and m, got {a!r}")
        elif not isinstance(a, BassResult):
            arr = np.asarray(a, dtype=float) if not isinstance(a, (str, bytes)) else np.array([np.nan])
            if arr.ndim != 1 or len(arr) == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ParameterError(f"{where}: adoption must be a BassResult, {{'p','q','m'}} or new users per period (numbers >= 0)")
        c = self.conversion
        if isinstance(c, ConversionCurveResult):
            pass
        elif _is_uncertain(c):
            _check_share(where, "conversion", c[0], c[1])
        elif isinstance(c, (int, float)):
            _check_share(where, "conversion", c, 0.0)
        else:
            arr = np.asarray(c, dtype=float)
            if arr.ndim != 1 or len(arr) == 0 or np.any(~np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1) or np.any(np.diff(arr) < -1e-12):
                raise ParameterError(f"{where}: a conversion curve must be non-decreasing shares between 0 and 1 by period since signup")
        _check_positive(where, "value", self.value)
        if self.first_value is not None:
            if self.value_basis == "lifetime":
                raise ParameterError(f"{where}: first_value applies to value_basis='per_period' only")
            _check_positive(where, "first_value", self.first_value)
        if self.value_basis == "per_period":
            r = self.retention
            est, se = (r if _is_uncertain(r) else (r, 0.0))
            if not (isinstance(est, (int, float)) and 0 < est <= 1 and se >= 0):
                raise ParameterError(f"{where}: retention must be in (0, 1] (or (estimate, std_err)), got {r!r}")


def _check_share(where, what, est, se):
    if not (isinstance(est, (int, float, np.floating)) and 0 <= est <= 1 and isinstance(se, (int, float, np.floating)) and se >= 0):
        raise ParameterError(f"{where}: {what} must be a share in [0, 1] (or (share, std_err)), got {(est, se) if se else est!r}")


def _check_positive(where, what, x):
    est, se = (x if _is_uncertain(x) else (x, 0.0))
    if not (isinstance(est, (int, float, np.floating)) and est >= 0 and isinstance(se, (int, float, np.floating)) and se >= 0):
        raise ParameterError(f"{where}: {what} must be a number >= 0 (or (estimate, std_err)), got {x!r}")


# ----------------------------------------------------------------- draws
def _logit(x):
    return np.log(x / (1 - x))


def _draw_share(est: float, se: float, draws: int, rng) -> np.ndarray:
    if se <= 0 or est <= 0 or est >= 1:
        return np.full(draws, float(est))
    z = rng.standard_normal(draws)
    return 1 / (1 + np.exp(-(_logit(est) + z * se / (est * (1 - est)))))


def _draw_positive(est: float, se: float, draws: int, rng) -> np.ndarray:
    if se <= 0 or est <= 0:
        return np.full(draws, float(est))
    return est * np.exp(rng.standard_normal(draws) * se / est)


class _Draws:
    """Draws of each input, shared across strategies that share the input object."""

    def __init__(self, draws: int, rng: np.random.Generator):
        self.n = draws
        self.rng = rng
        self.cache: dict = {}

    def get(self, key, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


def _key(obj):
    if isinstance(obj, (BassResult, ConversionCurveResult)):
        return ("obj", id(obj))
    if _is_uncertain(obj):
        return ("tuple", float(obj[0]), float(obj[1]))
    return None  # fixed values need no draws


def _periods(strategy: Strategy, horizon: int) -> tuple[np.ndarray, pd.Index, int]:
    a = strategy.adoption
    if isinstance(a, BassResult):
        n_obs = a.n_periods
        t = np.arange(1, n_obs + horizon + 1)
        return t, a.period_labels(t), n_obs
    if isinstance(a, dict):
        t = np.arange(1, horizon + 1)
        return t, pd.Index(t, name="t"), 0
    arr = np.asarray(a, dtype=float)
    t = np.arange(1, len(arr) + 1)
    return t, pd.Index(t, name="t"), len(arr)


def _new_users(strategy: Strategy, t: np.ndarray, D: _Draws) -> np.ndarray:
    a = strategy.adoption
    if isinstance(a, BassResult):
        theta = D.get(_key(a), lambda: a.draw_parameters(D.n, D.rng))
        out = np.vstack([a.curve(t, p, q, m * strategy.market_scale) for p, q, m in theta])
        point = a.curve(t, a.p, a.q, a.m * strategy.market_scale)
        return np.vstack([point, out])
    if isinstance(a, dict):
        point = bass_adoptions(t, a["p"], a["q"], a["m"] * strategy.market_scale)
    else:
        point = np.asarray(a, dtype=float)[: len(t)] * strategy.market_scale
    return np.tile(point, (D.n + 1, 1))


def _conversion_increments(strategy: Strategy, n_periods: int, D: _Draws) -> np.ndarray:
    """(draws + 1) x n_periods: share of a cohort converting in its k-th period (k = 0..)."""
    c = strategy.conversion
    k = np.arange(n_periods)
    if isinstance(c, ConversionCurveResult):
        curve = c.share_at((k + 1) * strategy.period_days)  # held flat beyond the tabulated days
        est = c.share
        se = float(c.shares.loc["all", "std_err"])
        shares = D.get(_key(c), lambda: _draw_share(est, se, D.n, D.rng))
        scale = np.concatenate([[1.0], shares / est]) if est > 0 else np.ones(D.n + 1)
        cum = np.clip(curve[None, :] * scale[:, None], 0, 1)
    elif _is_uncertain(c) or isinstance(c, (int, float)):
        est, se = (c if _is_uncertain(c) else (c, 0.0))
        shares = D.get(_key(c) + ("share",), lambda: _draw_share(float(est), float(se), D.n, D.rng)) if _is_uncertain(c) else np.full(D.n, float(est))
        cum = np.repeat(np.concatenate([[float(est)], shares])[:, None], n_periods, axis=1)
    else:
        arr = np.asarray(c, dtype=float)
        curve = arr[np.minimum(k, len(arr) - 1)]
        cum = np.tile(curve, (D.n + 1, 1))
    return np.diff(cum, axis=1, prepend=0.0)


def _uncertain_value(x, D: _Draws, draw) -> np.ndarray:
    if _is_uncertain(x):
        est, se = float(x[0]), float(x[1])
        return np.concatenate([[est], D.get(_key(x) + (draw.__name__,), lambda: draw(est, se, D.n, D.rng))])
    return np.full(D.n + 1, float(x))


def _project(strategy: Strategy, horizon: int, D: _Draws) -> dict:
    t, labels, n_obs = _periods(strategy, horizon)
    P = len(t)
    new_users = _new_users(strategy, t, D)  # row 0: point estimate, rows 1..: draws
    inc = _conversion_increments(strategy, P, D)
    new_customers = np.vstack([np.convolve(new_users[i], inc[i])[:P] for i in range(new_users.shape[0])])
    value = _uncertain_value(strategy.value, D, _draw_positive)
    if strategy.value_basis == "lifetime":
        customers = np.cumsum(new_customers, axis=1)
        revenue = new_customers * value[:, None]
    else:
        r = _uncertain_value(strategy.retention, D, _draw_share)
        first = value if strategy.first_value is None else _uncertain_value(strategy.first_value, D, _draw_positive)
        customers = np.empty_like(new_customers)
        customers[:, 0] = new_customers[:, 0]
        for j in range(1, P):
            customers[:, j] = r * customers[:, j - 1] + new_customers[:, j]
        revenue = first[:, None] * new_customers + value[:, None] * (customers - new_customers)
    return {
        "t": t,
        "period": labels,
        "n_obs": n_obs,
        "new_users": new_users,
        "users": np.cumsum(new_users, axis=1),
        "new_customers": new_customers,
        "customers": customers,
        "revenue": revenue,
        "cumulative_revenue": np.cumsum(revenue, axis=1),
    }


# ----------------------------------------------------------------- value calibration
@dataclass(frozen=True)
class CustomerValueResult(Result):
    """Revenue per customer and customer retention, calibrated on a KPI table.

    The model: in the period a customer first pays they bring in
    ``first_value`` (a); each later period they are still paying, ``value``
    (v); a paying customer still pays the next period with probability
    ``retention`` (r). With ``f_t`` first-time customers, returning payers are
    ``Q_1 = 0``, ``Q_t = r (Q_{t-1} + f_{t-1})`` and revenue is
    ``R_t = a f_t + v Q_t``. These are the per-period inputs of a
    :class:`Strategy` (``first_value``, ``value``, ``retention``); ``fitted``
    holds the observed and fitted revenue.
    """

    params: pd.DataFrame
    fitted: pd.DataFrame = field(repr=False)
    cov_type: str
    alpha: float

    def _pair(self, name) -> tuple[float, float]:
        return float(self.params.loc[name, "estimate"]), float(self.params.loc[name, "std_err"])

    @property
    def first_value(self) -> tuple[float, float]:
        """``(estimate, std_err)`` of a, for ``Strategy(first_value=...)``."""
        return self._pair("first_value")

    @property
    def value(self) -> tuple[float, float]:
        """``(estimate, std_err)`` of v, for ``Strategy(value=...)``."""
        return self._pair("value")

    @property
    def retention(self) -> tuple[float, float]:
        """``(estimate, std_err)`` of r, for ``Strategy(retention=...)``."""
        return self._pair("retention")

    @property
    def r_squared(self) -> float:
        y, f = self.fitted["revenue"].to_numpy(), self.fitted["fitted"].to_numpy()
        return float(1 - np.sum((y - f) ** 2) / np.sum((y - y.mean()) ** 2))

    def summary(self) -> pd.DataFrame:
        return self.params.copy()

    def to_metrics(self, prefix: str = "customer_value") -> dict:
        out = summary_metrics(prefix, self.params)
        out[f"{prefix}.r_squared"] = self.r_squared
        return out


def fit_customer_value(
    kpis: pd.DataFrame,
    *,
    period: str = "period",
    first_time_customers: str = "first_time_customers",
    revenue: str = "revenue",
    maxlags: int | None = None,
    alpha: float = 0.05,
) -> CustomerValueResult:
    """Calibrate first-period value (a), later value per period (v) and
    retention (r) of paying customers on revenue and first-time customers per
    period (``workbench.tables.kpis``); see :class:`CustomerValueResult`.

    Nonlinear least squares (``scipy.optimize.least_squares``) in ``log a,
    log v, logit r``. Standard errors are Newey-West (HAC, ``maxlags`` default
    ``floor(4 (T/100)^(2/9))``), the sandwich of the linearised model computed
    by statsmodels' OLS of the residuals on the Jacobian; the delta method
    gives a, v, r, and intervals are Wald on the log / logit scale.
    """
    fn = "fit_customer_value"
    if not isinstance(kpis, pd.DataFrame):
        raise ParameterError(f"{fn}: kpis must be a pandas DataFrame, got {type(kpis).__name__}")
    missing = [c for c in (period, first_time_customers, revenue) if c not in kpis.columns]
    if missing:
        raise ParameterError(f"{fn}: column(s) {missing} not in the data (columns: {', '.join(map(str, kpis.columns))})")
    if not 0 < alpha < 1:
        raise ParameterError(f"{fn}: alpha must be between 0 and 1, got {alpha!r}")
    k = kpis.sort_values(period)
    f = pd.to_numeric(k[first_time_customers], errors="coerce").to_numpy(float)
    y = pd.to_numeric(k[revenue], errors="coerce").to_numpy(float)
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(y))) or np.any(f < 0) or np.any(y < 0):
        raise ModelError(f"{fn}: first-time customers and revenue must be numbers >= 0 in every period (fill gaps with 0).")
    start = np.flatnonzero(f > 0)
    if len(start) == 0:
        raise ModelError(f"{fn}: no first-time customers in any period; there is no customer to value.")
    f, y = f[start[0]:], y[start[0]:]
    labels = k[period].to_numpy()[start[0]:]
    T = len(y)
    if T < 8:
        raise ModelError(f"{fn}: {T} period(s) from the first customer on; at least 8 are needed. Use a finer period.")

    def returning(r):
        Q, dQ = np.zeros(T), np.zeros(T)
        for t in range(1, T):
            Q[t] = r * (Q[t - 1] + f[t - 1])
            dQ[t] = (Q[t - 1] + f[t - 1]) + r * dQ[t - 1]
        return Q, dQ

    scale = max(float(np.max(y)), 1.0)

    def unpack(theta):
        return np.exp(theta[0]), np.exp(theta[1]), 1.0 / (1.0 + np.exp(-theta[2]))

    def resid(theta):
        a, v, r = unpack(theta)
        return (a * f + v * returning(r)[0] - y) / scale

    def jac(theta):
        a, v, r = unpack(theta)
        Q, dQ = returning(r)
        return np.column_stack([a * f, v * Q, v * dQ * r * (1 - r)]) / scale

    best = None
    for r0 in (0.3, 0.7, 0.95):
        Q = returning(r0)[0]
        X = np.column_stack([f, Q])
        coef = np.linalg.lstsq(X, y, rcond=None)[0]
        a0, v0 = (max(float(c), 1e-6 * scale) for c in coef)
        try:
            fit = optimize.least_squares(resid, [np.log(a0), np.log(v0), np.log(r0 / (1 - r0))], jac=jac, method="trf", bounds=([-60, -60, -12], [60, 60, 12]))
        except (ValueError, FloatingPointError):
            continue
        if fit.status > 0 and (best is None or fit.cost < best.cost):
            best = fit
    if best is None or np.any(np.abs(best.x[2]) > 11.9) or np.any(best.x[:2] < -59):
        raise ModelError(
            f"{fn}: the fit did not converge to positive values and a retention strictly "
            "between 0 and 1; the KPIs do not pin down how long customers keep paying."
        )
    theta = best.x
    a, v, r = unpack(theta)
    J = jac(theta) * scale
    e = y - (a * f + v * returning(r)[0])
    lags = int(np.floor(4 * (T / 100) ** (2 / 9))) if maxlags is None else int(maxlags)
    cov = np.asarray(sm.OLS(e, J).fit(cov_type="HAC", cov_kwds={"maxlags": lags}).cov_params())
    se_theta = np.sqrt(np.diag(cov))
    z = stats.norm.ppf(1 - alpha / 2)
    lo_t, hi_t = theta - z * se_theta, theta + z * se_theta
    logistic = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    lo = [np.exp(lo_t[0]), np.exp(lo_t[1]), logistic(lo_t[2])]
    hi = [np.exp(hi_t[0]), np.exp(hi_t[1]), logistic(hi_t[2])]
    se = [a * se_theta[0], v * se_theta[1], r * (1 - r) * se_theta[2]]
    params = summary_frame(["first_value", "value", "retention"], [a, v, r], se, lo, hi, alpha=alpha)
    Q = returning(r)[0]
    fitted = pd.DataFrame({"period": labels, "first_time_customers": f, "returning": Q, "revenue": y, "fitted": a * f + v * Q})
    return CustomerValueResult(params=params, fitted=fitted, cov_type=f"HAC (Newey-West, {lags} lags)", alpha=alpha)


# ----------------------------------------------------------------- results
@dataclass(frozen=True)
class ScenarioResult(Result):
    """One strategy's projection.

    ``table``: one row per period ``t`` (``period`` label, ``forecast`` True
    after the fitted history) with, for each of new_users, users (cumulative),
    new_customers, customers (paying), revenue and cumulative_revenue, the
    value at the point estimates and the ``*_low``/``*_high`` percentile band
    over the parameter draws. ``draws``: the revenue per period of each draw.
    """

    name: str
    table: pd.DataFrame
    draws: np.ndarray = field(repr=False)
    alpha: float
    n_draws: int

    def summary(self) -> pd.DataFrame:
        last = self.table.iloc[-1]
        rows = [
            ("total_revenue", last["cumulative_revenue"], last["cumulative_revenue_low"], last["cumulative_revenue_high"]),
            ("final_revenue", last["revenue"], last["revenue_low"], last["revenue_high"]),
            ("final_customers", last["customers"], last["customers_low"], last["customers_high"]),
            ("final_users", last["users"], last["users_low"], last["users_high"]),
        ]
        out = pd.DataFrame(rows, columns=["parameter", "estimate", "ci_low", "ci_high"]).set_index("parameter")
        out.insert(1, "std_err", np.nan)
        return out

    def to_metrics(self, prefix: str | None = None) -> dict:
        prefix = prefix or f"scenarios.{_slug(self.name)}"
        out = {}
        for name, r in self.summary().iterrows():
            out[f"{prefix}.{name}"] = float(r["estimate"])
            out[f"{prefix}.{name}_ci_low"] = float(r["ci_low"])
            out[f"{prefix}.{name}_ci_high"] = float(r["ci_high"])
        return out


def _slug(value) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(value).strip().lower())


def _table(proj: dict, alpha: float) -> pd.DataFrame:
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    out = pd.DataFrame({"t": proj["t"], "period": proj["period"], "forecast": proj["t"] > proj["n_obs"]})
    for q in QUANTITIES:
        arr = proj[q]
        out[q] = arr[0]
        out[f"{q}_low"] = np.percentile(arr[1:], lo, axis=0)
        out[f"{q}_high"] = np.percentile(arr[1:], hi, axis=0)
    return out


def _check_run(horizon, draws, alpha):
    if not isinstance(horizon, (int, np.integer)) or horizon < 0:
        raise ParameterError(f"horizon must be a whole number of periods >= 0, got {horizon!r}")
    if not isinstance(draws, (int, np.integer)) or draws < 100:
        raise ParameterError(f"draws must be an integer >= 100 (bands need enough draws), got {draws!r}")
    if not 0 < alpha < 1:
        raise ParameterError(f"alpha must be between 0 and 1, got {alpha!r}")


def project_revenue(strategy: Strategy, *, horizon: int, draws: int = 2000, seed: int | None = 0, alpha: float = 0.05) -> ScenarioResult:
    """Project a strategy's users, customers and revenue per period.

    With a fitted Bass growth the projection covers the fitted history plus
    ``horizon`` periods; with Bass parameters it covers ``horizon`` periods from
    launch; with an explicit trajectory, its own length. Bands are the
    ``1 - alpha`` percentiles over ``draws`` parameter draws (see the module
    docstring); the point values use the estimates themselves.
    """
    if not isinstance(strategy, Strategy):
        raise ParameterError(f"project_revenue: give a Strategy, got {type(strategy).__name__}")
    _check_run(horizon, draws, alpha)
    if isinstance(strategy.adoption, dict) and horizon == 0:
        raise ParameterError("project_revenue: with Bass parameters as adoption give horizon > 0 periods from launch")
    D = _Draws(int(draws), np.random.default_rng(seed))
    proj = _project(strategy, int(horizon), D)
    return ScenarioResult(name=strategy.name, table=_table(proj, alpha), draws=proj["revenue"][1:], alpha=alpha, n_draws=int(draws))


def _crossings(diff: np.ndarray) -> list[int]:
    """Positions j where the sign of ``diff`` differs from the last nonzero sign before j."""
    out, last = [], 0
    for j, d in enumerate(diff):
        s = int(np.sign(d))
        if s == 0:
            continue
        if last and s != last:
            out.append(j)
        last = s
    return out


@dataclass(frozen=True)
class ComparisonResult(Result):
    """Two or more strategies projected on shared draws.

    ``scenarios``: each strategy's :class:`ScenarioResult`. ``difference``:
    per period, revenue of ``first`` minus ``second`` (point and band),
    ``prob_first_ahead`` (share of draws where the first earns more that
    period), and the same for cumulative revenue. ``crossovers`` and
    ``cumulative_crossovers``: the periods ``t`` where the leader changes
    (per-period and cumulative revenue, at the point estimates; empty if
    never). ``crossover_draws``: the first crossover period of per-period
    revenue in each draw (NaN where there is none).
    """

    scenarios: dict
    first: str
    second: str
    difference: pd.DataFrame
    crossovers: tuple
    cumulative_crossovers: tuple
    crossover_draws: np.ndarray = field(repr=False)
    cumulative_crossover_draws: np.ndarray = field(repr=False)
    alpha: float

    def _label(self, t) -> object:
        row = self.difference.loc[self.difference["t"] == t, "period"]
        return row.iloc[0] if len(row) else t

    def crossover_summary(self, cumulative: bool = False) -> dict:
        draws = self.cumulative_crossover_draws if cumulative else self.crossover_draws
        points = self.cumulative_crossovers if cumulative else self.crossovers
        ok = draws[np.isfinite(draws)]
        lo, hi = 100 * self.alpha / 2, 100 * (1 - self.alpha / 2)
        return {
            "t": points[0] if points else None,
            "period": self._label(points[0]) if points else None,
            "share_of_draws": float(len(ok) / len(draws)) if len(draws) else np.nan,
            "t_low": float(np.percentile(ok, lo)) if len(ok) else np.nan,
            "t_high": float(np.percentile(ok, hi)) if len(ok) else np.nan,
        }

    @property
    def leader_at_end(self) -> str:
        return self.first if self.difference["revenue_diff"].iloc[-1] > 0 else self.second

    @property
    def cumulative_leader_at_end(self) -> str:
        return self.first if self.difference["cumulative_diff"].iloc[-1] > 0 else self.second

    def summary(self) -> pd.DataFrame:
        rows = []
        for name, sc in self.scenarios.items():
            s = sc.summary()
            for p in ("total_revenue", "final_revenue"):
                rows.append((f"{name}.{p}", s.loc[p, "estimate"], np.nan, s.loc[p, "ci_low"], s.loc[p, "ci_high"]))
        for label, cum in (("crossover_t", False), ("cumulative_crossover_t", True)):
            c = self.crossover_summary(cumulative=cum)
            rows.append((label, np.nan if c["t"] is None else c["t"], np.nan, c["t_low"], c["t_high"]))
        return pd.DataFrame(rows, columns=["parameter", "estimate", "std_err", "ci_low", "ci_high"]).set_index("parameter")

    def to_metrics(self, prefix: str = "scenarios") -> dict:
        out = {}
        for sc in self.scenarios.values():
            out.update(sc.to_metrics(f"{prefix}.{_slug(sc.name)}"))
        for label, cum in (("crossover", False), ("cumulative_crossover", True)):
            c = self.crossover_summary(cumulative=cum)
            out[f"{prefix}.{label}_t"] = "none" if c["t"] is None else int(c["t"])
            if c["period"] is not None and isinstance(c["period"], pd.Timestamp):
                out[f"{prefix}.{label}_period"] = str(c["period"].date())
            out[f"{prefix}.{label}_share_of_draws"] = c["share_of_draws"]
        out[f"{prefix}.leader_at_end"] = self.leader_at_end
        out[f"{prefix}.cumulative_leader_at_end"] = self.cumulative_leader_at_end
        return out


def compare_strategies(*strategies: Strategy, horizon: int, draws: int = 2000, seed: int | None = 0, alpha: float = 0.05) -> ComparisonResult:
    """Project two or more strategies on shared parameter draws and find when,
    if ever, the first overtakes the second (or the reverse).

    All strategies must cover the same periods (the same fitted growth or
    trajectory length). Differences are ``strategies[0] - strategies[1]``.
    """
    if len(strategies) < 2 or not all(isinstance(s, Strategy) for s in strategies):
        raise ParameterError("compare_strategies: give at least two Strategy objects, e.g. compare_strategies(free, paid, horizon=52)")
    names = [s.name for s in strategies]
    if len(set(names)) != len(names):
        raise ParameterError(f"compare_strategies: strategy names must differ, got {names}")
    _check_run(horizon, draws, alpha)
    D = _Draws(int(draws), np.random.default_rng(seed))
    projections = [_project(s, int(horizon), D) for s in strategies]
    lengths = {len(p["t"]) for p in projections}
    if len(lengths) != 1:
        raise ModelError(
            f"compare_strategies: the strategies cover different numbers of periods ({sorted(lengths)}); "
            "give them the same growth fit or trajectories of the same length."
        )
    scenarios = {
        s.name: ScenarioResult(name=s.name, table=_table(p, alpha), draws=p["revenue"][1:], alpha=alpha, n_draws=int(draws))
        for s, p in zip(strategies, projections)
    }
    a, b = projections[0], projections[1]
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    d = a["revenue"] - b["revenue"]
    dc = a["cumulative_revenue"] - b["cumulative_revenue"]
    difference = pd.DataFrame(
        {
            "t": a["t"],
            "period": a["period"],
            "forecast": a["t"] > a["n_obs"],
            "revenue_diff": d[0],
            "revenue_diff_low": np.percentile(d[1:], lo, axis=0),
            "revenue_diff_high": np.percentile(d[1:], hi, axis=0),
            "prob_first_ahead": (d[1:] > 0).mean(axis=0),
            "cumulative_diff": dc[0],
            "cumulative_diff_low": np.percentile(dc[1:], lo, axis=0),
            "cumulative_diff_high": np.percentile(dc[1:], hi, axis=0),
            "prob_first_ahead_cumulative": (dc[1:] > 0).mean(axis=0),
        }
    )
    t = a["t"]

    def first_cross(rows):
        out = np.full(rows.shape[0], np.nan)
        for i, row in enumerate(rows):
            c = _crossings(row)
            if c:
                out[i] = t[c[0]]
        return out

    return ComparisonResult(
        scenarios=scenarios,
        first=names[0],
        second=names[1],
        difference=difference,
        crossovers=tuple(int(t[j]) for j in _crossings(d[0])),
        cumulative_crossovers=tuple(int(t[j]) for j in _crossings(dc[0])),
        crossover_draws=first_cross(d[1:]),
        cumulative_crossover_draws=first_cross(dc[1:]),
        alpha=alpha,
    )


__all__ = ["ComparisonResult", "CustomerValueResult", "ScenarioResult", "Strategy", "compare_strategies", "fit_customer_value", "project_revenue"]

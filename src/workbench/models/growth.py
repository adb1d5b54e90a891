"""Growth: the Bass diffusion model fitted to new users per period.

The Bass model says the share of the eventual market ``m`` that has adopted by
time ``t`` is

    F(t) = (1 - exp(-(p + q) t)) / (1 + (q / p) exp(-(p + q) t)),

with ``p`` the coefficient of innovation (adoption independent of others) and
``q`` the coefficient of imitation (adoption driven by those who already
adopted). Periods are indexed ``t = 1..T`` from the first period of the series,
so adoption starts at ``t = 0`` (the start of the first period). Two ways to
tie the curve to adoptions per period (``model=``):

* ``"interval"`` (default): the adoptions in period ``t`` are the curve's
  increment over the period, ``m (F(t) - F(t - 1))`` (Srinivasan and Mason
  1986) — the exact expected count when the data count adopters per period;
* ``"continuous"``: the adoptions in period ``t`` are the adoption rate at
  time ``t``, ``m f(t)`` with ``f = dF/dt = ((p+q)^2/p) e^{-(p+q)t} / (1 +
  (q/p) e^{-(p+q)t})^2`` — the textbook nonlinear-least-squares fit of the
  continuous curve to annual sales, which treats each period's sales as the
  rate at its end (it reproduces published fits made that way).

:func:`fit_bass` fits ``p, q, m`` by nonlinear least squares on the
per-period adoptions (``scipy.optimize.least_squares``), parametrised by
``log p, log q, log m`` so that the parameters stay positive. Standard errors
come from a heteroskedasticity-robust (HC3) sandwich around the Gauss-Newton
covariance by default, or from the classic ``s^2 (J'J)^-1`` with
``s^2 = RSS / (T - 3)`` (``cov_type="nonrobust"``: the covariance
``scipy.optimize.curve_fit`` reports); either is the same in the log and the
natural parametrisation at the optimum (delta method).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from workbench.errors import ModelError, ParameterError, WorkbenchWarning
from workbench.models.results import Result, summary_frame, summary_metrics

MIN_PERIODS = 6
PARAMS = ("p", "q", "m")


class BassIdentificationWarning(WorkbenchWarning):
    """The series has not passed its peak, so the market size is poorly identified."""


# ----------------------------------------------------------------- the curve
def bass_cumulative(t, p: float, q: float) -> np.ndarray:
    """Share of the market that has adopted by time ``t`` (F(t), F(0) = 0)."""
    t = np.asarray(t, dtype=float)
    e = np.exp(-(p + q) * t)
    return (1.0 - e) / (1.0 + (q / p) * e)


def bass_adoptions(t, p: float, q: float, m: float) -> np.ndarray:
    """Expected adoptions in period ``t`` (t = 1, 2, ...): m (F(t) - F(t - 1))."""
    t = np.asarray(t, dtype=float)
    return m * (bass_cumulative(t, p, q) - bass_cumulative(t - 1.0, p, q))


def bass_rate(t, p: float, q: float, m: float) -> np.ndarray:
    """The adoption rate at time ``t``: m f(t), f(t) = ((p+q)^2/p) e^{-(p+q)t} / (1 + (q/p) e^{-(p+q)t})^2."""
    t = np.asarray(t, dtype=float)
    e = np.exp(-(p + q) * t)
    return m * ((p + q) ** 2 / p) * e / (1.0 + (q / p) * e) ** 2


def _rate_log_grad(t, p: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """d log f / dp and d log f / dq at times ``t``."""
    t = np.asarray(t, dtype=float)
    s, r = p + q, q / p
    E = np.exp(-s * t)
    den = 1.0 + r * E
    d_p = 2.0 / s - 1.0 / p - t - 2.0 * (-(q / p**2) * E - r * t * E) / den
    d_q = 2.0 / s - t - 2.0 * (E / p - r * t * E) / den
    return d_p, d_q


#: per-period adoptions under each model (see the module docstring)
MODELS = {"interval": bass_adoptions, "continuous": bass_rate}


def _cumulative_grad(t, p: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """dF/dp and dF/dq at times ``t``."""
    t = np.asarray(t, dtype=float)
    r = q / p
    E = np.exp(-(p + q) * t)
    den = (1.0 + r * E) ** 2
    dF_dE = -(1.0 + r) / den
    dF_dr = -(1.0 - E) * E / den
    dE = -t * E
    return dF_dE * dE + dF_dr * (-q / p**2), dF_dE * dE + dF_dr / p


def bass_peak(p: float, q: float, m: float) -> tuple[float, float]:
    """Time of the peak ``t* = ln(q/p)/(p+q)`` (0 when q <= p: adoption only
    falls) and the adoption rate per period there, ``m (p+q)^2 / (4q)``
    (``m p`` when q <= p)."""
    if q <= p:
        return 0.0, m * p
    return float(np.log(q / p) / (p + q)), float(m * (p + q) ** 2 / (4.0 * q))


# ----------------------------------------------------------------- input
def _as_series(adoptions) -> pd.Series:
    if isinstance(adoptions, pd.DataFrame):
        if adoptions.shape[1] != 1:
            raise ParameterError(
                f"fit_bass: got a DataFrame with columns {list(adoptions.columns)}; pass one column, "
                "e.g. fit_bass(kpis.set_index('period')['new_users'])"
            )
        adoptions = adoptions.iloc[:, 0]
    if isinstance(adoptions, pd.Series):
        s = adoptions.copy()
    else:
        try:
            s = pd.Series(np.asarray(adoptions, dtype=float))
        except (TypeError, ValueError):
            raise ParameterError(
                f"fit_bass: adoptions must be numbers per period (a pandas Series or array), got {type(adoptions).__name__}"
            ) from None
    try:
        s = s.astype(float)
    except (TypeError, ValueError):
        raise ParameterError(f"fit_bass: adoptions must be numeric, got dtype {s.dtype}") from None
    return s


def _check_series(s: pd.Series, min_periods: int) -> None:
    if len(s) < min_periods:
        raise ModelError(
            f"fit_bass: the series is too short: {len(s)} period(s), the Bass fit needs at least {min_periods} "
            f"(3 parameters plus degrees of freedom for their standard errors). Use a finer period "
            f"(e.g. period='week' instead of 'month') or a longer observation window."
        )
    bad = ~np.isfinite(s.to_numpy())
    if bad.any():
        where = list(s.index[bad][:3])
        raise ModelError(
            f"fit_bass: {int(bad.sum())} missing or infinite adoption value(s), e.g. at {where}. "
            "Fill periods without adopters with 0 (e.g. series.reindex(full_range, fill_value=0)) and drop the rest."
        )
    neg = s.to_numpy() < 0
    if neg.any():
        raise ModelError(f"fit_bass: adoptions must be >= 0; {int(neg.sum())} negative value(s), e.g. at {list(s.index[neg][:3])}.")
    if s.sum() <= 0:
        raise ModelError("fit_bass: no adoptions at all in the series (every period is 0); there is nothing to fit.")
    busy = int((s.to_numpy() > 0).sum())
    if busy < 5:
        raise ModelError(
            f"fit_bass: only {busy} period(s) have any adopters; 3 parameters cannot be estimated from fewer than 5. "
            "Use a finer period (e.g. period='week' instead of 'month')."
        )
    if isinstance(s.index, pd.DatetimeIndex):
        if not s.index.is_monotonic_increasing or s.index.has_duplicates:
            raise ModelError("fit_bass: the period index must be increasing and unique; sort the series by period first.")
        if _freq(s.index) is None:
            raise ModelError(
                "fit_bass: the periods are not evenly spaced (missing periods?). The Bass model needs consecutive "
                "periods: reindex to the full range of periods with fill_value=0 before fitting."
            )


def _freq(index: pd.Index):
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 3:
        return None
    if index.freq is not None:
        return index.freq
    try:
        with warnings.catch_warnings():  # pandas 3 announces infer_freq will return an offset
            warnings.simplefilter("ignore", DeprecationWarning)
            code = pd.infer_freq(index)
    except (TypeError, ValueError):
        return None
    return pd.tseries.frequencies.to_offset(code) if code else None


# ----------------------------------------------------------------- fitting
def _start_values(y: np.ndarray) -> list[np.ndarray]:
    """Starting points: Bass's (1969) OLS regression of a_t on N_{t-1} and N_{t-1}^2, plus a small grid."""
    total = y.sum()
    starts = []
    n_prev = np.concatenate([[0.0], np.cumsum(y)[:-1]])
    X = np.column_stack([np.ones_like(n_prev), n_prev, n_prev**2])
    try:
        b0, b1, b2 = np.linalg.lstsq(X, y, rcond=None)[0]
        if b2 < 0:
            m = (-b1 - np.sqrt(b1**2 - 4 * b0 * b2)) / (2 * b2)
            p, q = b0 / m, -m * b2
            if m > 0 and p > 0 and q > 0 and np.isfinite([m, p, q]).all():
                starts.append(np.log([p, q, max(m, total)]))
    except (np.linalg.LinAlgError, FloatingPointError, ValueError):
        pass
    T = len(y)
    for mult in (1.2, 2.0, 5.0):
        for p in (0.003, 0.03):
            for q in (0.1, 0.5):
                # scale rates to the series length: a diffusion visible within T periods
                starts.append(np.log([p * 30 / T, q * 30 / T, mult * total]))
    return starts


@dataclass(frozen=True)
class BassResult(Result):
    """A fitted Bass model.

    ``params`` is the summary table (``p``, ``q``, ``m``, ``peak_time``,
    ``peak_adoptions``): estimates, standard errors (natural scale, from the
    least-squares covariance, see ``cov_type`` in :func:`fit_bass`, by the delta method) and ``1 - alpha`` intervals.
    The intervals for ``p, q, m`` are Wald intervals on the log scale,
    transformed back (so they are positive and asymmetric; ``interval="wald"``
    in :func:`fit_bass` gives symmetric natural-scale ones), with a t
    quantile on ``T - 3`` degrees of freedom. ``peak_time`` (in periods from the
    start of the first period) and ``peak_adoptions`` (adoptions per period at
    the peak) have delta-method Wald intervals.
    """

    params: pd.DataFrame
    cov_log: np.ndarray = field(repr=False)  # covariance of (log p, log q, log m)
    adoptions: pd.Series = field(repr=False)
    fitted: pd.Series = field(repr=False)
    residual_std: float
    df_resid: int
    alpha: float
    interval: str
    cov_type: str
    peak_period: object = None  # the period label holding the peak (dates only)
    freq: object = field(default=None, repr=False)
    nfev: int = 0
    model: str = "interval"

    def curve(self, t, p: float | None = None, q: float | None = None, m: float | None = None) -> np.ndarray:
        """Expected adoptions in periods ``t`` under this fit's ``model`` (``interval``:
        m (F(t) - F(t-1)); ``continuous``: m f(t)), at the fitted or the given parameters."""
        return MODELS[self.model](t, self.p if p is None else p, self.q if q is None else q, self.m if m is None else m)

    # plain names
    @property
    def p(self) -> float:
        return float(self.params.loc["p", "estimate"])

    @property
    def q(self) -> float:
        return float(self.params.loc["q", "estimate"])

    @property
    def m(self) -> float:
        return float(self.params.loc["m", "estimate"])

    @property
    def peak_time(self) -> float:
        return float(self.params.loc["peak_time", "estimate"])

    @property
    def peak_adoptions(self) -> float:
        return float(self.params.loc["peak_adoptions", "estimate"])

    @property
    def n_periods(self) -> int:
        return len(self.adoptions)

    @property
    def rmse(self) -> float:
        return float(np.sqrt(np.mean((self.adoptions.to_numpy() - self.fitted.to_numpy()) ** 2)))

    def summary(self) -> pd.DataFrame:
        return self.params.copy()

    def to_metrics(self, prefix: str = "bass") -> dict:
        out = summary_metrics(prefix, self.params)
        out[f"{prefix}.rmse"] = self.rmse
        out[f"{prefix}.n_periods"] = self.n_periods
        out[f"{prefix}.share_adopted"] = float(self.adoptions.sum() / self.m)
        if self.peak_period is not None:
            out[f"{prefix}.peak_period"] = str(pd.Timestamp(self.peak_period).date())
        return out

    # ---------------------------------------------------------- prediction
    def period_labels(self, t: np.ndarray) -> pd.Index:
        """Labels for periods ``t`` (1-based): the series' own labels, extended by its frequency."""
        t = np.asarray(t, dtype=int)
        if self.freq is not None:
            start = self.adoptions.index[0]
            return pd.DatetimeIndex([start + (k - 1) * self.freq for k in t], name=self.adoptions.index.name)
        return pd.Index(t, name="t")

    def draw_parameters(self, draws: int, rng: np.random.Generator) -> np.ndarray:
        """``draws`` x 3 array of (p, q, m) drawn from the multivariate normal
        approximation to the estimates' distribution on the log scale."""
        mean = np.log([self.p, self.q, self.m])
        return np.exp(rng.multivariate_normal(mean, self.cov_log, size=draws, method="svd"))

    def draw_adoptions(self, t, draws: int, rng: np.random.Generator) -> np.ndarray:
        """Expected adoptions in periods ``t`` under ``draws`` parameter draws (draws x len(t))."""
        theta = self.draw_parameters(draws, rng)
        t = np.asarray(t, dtype=float)
        return np.vstack([self.curve(t, *th) for th in theta])

    def forecast(self, *, horizon: int = 0, draws: int = 2000, seed: int | None = 0, alpha: float | None = None) -> pd.DataFrame:
        """Fitted and forecast adoptions for periods ``1..T+horizon``.

        The band ``ci_low, ci_high`` is the ``1 - alpha`` percentile band of the
        expected adoptions over ``draws`` draws of (p, q, m) from the
        multivariate normal approximation on the log scale (parameter
        uncertainty only); ``pi_low, pi_high`` adds the residual noise
        (normal with the residual standard deviation, floored at 0), a
        prediction band for the adoptions actually seen. ``cumulative*`` are
        cumulative adoptions (observed totals up to T, then the forecast added
        to the observed total).
        """
        if not isinstance(horizon, (int, np.integer)) or horizon < 0:
            raise ParameterError(f"forecast: horizon must be a whole number of periods >= 0, got {horizon!r}")
        if not isinstance(draws, (int, np.integer)) or draws < 100:
            raise ParameterError(f"forecast: draws must be an integer >= 100, got {draws!r}")
        alpha = self.alpha if alpha is None else float(alpha)
        T = self.n_periods
        t = np.arange(1, T + horizon + 1)
        rng = np.random.default_rng(seed)
        sims = self.draw_adoptions(t, draws, rng)
        noisy = np.clip(sims + rng.normal(0.0, self.residual_std, size=sims.shape), 0, None)
        lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
        point = self.curve(t)
        observed = np.full(len(t), np.nan)
        observed[:T] = self.adoptions.to_numpy()
        # cumulative: observed history, then forecast added to the observed total
        cum_obs = np.cumsum(self.adoptions.to_numpy())
        future = np.cumsum(np.where(t > T, sims, 0.0), axis=1) + np.where(t > T, cum_obs[-1], 0.0)
        cum_sims = np.where(t > T, future, np.concatenate([cum_obs, np.zeros(horizon)]))
        out = pd.DataFrame(
            {
                "t": t,
                "period": self.period_labels(t),
                "observed": observed,
                "adoptions": point,
                "ci_low": np.percentile(sims, lo, axis=0),
                "ci_high": np.percentile(sims, hi, axis=0),
                "pi_low": np.percentile(noisy, lo, axis=0),
                "pi_high": np.percentile(noisy, hi, axis=0),
                "cumulative": np.where(t > T, cum_obs[-1] + np.cumsum(np.where(t > T, point, 0.0)), np.concatenate([cum_obs, np.zeros(horizon)])),
                "cumulative_ci_low": np.percentile(cum_sims, lo, axis=0),
                "cumulative_ci_high": np.percentile(cum_sims, hi, axis=0),
                "forecast": t > T,
            }
        )
        return out


def fit_bass(
    adoptions,
    *,
    model: str = "interval",
    alpha: float = 0.05,
    cov_type: str = "HC3",
    interval: str = "log",
    min_periods: int = MIN_PERIODS,
    max_nfev: int = 2000,
) -> BassResult:
    """Fit the Bass diffusion model to adoptions (new users) per period.

    Parameters
    ----------
    adoptions
        New users per consecutive period, oldest first: a pandas Series (a
        DatetimeIndex of period starts gives calendar labels for the peak and
        the forecast) or an array. Periods are numbered ``t = 1..T`` from the
        first one. Periods without adopters must be present as 0.
    model
        ``"interval"`` (default): adoptions in period t are ``m (F(t) - F(t-1))``,
        the exact expected count per period; ``"continuous"``: they are the
        rate ``m f(t)`` at time t (the textbook NLS fit of the continuous curve
        to annual sales). See the module docstring and docs/growth.md.
    alpha
        ``1 - alpha`` is the confidence level of the intervals.
    cov_type
        Covariance of the estimates. ``"HC3"`` (default): the
        heteroskedasticity-robust sandwich ``(J'J)^-1 J' diag(e_t^2 / (1 -
        h_t)^2) J (J'J)^-1`` (J the Jacobian of the fitted adoptions, h_t the
        leverages), because adoption counts are noisier in busy periods
        (Poisson-like); measured 95% interval coverage 0.93-0.96 under normal,
        Poisson and multiplicative noise (400 series each,
        benchmarks/coverage_growth.py).
        ``"nonrobust"``: the classic ``s^2 (J'J)^-1`` with ``s^2 = RSS / (T -
        3)``, identical to ``scipy.optimize.curve_fit``'s ``pcov``; it
        under-covers (0.80-0.86 measured) when the noise grows with the level.
        ``"HC0"``, ``"HC1"``: the sandwich without / with a ``T / (T - 3)``
        correction.
    interval
        ``"log"`` (default): Wald intervals for p, q, m on the log scale,
        back-transformed (positive, asymmetric; better coverage for m when the
        series is short); ``"wald"``: symmetric natural-scale intervals.
    min_periods
        The shortest series accepted (at least 5: 3 parameters and 2 residual
        degrees of freedom).
    max_nfev
        Maximum function evaluations of each least-squares run.

    Raises
    ------
    ModelError
        The series is too short, has missing or negative values, is all zero,
        has gaps, or the fit does not converge to an interior optimum.
    """
    if model not in MODELS:
        raise ParameterError(f"fit_bass: model must be 'interval' or 'continuous', got {model!r}")
    if not 0 < alpha < 1:
        raise ParameterError(f"fit_bass: alpha must be between 0 and 1, got {alpha!r}")
    if cov_type not in ("HC3", "HC1", "HC0", "nonrobust"):
        raise ParameterError(f"fit_bass: cov_type must be 'HC3', 'HC1', 'HC0' or 'nonrobust', got {cov_type!r}")
    if interval not in ("log", "wald"):
        raise ParameterError(f"fit_bass: interval must be 'log' or 'wald', got {interval!r}")
    if not isinstance(min_periods, (int, np.integer)) or min_periods < 5:
        raise ParameterError(f"fit_bass: min_periods must be an integer >= 5, got {min_periods!r}")
    s = _as_series(adoptions)
    _check_series(s, min_periods)
    y = s.to_numpy()
    T = len(y)
    t = np.arange(1, T + 1, dtype=float)
    total = float(y.sum())
    scale = float(np.max(y))

    expected = MODELS[model]

    def residuals(theta):
        p, q, m = np.exp(theta)
        return (expected(t, p, q, m) - y) / scale

    def jacobian(theta):
        p, q, m = np.exp(theta)
        a = expected(t, p, q, m)
        if model == "continuous":
            lp, lq = _rate_log_grad(t, p, q)
            return np.column_stack([a * p * lp, a * q * lq, a]) / scale
        gp1, gq1 = _cumulative_grad(t, p, q)
        gp0, gq0 = _cumulative_grad(t - 1.0, p, q)
        return np.column_stack([m * p * (gp1 - gp0), m * q * (gq1 - gq0), a]) / scale

    # bounds on the log scale: rates in (1e-8, 1] per period for p, (1e-8, 20] for q,
    # market size between half the adoptions seen and 100 times them (a series
    # that has reached less than 1% of its market says nothing about m)
    lower = np.log([1e-8, 1e-8, 0.5 * total])
    upper = np.log([1.0, 20.0, 100.0 * total])
    best = None
    for x0 in _start_values(y):
        x0 = np.clip(x0, lower + 1e-6, upper - 1e-6)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            try:
                fit = optimize.least_squares(
                    residuals, x0, jac=jacobian, bounds=(lower, upper), method="trf", x_scale=1.0, max_nfev=max_nfev, xtol=1e-12, ftol=1e-12, gtol=1e-12
                )
            except (ValueError, FloatingPointError):
                continue
        if fit.status <= 0 or not np.isfinite(fit.cost):
            continue
        if best is None or fit.cost < best.cost - 1e-12 * max(1.0, best.cost):
            best = fit
    if best is None:
        raise ModelError(
            f"fit_bass: the least-squares fit did not converge from any starting point (max_nfev={max_nfev}). "
            "Check that the series is new adopters per period (not cumulative users), or raise max_nfev."
        )
    theta = best.x
    at_bound = np.isclose(theta, lower, atol=1e-4) | np.isclose(theta, upper, atol=1e-4)
    if at_bound.any():
        names = [PARAMS[i] for i in np.flatnonzero(at_bound)]
        hint = (
            " The market size ran to its bound (100 times the adoptions seen): the series shows no slowing down "
            "(growing or flat), so m is not identified; use a longer series that includes the peak."
            if at_bound[2]
            else " Check that the series is new adopters per period (not cumulative users)."
        )
        raise ModelError(f"fit_bass: the fit did not converge to an interior optimum ({', '.join(names)} at the edge of the allowed range).{hint}")

    J = jacobian(theta) * scale  # Jacobian of the expected adoptions wrt log-parameters
    e = -best.fun * scale  # residuals y - fitted
    rss = float(np.sum(e**2))
    df_resid = T - 3
    s2 = rss / df_resid
    try:
        bread = np.linalg.inv(J.T @ J)
    except np.linalg.LinAlgError:
        raise ModelError("fit_bass: the fit converged but its parameters are not identified (singular Jacobian); use a longer series.") from None
    if cov_type == "nonrobust":
        cov_log = s2 * bread
    else:
        leverage = np.clip(np.einsum("ij,jk,ik->i", J, bread, J), 0.0, 0.999)
        u = {"HC0": e, "HC1": e * np.sqrt(T / df_resid), "HC3": e / (1.0 - leverage)}[cov_type]
        cov_log = bread @ (J.T * u**2) @ J @ bread
    if not np.all(np.isfinite(cov_log)) or np.any(np.diag(cov_log) <= 0):
        raise ModelError("fit_bass: the fit converged but the covariance of the estimates is not finite; use a longer series.")

    p, q, m = np.exp(theta)
    se_log = np.sqrt(np.diag(cov_log))
    est = np.array([p, q, m])
    se = est * se_log  # delta method
    tq = stats.t.ppf(1 - alpha / 2, df_resid)
    if interval == "log":
        lo, hi = np.exp(theta - tq * se_log), np.exp(theta + tq * se_log)
    else:
        lo, hi = est - tq * se, est + tq * se

    # peak time and height: delta method on the log parameters
    def peak_of(th):
        return np.array(bass_peak(*np.exp(th)))

    pk = peak_of(theta)
    grad = np.empty((2, 3))
    for j in range(3):
        h = 1e-6 * max(1.0, abs(theta[j]))
        e = np.zeros(3)
        e[j] = h
        grad[:, j] = (peak_of(theta + e) - peak_of(theta - e)) / (2 * h)
    pk_se = np.sqrt(np.maximum(np.diag(grad @ cov_log @ grad.T), 0.0))

    names = ["p", "q", "m", "peak_time", "peak_adoptions"]
    table = summary_frame(
        names,
        np.concatenate([est, pk]),
        np.concatenate([se, pk_se]),
        np.concatenate([lo, pk - tq * pk_se]),
        np.concatenate([hi, pk + tq * pk_se]),
        alpha=alpha,
    )

    fitted = pd.Series(expected(t, p, q, m), index=s.index, name="fitted")
    freq = _freq(s.index)
    peak_period = None
    if freq is not None:
        peak_period = s.index[0] + int(np.floor(pk[0])) * freq
    if pk[0] > T:
        warnings.warn(
            f"fit_bass: the estimated peak (period {pk[0]:.1f}) lies after the last observed period ({T}); "
            "the market size m and the peak are extrapolations with wide intervals.",
            BassIdentificationWarning,
            stacklevel=2,
        )
    return BassResult(
        params=table,
        cov_log=cov_log,
        adoptions=s.rename("adoptions"),
        fitted=fitted,
        residual_std=float(np.sqrt(s2)),
        df_resid=df_resid,
        alpha=alpha,
        interval=interval,
        cov_type=cov_type,
        peak_period=peak_period,
        freq=freq,
        nfev=int(best.nfev),
        model=model,
    )


__all__ = ["MODELS", "BassIdentificationWarning", "BassResult", "bass_adoptions", "bass_cumulative", "bass_peak", "bass_rate", "fit_bass"]

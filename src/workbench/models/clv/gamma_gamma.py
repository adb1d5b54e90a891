"""Gamma-Gamma spend per transaction (Fader, Hardie and Lee 2005, "RFM and
CLV"; Fader and Hardie's note "The Gamma-Gamma model of monetary value",
2013): each transaction's value is ``Gamma(p, rate nu)`` with ``nu ~ Gamma(q,
rate gamma)``; fitted on repeat customers' mean spend per repeat transaction.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import special

from workbench.errors import DataError, ModelError, WorkbenchWarning
from workbench.models.clv import intervals
from workbench.models.clv.rfm import as_frame, count_weights, numeric_column, violation
from workbench.models.mle import Objective, check_level, maximize, on_log_scale, params_table, z_value
from workbench.models.results import Result, summary_metrics


class CLVWarning(WorkbenchWarning):
    """A CLV prediction is valid but deserves a second look."""


def gamma_gamma_loglik(params, x, mbar, *, gradient: bool = False):
    """Gamma-Gamma log-likelihood of each repeat customer's mean spend ``mbar`` over ``x`` transactions.

    ``f(mbar | p, q, gamma, x) = Gamma(px+q) / (Gamma(px) Gamma(q)) * gamma^q mbar^(px-1) x^(px) / (gamma + mbar x)^(px+q)``."""
    p, q, g = (float(v) for v in params)
    x = np.asarray(x, dtype=float)
    m = np.asarray(mbar, dtype=float)
    px = p * x
    lgm = np.log(g + m * x)
    ll = special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * math.log(g) + (px - 1.0) * np.log(m) + px * np.log(x) - (px + q) * lgm
    if not gradient:
        return ll
    psi_pq = special.digamma(px + q)
    d_p = x * (psi_pq - special.digamma(px) + np.log(m) + np.log(x) - lgm)
    d_q = psi_pq - special.digamma(q) + math.log(g) - lgm
    d_g = q / g - (px + q) / (g + m * x)
    return ll, np.column_stack([d_p, d_q, d_g])


@dataclass(frozen=True, eq=False)
class GammaGammaResult(Result):
    """A fitted Gamma-Gamma spend model: transaction values ``~ Gamma(p, rate nu)``, ``nu ~ Gamma(q, rate gamma)``.

    ``mean_spend`` is the population mean spend per transaction ``p gamma / (q - 1)`` (infinite when
    ``q <= 1``); ``frequency_spend_corr`` is the (weighted) correlation between repeat customers'
    frequency and mean spend, which the model assumes to be near 0. ``theta``/``cov``: the
    log-parameters and their covariance."""

    params: pd.DataFrame
    theta: np.ndarray = field(repr=False)
    cov: np.ndarray = field(repr=False)
    loglik: float
    customers: int  # repeat customers the fit used
    transactions: float
    frequency_spend_corr: float
    converged: bool
    iterations: int
    level: float = 0.95

    NAMES: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")
    PREFIX: ClassVar[str] = "clv.gamma_gamma"

    @property
    def p(self) -> float:
        return float(self.params.loc["p", "estimate"])

    @property
    def q(self) -> float:
        return float(self.params.loc["q", "estimate"])

    @property
    def gamma(self) -> float:
        return float(self.params.loc["gamma", "estimate"])

    @property
    def mean_spend(self) -> float:
        return self.p * self.gamma / (self.q - 1.0) if self.q > 1 else float("inf")

    def summary(self) -> pd.DataFrame:
        return self.params.copy()

    def to_metrics(self, prefix: str | None = None) -> dict:
        prefix = prefix or self.PREFIX
        out = summary_metrics(prefix, self.params)
        out[f"{prefix}.loglik"] = self.loglik
        out[f"{prefix}.customers"] = self.customers
        out[f"{prefix}.mean_spend"] = self.mean_spend
        out[f"{prefix}.frequency_spend_corr"] = self.frequency_spend_corr
        return out

    def _repr_html_(self) -> str:
        head = (
            f"<strong>GammaGammaResult</strong> — {self.customers:,} repeat customers, log-likelihood {self.loglik:,.1f}, "
            f"population mean spend {self.mean_spend:,.2f}, corr(frequency, spend) {self.frequency_spend_corr:.2f}"
        )
        return head + self.summary().to_html(float_format=lambda v: f"{v:.4g}")

    def expected_spend(self, summary, *, frequency: str = "frequency", monetary_value: str = "monetary_value") -> np.ndarray:
        """Expected spend per transaction of each customer (row): ``p (gamma + x mbar) / (p x + q - 1)``,
        a weighted mean of the population mean and the customer's own mean; customers without repeat
        purchases get the population mean."""
        df = as_frame(summary, "expected_spend")
        x = numeric_column(df, frequency, "expected_spend", "frequency column")
        m = numeric_column(df, monetary_value, "expected_spend", "monetary_value column: mean spend per repeat purchase")
        return self.spend_at(self.theta, x, m)

    def spend_at(self, theta, x, m, *, warn: bool = True) -> np.ndarray:
        """Expected spend per transaction at log-parameters ``theta`` (for intervals)."""
        p, q, g = np.exp(theta)
        x = np.asarray(x, dtype=float)
        m = np.where(x > 0, np.asarray(m, dtype=float), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = p * (g + x * m) / (p * x + q - 1.0)
        if q <= 1 and np.any(x == 0):
            if warn:
                warnings.warn(
                    "Gamma-Gamma: q <= 1, so the population mean spend is infinite; customers without repeat purchases get NaN.", CLVWarning, stacklevel=3
                )
            out = np.where(x == 0, np.nan, out)
        return out

    def predict(self, summary, *, level: float | None = None, frequency: str = "frequency", monetary_value: str = "monetary_value") -> pd.DataFrame:
        """Per row: ``expected_spend`` with a delta-method interval on the log scale
        (``expected_spend_ci_low``, ``expected_spend_ci_high``)."""
        func = "GammaGammaResult.predict"
        z = z_value(check_level(self.level if level is None else level, func))
        df = as_frame(summary, func)
        x = numeric_column(df, frequency, func, "frequency column")
        m = numeric_column(df, monetary_value, func, "monetary_value column: mean spend per repeat purchase")
        v, J = intervals.jacobian(lambda th: self.spend_at(th, x, m, warn=False), self.theta)
        lo, hi = intervals.log_interval(v, intervals.log_variance(v, J, self.cov), z)
        return pd.DataFrame({"expected_spend": v, "expected_spend_ci_low": lo, "expected_spend_ci_high": hi}, index=df.index)


def fit_gamma_gamma(
    summary, *, frequency: str = "frequency", monetary_value: str = "monetary_value", weights: str | None = None, level: float = 0.95
) -> GammaGammaResult:
    """Fit the Gamma-Gamma spend model on repeat customers' mean spend per repeat purchase.

    Only rows with ``frequency > 0`` are used (the model describes the values of
    repeat transactions; Fader, Hardie and Lee 2005 use the calibration-period
    repeat purchases). ``monetary_value`` must then be > 0.

    Raises
    ------
    DataError
        Negative or missing spend for repeat customers.
    ModelError
        No repeat customers, or repeat customers with zero spend (the Gamma
        model has no mass at 0: drop them, e.g. ``summary[summary.monetary_value > 0]``,
        and say so in the report).
    """
    func = "fit_gamma_gamma"
    level = check_level(level, func)
    df = as_frame(summary, func)
    x = numeric_column(df, frequency, func, "frequency column: repeat purchases")
    m = numeric_column(df, monetary_value, func, "monetary_value column: mean spend per repeat purchase")
    n = count_weights(df, weights, func)
    rep = np.isfinite(x) & (x > 0) & (n > 0)
    cols = [c for c in (frequency, monetary_value) if c in df.columns]
    checks = [
        (np.isfinite(x) & ((x < 0) | (x != np.round(x))), frequency, "frequency must be a whole number >= 0"),
        (rep & ~np.isfinite(m), monetary_value, "missing spend for a customer with repeat purchases"),
        (rep & np.isfinite(m) & (m < 0), monetary_value, "spend must be >= 0 (refunds must be netted out before modelling)"),
    ]
    violations = [v for mask, col, rule in checks if (v := violation(mask, df, col, rule, cols)) is not None]
    if violations:
        raise DataError(violations)
    if not rep.any():
        raise ModelError(
            f"{func}: no repeat customers (frequency > 0) in the summary, so there is no repeat spend to model. "
            "Use a later calibration_end or a dataset with repeat purchases."
        )
    zero = rep & (m == 0)
    if zero.any():
        raise ModelError(
            f"{func}: {int(n[zero].sum()):,} of {int(n[rep].sum()):,} repeat customers have mean spend 0 "
            f"(column {monetary_value!r}); the Gamma-Gamma model needs positive spend. Drop them "
            f"(e.g. summary[summary.{monetary_value} > 0]) and report how many were dropped, or model free purchases separately."
        )
    x, m, n = x[rep], m[rep], n[rep]
    if n.sum() < 10:
        raise ModelError(f"{func}: only {n.sum():.0f} repeat customer(s); the 3-parameter spend model needs many more (hundreds).")
    mean_m = float(np.average(m, weights=n))
    var_m = float(np.average((m - mean_m) ** 2, weights=n))
    cov_xm = float(np.average((x - np.average(x, weights=n)) * (m - mean_m), weights=n))
    var_x = float(np.average((x - np.average(x, weights=n)) ** 2, weights=n))
    corr = cov_xm / math.sqrt(var_x * var_m) if var_x > 0 and var_m > 0 else float("nan")
    obj = Objective(lambda th: on_log_scale(lambda pr: gamma_gamma_loglik(pr, x, m, gradient=True), th), n, gradient=True)
    q0, p0 = 3.0, 2.0
    fit = maximize(obj, np.log([p0, q0, mean_m * (q0 - 1.0) / p0]), GammaGammaResult.NAMES, func)
    return GammaGammaResult(
        params=params_table(GammaGammaResult.NAMES, fit.theta, fit.cov, level),
        theta=fit.theta,
        cov=fit.cov,
        loglik=fit.loglik,
        customers=int(round(n.sum())),
        transactions=float((n * x).sum()),
        frequency_spend_corr=corr,
        converged=fit.converged,
        iterations=fit.iterations,
        level=level,
    )

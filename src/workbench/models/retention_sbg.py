"""Subscription retention: the shifted-beta-geometric (sBG) model.

Fader and Hardie (2007), "How to project customer retention", Journal of
Interactive Marketing 21(1). In a contractual setting each customer renews at
the end of every period until she cancels; her churn probability per period is
``theta ~ Beta(alpha, beta)`` across customers, constant over time for her.
Retention among survivors rises over time because the customers most likely to
churn leave first. With ``T`` the period in which a customer cancels:

* ``P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)``, t = 1, 2, ...
* survival ``S(t) = B(alpha, beta + t) / B(alpha, beta)`` (still a customer after t renewal opportunities)
* retention rate ``r_t = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)``

:func:`fit_sbg` fits ``alpha, beta`` by maximum likelihood on survivors per
period for one or more cohorts: a cohort of ``n_0`` customers observed for
``m`` periods with ``n_t`` still active at the end of period ``t`` contributes
``sum_t (n_{t-1} - n_t) log P(T = t) + n_m log S(m)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import special

from workbench.errors import DataError, ModelError, ParameterError, Violation
from workbench.models.mle import Objective, check_level, maximize, on_log_scale, params_table
from workbench.models.results import Result, summary_metrics


def sbg_survival(t, alpha: float, beta: float) -> np.ndarray:
    """``S(t) = B(alpha, beta + t) / B(alpha, beta)``."""
    t = np.asarray(t, dtype=float)
    return np.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta))


def sbg_churn_probability(t, alpha: float, beta: float) -> np.ndarray:
    """``P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)`` for t >= 1."""
    t = np.asarray(t, dtype=float)
    return np.exp(special.betaln(alpha + 1.0, beta + t - 1.0) - special.betaln(alpha, beta))


def _cohorts(survivors, func) -> list[np.ndarray]:
    """Survivor counts per cohort: a sequence (one cohort), a list of sequences, a dict, or a
    DataFrame with columns ``cohort``, ``period``, ``survivors`` (period 0 = the cohort's size)."""
    if isinstance(survivors, pd.DataFrame):
        need = {"period", "survivors"}
        if not need <= set(survivors.columns):
            raise ParameterError(
                f"{func}: a DataFrame of survivors needs columns period and survivors (and "
                f"cohort for several cohorts); got {', '.join(map(str, survivors.columns))}"
            )
        df = survivors if "cohort" in survivors.columns else survivors.assign(cohort=0)
        out = []
        for key, g in df.sort_values(["cohort", "period"]).groupby("cohort", sort=True):
            periods = g["period"].to_numpy()
            if periods[0] != 0 or np.any(np.diff(periods) != 1):
                raise DataError(
                    [
                        Violation(
                            "survivors",
                            "period",
                            f"cohort {key}: periods must run 0, 1, 2, ... without gaps (period 0 holds the cohort size)",
                            len(g),
                            [list(periods[:6])],
                        )
                    ]
                )
            out.append(g["survivors"].to_numpy(dtype=float))
        return out
    if isinstance(survivors, dict):
        return [np.asarray(v, dtype=float) for v in survivors.values()]
    arr = survivors
    if isinstance(arr, (list, tuple)) and arr and np.ndim(arr[0]) == 1:
        return [np.asarray(v, dtype=float) for v in arr]
    try:
        return [np.asarray(arr, dtype=float).ravel()]
    except (TypeError, ValueError):
        raise ParameterError(
            f"{func}: survivors must be counts per period (a sequence, a list of sequences, or a DataFrame), got {type(survivors).__name__}"
        ) from None


def _check(cohorts: list[np.ndarray], func) -> None:
    if not cohorts:
        raise ModelError(f"{func}: there are no subscription cohorts (no paying subscriber in the data); the sBG model needs at least one.")
    problems = []
    for i, c in enumerate(cohorts):
        if len(c) < 2:
            problems.append(Violation("survivors", f"cohort {i}", "needs the cohort size and at least one later period", len(c)))
            continue
        if not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c != np.round(c)):
            problems.append(Violation("survivors", f"cohort {i}", "counts must be whole numbers >= 0", len(c), [list(c[:6])]))
        elif np.any(np.diff(c) > 0):
            problems.append(
                Violation(
                    "survivors",
                    f"cohort {i}",
                    "survivors cannot increase from one period to the next (count customers still subscribed, not active ones)",
                    len(c),
                    [list(c[:8])],
                )
            )
        elif c[0] <= 0:
            problems.append(Violation("survivors", f"cohort {i}", "the cohort size (period 0) must be > 0", 1))
    if problems:
        raise DataError(problems)
    if max(len(c) for c in cohorts) < 3:
        raise ModelError(f"{func}: the sBG model has 2 parameters and needs at least 2 periods after acquisition in some cohort; give a longer history.")
    if all(c[-1] == c[0] for c in cohorts):
        raise ModelError(f"{func}: nobody churned in any cohort, so churn cannot be estimated; wait for more periods.")
    if all(c[-1] == 0 for c in cohorts) and all(c[1] == 0 for c in cohorts):
        raise ModelError(f"{func}: everybody churned after the first period in every cohort; there is no retention to model.")


def sbg_loglik(params, lost: np.ndarray, periods: np.ndarray, alive: np.ndarray, last: np.ndarray, *, gradient: bool = False):
    """Log-likelihood terms: ``lost[k]`` customers churning in period ``periods[k]``, and ``alive[j]``
    customers still there after ``last[j]`` periods (right-censored)."""
    a, b = (float(v) for v in params)
    base = special.betaln(a, b)
    ll = np.concatenate([lost * (special.betaln(a + 1.0, b + periods - 1.0) - base), alive * (special.betaln(a, b + last) - base)])
    if not gradient:
        return ll
    ps_ab = special.digamma(a + b)
    d_base_a = special.digamma(a) - ps_ab
    d_base_b = special.digamma(b) - ps_ab
    s1 = special.digamma(a + b + periods)
    d1a = lost[:, None] * np.column_stack([special.digamma(a + 1.0) - s1 - d_base_a, special.digamma(b + periods - 1.0) - s1 - d_base_b])
    s2 = special.digamma(a + b + last)
    d2a = alive[:, None] * np.column_stack([special.digamma(a) - s2 - d_base_a, special.digamma(b + last) - s2 - d_base_b])
    return ll, np.vstack([d1a, d2a])


@dataclass(frozen=True, eq=False)
class SBGResult(Result):
    """A fitted sBG retention model (``alpha``, ``beta`` of the Beta churn distribution).

    It describes subscription cohorts: ``customers`` counts the subscribers in
    the cohorts fitted (period 0 of each), who end their subscription by
    cancelling (contractual churn). Its survival ``S(t)`` never rises."""

    params: pd.DataFrame
    cov_log: np.ndarray = field(repr=False)
    loglik: float
    cohorts: tuple = field(repr=False)  # survivors per cohort, as fitted
    customers: int
    converged: bool
    iterations: int
    level: float = 0.95

    NAMES: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    PREFIX: ClassVar[str] = "clv.sbg"

    @property
    def alpha(self) -> float:
        return float(self.params.loc["alpha", "estimate"])

    @property
    def beta(self) -> float:
        return float(self.params.loc["beta", "estimate"])

    @property
    def mean_churn(self) -> float:
        """Mean churn probability per period at acquisition, ``alpha / (alpha + beta)``."""
        return self.alpha / (self.alpha + self.beta)

    def summary(self) -> pd.DataFrame:
        return self.params.copy()

    def to_metrics(self, prefix: str | None = None) -> dict:
        prefix = prefix or self.PREFIX
        out = summary_metrics(prefix, self.params)
        out[f"{prefix}.loglik"] = self.loglik
        out[f"{prefix}.customers"] = self.customers
        out[f"{prefix}.mean_churn"] = self.mean_churn
        return out

    def _repr_html_(self) -> str:
        head = (
            f"<strong>SBGResult</strong> — {len(self.cohorts)} subscription cohort(s), "
            f"{self.customers:,} subscribers (churn = cancel), log-likelihood {self.loglik:,.2f}"
        )
        return head + self.summary().to_html(float_format=lambda v: f"{v:.4g}")

    def survival(self, t) -> np.ndarray:
        """Share of a new cohort still subscribed after ``t`` periods."""
        return sbg_survival(t, self.alpha, self.beta)

    def retention_rate(self, t) -> np.ndarray:
        """Share of those subscribed in period ``t - 1`` who renew for period ``t`` (t >= 1)."""
        t = np.asarray(t, dtype=float)
        return (self.beta + t - 1.0) / (self.alpha + self.beta + t - 1.0)

    def projection(self, *, periods: int) -> pd.DataFrame:
        """Fitted/projected survival and retention for periods ``0..periods``, with the observed ones
        where there are data. Cohorts are observed for different lengths (older ones longer), so
        the observed survival is pooled as a product of period-to-period retention, each from the
        cohorts observed in both periods (as Kaplan-Meier does): it never rises, whereas the share
        of survivors among the cohorts observed at each period would jump whenever a cohort drops
        out of the pool."""
        if int(periods) < 1:
            raise ParameterError("projection: periods must be >= 1")
        t = np.arange(0, int(periods) + 1)
        obs_ret = np.full(len(t), np.nan)
        for k in t[1:]:
            at = [c for c in self.cohorts if len(c) > k and c[k - 1] > 0]
            if at:
                obs_ret[k] = sum(c[k] for c in at) / sum(c[k - 1] for c in at)
        observed = np.concatenate([[1.0], np.cumprod(obs_ret[1:])])  # NaN from the first period without data on
        ret = np.concatenate([[np.nan], self.retention_rate(t[1:])])
        return pd.DataFrame({"period": t, "survival": self.survival(t), "observed_survival": observed, "retention": ret, "observed_retention": obs_ret})

    def residual_lifetime(self, *, periods_survived: int = 0, discount_rate: float = 0.0) -> float:
        """Expected (discounted) number of further renewals of a customer who has renewed
        ``periods_survived`` times (0 = just acquired), each paid at the start of its period,
        the first one undiscounted:

        ``DERL = sum_{j>=1} S(n + j) / S(n) (1 + d)^-(j-1) = (beta+n)/(alpha+beta+n) 2F1(1, beta+n+1; alpha+beta+n+1; 1/(1+d))``

        (Fader and Hardie 2010, "Customer-base valuation in a contractual setting"), with ``d`` the
        discount rate per period. Undiscounted (``d = 0``) it is ``(beta + n) / (alpha - 1)``,
        infinite when ``alpha <= 1`` (heavy-tailed lifetimes)."""
        n = int(periods_survived)
        d = float(discount_rate)
        if n < 0 or not np.isfinite(d) or d < 0:
            raise ParameterError("residual_lifetime: periods_survived must be >= 0 and discount_rate >= 0 (per period)")
        a, b = self.alpha, self.beta
        if d == 0:
            return (b + n) / (a - 1.0) if a > 1 else math.inf
        return float((b + n) / (a + b + n) * special.hyp2f1(1.0, b + n + 1.0, a + b + n + 1.0, 1.0 / (1.0 + d)))


def fit_sbg(survivors, *, level: float = 0.95) -> SBGResult:
    """Fit the shifted-beta-geometric model on survivors per period.

    Parameters
    ----------
    survivors
        Subscribers still subscribed per period, e.g. from
        ``workbench.tables.subscription_survivors`` (subscription cohorts,
        churn = first cancel). For one cohort, counts ``[n_0, n_1, ..., n_m]``:
        the cohort's size, then how many are still subscribed after each period. For several cohorts,
        a list (or dict) of such sequences, or a DataFrame with columns
        ``cohort``, ``period`` (0, 1, ...), ``survivors``.
    level
        Confidence level of the (log-scale Wald) intervals.

    Raises
    ------
    DataError
        Counts that are negative, fractional or increasing.
    ModelError
        Too short a history, or nobody (or everybody) churned.
    """
    func = "fit_sbg"
    level = check_level(level, func)
    cohorts = _cohorts(survivors, func)
    _check(cohorts, func)
    lost, periods, alive, last = [], [], [], []
    for c in cohorts:
        lost.append(-np.diff(c))
        periods.append(np.arange(1, len(c), dtype=float))
        alive.append(c[-1])
        last.append(len(c) - 1.0)
    lost, periods = np.concatenate(lost), np.concatenate(periods)
    alive, last = np.asarray(alive, dtype=float), np.asarray(last, dtype=float)
    total = float(sum(c[0] for c in cohorts))
    # terms are already multiplied by their counts; weights normalise to a per-customer mean
    ones = np.ones(len(lost) + len(alive))

    def loglik(theta):
        ll, g = on_log_scale(lambda p: sbg_loglik(p, lost, periods, alive, last, gradient=True), theta)
        return ll * len(ones) / total, g * len(ones) / total

    fit = maximize(Objective(loglik, ones, gradient=True, total=total), np.log([1.0, 1.0]), SBGResult.NAMES, func)
    return SBGResult(
        params=params_table(SBGResult.NAMES, fit.theta, fit.cov, level),
        cov_log=fit.cov,
        loglik=fit.loglik,
        cohorts=tuple(cohorts),
        customers=int(round(total)),
        converged=fit.converged,
        iterations=fit.iterations,
        level=level,
    )

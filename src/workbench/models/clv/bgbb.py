"""BG/BB, the beta-geometric/beta-binomial model of repeat behaviour at
discrete opportunities (Fader, Hardie and Shang 2010, "Customer-base analysis
in a discrete-time noncontractual setting", Marketing Science 29(6)).

At each of ``n`` transaction opportunities after acquisition (a yearly
donation drive, a weekly event) a customer who is still alive transacts with
probability ``p ~ Beta(alpha, beta)``; before each opportunity she dies with
probability ``theta ~ Beta(gamma, delta)``. Her history is ``x`` transactions
(``frequency``), the opportunity of the last one ``t_x`` (``recency``, 0 if
none) and ``n`` (``periods``), which must be the same for every customer (one
acquisition cohort; :func:`workbench.tables.repeat_opportunities` builds the
patterns). With ``B`` the beta function:

* ``L = B(alpha+x, beta+n-x)/B(alpha,beta) B(gamma, delta+n)/B(gamma,delta)
  + sum_{i=0}^{n-t_x-1} B(alpha+x, beta+t_x-x+i)/B(alpha,beta) B(gamma+1, delta+t_x+i)/B(gamma,delta)`` (eq. 5);
* ``P(alive at opportunity n+m) = B(alpha+x, beta+n-x)/B(alpha,beta) B(gamma, delta+n+m)/B(gamma,delta) / L``;
* expected transactions in the next ``m`` opportunities:
  ``sum_{j=1}^{m} B(alpha+x+1, beta+n-x)/B(alpha,beta) B(gamma, delta+n+j)/B(gamma,delta) / L``,
  the finite sum behind the closed form of eq. 13 (which divides by ``gamma - 1``).

Fitted like the other CLV models (maximum likelihood over log-parameters on
the weighted patterns; standard errors from the observed information;
prediction intervals by the delta method).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import special

from workbench.errors import DataError, ModelError, ParameterError
from workbench.models.clv import intervals
from workbench.models.clv.rfm import as_frame, count_weights, numeric_column, violation
from workbench.models.mle import Objective, check_level, maximize, params_table, z_value
from workbench.models.results import Result, summary_metrics


def bgbb_loglik(params, x, tx, n) -> np.ndarray:
    """BG/BB log-likelihood of each (x, t_x, n) row (Fader, Hardie and Shang 2010, eq. 5), in log space."""
    alpha, beta, gamma, delta = (float(v) for v in params)
    x, tx, n = (np.asarray(v, dtype=float) for v in (x, tx, n))
    base = special.betaln(alpha, beta) + special.betaln(gamma, delta)
    first = special.betaln(alpha + x, beta + n - x) + special.betaln(gamma, delta + n) - base
    width = int(np.max(n - tx)) if len(x) else 0
    if width <= 0:
        return first
    i = np.arange(width)[None, :]
    valid = i < (n - tx)[:, None]
    with np.errstate(invalid="ignore"):
        terms = special.betaln(alpha + x[:, None], beta + tx[:, None] - x[:, None] + i) + special.betaln(gamma + 1.0, delta + tx[:, None] + i) - base
    terms = np.where(valid, terms, -np.inf)
    return np.logaddexp(first, special.logsumexp(terms, axis=1))


@dataclass(frozen=True)
class Opportunities:
    """Checked (x, t_x, n) patterns and their customer counts."""

    x: np.ndarray
    tx: np.ndarray
    n: np.ndarray
    w: np.ndarray

    @property
    def customers(self) -> float:
        return float(self.w.sum())


def opportunity_arrays(summary, *, frequency: str, recency: str, periods: str, weights: str | None, func: str) -> Opportunities:
    """Check a BG/BB summary: whole numbers with 0 <= x <= t_x <= n (t_x = 0 exactly when x = 0), and
    the same number of opportunities ``n`` for every customer."""
    df = as_frame(summary, func)
    x = numeric_column(df, frequency, func, "frequency column: opportunities with a transaction")
    tx = numeric_column(df, recency, func, "recency column: the opportunity of the last transaction")
    n = numeric_column(df, periods, func, "periods column: the number of opportunities")
    w = count_weights(df, weights, func)
    cols = [c for c in (frequency, recency, periods, weights or "n") if c in df.columns]
    whole = lambda v: np.isfinite(v) & ((v < 0) | (v != np.round(v)))  # noqa: E731
    checks = [
        (~np.isfinite(x) | ~np.isfinite(tx) | ~np.isfinite(n) | ~np.isfinite(w), "(all)", "missing or infinite values"),
        (whole(x), frequency, "frequency must be a whole number >= 0"),
        (whole(tx), recency, "recency must be a whole number >= 0 (an opportunity index)"),
        (whole(n) | (n == 0), periods, "periods must be a whole number >= 1"),
        (np.isfinite(x) & np.isfinite(tx) & (x > tx), frequency, "frequency cannot exceed recency (x transactions need x opportunities up to the last one)"),
        (np.isfinite(tx) & np.isfinite(n) & (tx > n), recency, "recency must be <= periods"),
        ((x == 0) & (tx > 0), recency, "recency must be 0 when frequency is 0"),
        ((x > 0) & (tx == 0), recency, "recency must be >= 1 when frequency is > 0"),
        (np.isfinite(w) & (w < 0), weights or "n", "customer counts must be >= 0"),
    ]
    found = [v for mask, col, rule in checks if (v := violation(mask, df, col, rule, cols)) is not None]
    if found:
        raise DataError(found)
    keep = w > 0
    x, tx, n, w = x[keep], tx[keep], n[keep], w[keep]
    if not len(x):
        raise ModelError(f"{func}: the summary has no customers (0 rows with a positive count); there is nothing to fit.")
    counts = pd.Series(w).groupby(n).sum()
    if len(counts) > 1:
        shown = ", ".join(f"{int(k)} ({v:,.0f} customers)" for k, v in counts.head(4).items())
        more = f" and {len(counts) - 4} more" if len(counts) > 4 else ""
        raise ModelError(
            f"{func}: BG/BB needs the same number of transaction opportunities for every customer, but the summary "
            f"mixes {len(counts)} different numbers of periods: {shown}{more}. Fit one acquisition cohort at a time (e.g. summary[summary.cohort == ...] "
            "from workbench.tables.repeat_opportunities), or truncate every history to the shortest one."
        )
    return Opportunities(x, tx, n, w)


@dataclass(frozen=True, eq=False)
class BGBBResult(Result):
    """A fitted BG/BB model: ``alpha, beta`` (Beta transaction probability), ``gamma, delta`` (Beta
    drop-out probability per opportunity); ``periods`` is the customers' number of opportunities."""

    params: pd.DataFrame
    theta: np.ndarray = field(repr=False)
    cov: np.ndarray = field(repr=False)
    loglik: float
    customers: int
    patterns: int
    periods: int
    converged: bool
    iterations: int
    level: float = 0.95

    NAMES: ClassVar[tuple[str, ...]] = ("alpha", "beta", "gamma", "delta")
    PREFIX: ClassVar[str] = "clv.bgbb"
    LABEL: ClassVar[str] = "BG/BB"

    def param(self, name: str) -> float:
        return float(self.params.loc[name, "estimate"])

    @property
    def values(self) -> np.ndarray:
        return self.params["estimate"].to_numpy(dtype=float)

    def summary(self) -> pd.DataFrame:
        return self.params.copy()

    def to_metrics(self, prefix: str | None = None) -> dict:
        prefix = prefix or self.PREFIX
        out = summary_metrics(prefix, self.params)
        out[f"{prefix}.loglik"] = self.loglik
        out[f"{prefix}.customers"] = self.customers
        out[f"{prefix}.periods"] = self.periods
        return out

    def _repr_html_(self) -> str:
        head = (
            f"<strong>BGBBResult</strong> — {self.customers:,} customers over {self.periods} "
            f"opportunities ({self.patterns} patterns), log-likelihood {self.loglik:,.2f}"
        )
        return head + self.summary().to_html(float_format=lambda v: f"{v:.4g}")

    # ---------------------------------------------------------------- predictions at theta
    @staticmethod
    def _p_alive(theta, x, tx, n, ahead):
        alpha, beta, gamma, delta = np.exp(theta)
        ll = bgbb_loglik((alpha, beta, gamma, delta), x, tx, n)
        return np.exp(
            special.betaln(alpha + x, beta + n - x) - special.betaln(alpha, beta) + special.betaln(gamma, delta + n + ahead) - special.betaln(gamma, delta) - ll
        )

    @staticmethod
    def _expected(theta, x, tx, n, future):
        alpha, beta, gamma, delta = np.exp(theta)
        ll = bgbb_loglik((alpha, beta, gamma, delta), x, tx, n)
        j = np.arange(1, int(future) + 1)[None, :]
        surv = special.logsumexp(special.betaln(gamma, delta + n[:, None] + j), axis=1) - special.betaln(gamma, delta)
        return np.exp(special.betaln(alpha + x + 1.0, beta + n - x) - special.betaln(alpha, beta) + surv - ll)

    def _data(self, summary, frequency, recency, periods, func):
        o = opportunity_arrays(summary, frequency=frequency, recency=recency, periods=periods, weights=None, func=func)
        return o.x, o.tx, o.n

    def probability_alive(self, summary, *, ahead: int = 0, frequency: str = "frequency", recency: str = "recency", periods: str = "periods") -> np.ndarray:
        """P(alive at opportunity ``n + ahead``) of each row (``ahead = 0``: still alive at the last
        opportunity observed; 1: at the next one)."""
        ahead = _whole(ahead, "ahead", "BGBBResult.probability_alive", minimum=0)
        x, tx, n = self._data(summary, frequency, recency, periods, "BGBBResult.probability_alive")
        return self._p_alive(self.theta, x, tx, n, ahead)

    def expected_purchases(self, summary, *, t: int, frequency: str = "frequency", recency: str = "recency", periods: str = "periods") -> np.ndarray:
        """Expected transactions of each row in the next ``t`` opportunities (``n+1 .. n+t``)."""
        t = _whole(t, "t", "BGBBResult.expected_purchases", minimum=1)
        x, tx, n = self._data(summary, frequency, recency, periods, "BGBBResult.expected_purchases")
        return self._expected(self.theta, x, tx, n, t)

    def expected_purchases_new(self, t: int) -> float:
        """Expected transactions of a newly acquired customer in her first ``t`` opportunities:
        ``alpha/(alpha+beta) sum_{j=1..t} B(gamma, delta+j)/B(gamma, delta)`` (eq. 8)."""
        t = _whole(t, "t", "BGBBResult.expected_purchases_new", minimum=1)
        alpha, beta, gamma, delta = self.values
        j = np.arange(1, t + 1)
        return float(alpha / (alpha + beta) * np.exp(special.betaln(gamma, delta + j) - special.betaln(gamma, delta)).sum())

    def predict(
        self, summary, *, t: int, level: float | None = None, frequency: str = "frequency", recency: str = "recency", periods: str = "periods"
    ) -> pd.DataFrame:
        """Per row: ``expected_purchases`` in the next ``t`` opportunities and ``probability_alive``
        (at the last opportunity observed), each with a delta-method interval (log and logit scale)."""
        func = "BGBBResult.predict"
        t = _whole(t, "t", func, minimum=1)
        z = z_value(check_level(self.level if level is None else level, func))
        df = as_frame(summary, func)
        x, tx, n = self._data(df, frequency, recency, periods, func)
        e, Je = intervals.jacobian(lambda th: self._expected(th, x, tx, n, t), self.theta)
        pa, Jp = intervals.jacobian(lambda th: self._p_alive(th, x, tx, n, 0), self.theta)
        e_lo, e_hi = intervals.log_interval(e, intervals.log_variance(e, Je, self.cov), z)
        p_lo, p_hi = intervals.logit_interval(pa, Jp, self.cov, z)
        return pd.DataFrame(
            {"expected_purchases": e, "expected_purchases_ci_low": e_lo, "expected_purchases_ci_high": e_hi,
             "probability_alive": pa, "probability_alive_ci_low": p_lo, "probability_alive_ci_high": p_hi},
            index=df.index,
        )


def _whole(v, name, func, minimum):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer, float)) or v != int(v) or v < minimum:
        raise ParameterError(f"{func}: {name} must be a whole number of opportunities >= {minimum}, got {v!r}")
    return int(v)


def fit_bgbb(
    summary, *, frequency: str = "frequency", recency: str = "recency", periods: str = "periods", weights: str | None = None, level: float = 0.95
) -> BGBBResult:
    """Fit the BG/BB model by maximum likelihood on (frequency, recency, periods) patterns.

    ``weights``: the column of customer counts (default ``n`` when present,
    else the ``weights`` column of the published donations file, else one
    customer per row).

    Raises
    ------
    DataError
        Impossible patterns (listed all at once).
    ModelError
        Unequal numbers of opportunities, no repeat transactions, too few
        customers, or no interior optimum.
    """
    func = "fit_bgbb"
    level = check_level(level, func)
    df = as_frame(summary, func)
    if weights is None and "n" not in df.columns and "weights" in df.columns:
        weights = "weights"
    o = opportunity_arrays(df, frequency=frequency, recency=recency, periods=periods, weights=weights, func=func)
    if (o.w * o.x).sum() == 0:
        raise ModelError(f"{func}: nobody transacted at any opportunity (all frequencies are 0); there is nothing to fit.")
    if o.customers < 10 or len(o.x) < 4:
        raise ModelError(f"{func}: only {o.customers:,.0f} customer(s) in {len(o.x)} pattern(s); the 4-parameter model needs many more.")
    obj = Objective(lambda th: bgbb_loglik(np.exp(th), o.x, o.tx, o.n), o.w)
    fit = maximize(obj, np.log([1.0, 1.0, 1.0, 1.0]), BGBBResult.NAMES, func)
    return BGBBResult(
        params=params_table(BGBBResult.NAMES, fit.theta, fit.cov, level),
        theta=fit.theta,
        cov=fit.cov,
        loglik=fit.loglik,
        customers=int(round(o.customers)),
        patterns=len(o.x),
        periods=int(o.n[0]),
        converged=fit.converged,
        iterations=fit.iterations,
        level=level,
    )

"""Customer lifetime value: BG/NBD, Pareto/NBD and Gamma-Gamma.

Non-contractual ("buy till you die") models of repeat purchasing, fitted by
maximum likelihood on the repeat-purchase summary: one row per customer, or
better one row per unique ``(frequency, recency, T)`` pattern with the number
of customers ``n`` who share it (``workbench.tables.repeat_summary_compressed``).
The fit costs the number of unique patterns, not the number of customers.

Notation (Fader, Hardie and Lee 2005): a customer's calibration history is
``x`` repeat purchases (``frequency``), the time of the last one ``t_x``
(``recency``, measured from the first purchase) and the length of observation
``T`` since the first purchase, all in one time unit (weeks or days).

* **BG/NBD** (Fader, Hardie and Lee 2005, "Counting your customers the easy
  way"): while alive a customer buys as a Poisson process with rate
  ``lambda ~ Gamma(r, rate alpha)``; after each purchase she drops out with
  probability ``p ~ Beta(a, b)``.
* **Pareto/NBD** (Schmittlein, Morrison and Colombo 1987): the same purchase
  process, and an exponential lifetime with rate ``mu ~ Gamma(s, rate beta)``.
  The likelihood uses the Gaussian hypergeometric form of Fader and Hardie's
  note "Deriving an expression for P(X(t) = x) under the Pareto/NBD model"
  (2005, eqs. 18-20), switching on ``alpha >= beta``, evaluated in log space
  after Euler's transformation ``2F1(a, b; a+1; z) = (1-z)^(1-b) 2F1(1, a+1-b;
  a+1; z)``, whose right-hand side stays bounded, so customers with hundreds
  of purchases neither overflow nor underflow.
* **Gamma-Gamma** (Fader, Hardie and Lee 2005, "RFM and CLV"; Fader and
  Hardie's note "The Gamma-Gamma model of monetary value", 2013): each
  transaction's value is ``Gamma(p, rate nu)`` with ``nu ~ Gamma(q, rate
  gamma)``; fitted on repeat customers' mean spend per repeat transaction.

Every fit maximises the log-likelihood over the log-parameters with
``scipy.optimize.minimize`` (BFGS; analytic gradients for BG/NBD and
Gamma-Gamma, central differences for Pareto/NBD), then polishes with Newton
steps on a numerical Hessian (``statsmodels.tools.numdiff``). Standard errors
come from the inverse observed information. Intervals are Wald intervals on
the log scale, transformed back (positive and asymmetric); ``std_err`` is the
natural-scale standard error by the delta method.

Predictions (methods of the results): conditional expected purchases in
``(T, T + t]``, the probability that a customer is still alive at ``T``,
expected spend per transaction, and :func:`customer_lifetime_value` over a
horizon with a discount rate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from statsmodels.tools import numdiff

from workbench.errors import DataError, ModelError, ParameterError, Violation, WorkbenchWarning
from workbench.models.results import Result, summary_frame, summary_metrics

#: time units per year, for turning an annual discount rate into one per time unit
UNITS_PER_YEAR = {"day": 365.25, "week": 365.25 / 7.0}
#: unique patterns above which a fit first runs on a coarsened copy of the data
COARSE_ROWS = 20_000
_BOUND = 25.0  # log-parameters are kept in [-25, 25]


class CLVWarning(WorkbenchWarning):
    """A CLV fit or prediction is valid but deserves a second look."""


# ============================================================ input checking
def _table(summary, func: str) -> pd.DataFrame:
    if isinstance(summary, pd.DataFrame):
        return summary
    if hasattr(summary, "to_pandas"):
        raise ParameterError(
            f"{func}: got an Ibis table; models take pandas. Pass `summary.to_pandas()` "
            "(e.g. workbench.tables.repeat_summary_compressed(ds, ...).to_pandas())."
        )
    raise ParameterError(f"{func}: summary must be a pandas DataFrame with the repeat-purchase columns, got {type(summary).__name__}")


def _column(df: pd.DataFrame, name: str, func: str, role: str) -> np.ndarray:
    if name not in df.columns:
        raise ParameterError(
            f"{func}: the summary has no column {name!r} ({role}); columns found: {', '.join(map(str, df.columns))}. "
            "Pass the output of workbench.tables.repeat_summary(...) or repeat_summary_compressed(...), "
            f"or name the column with the {role.split()[0]}= argument."
        )
    try:
        return pd.to_numeric(df[name], errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise DataError([Violation("summary", name, f"must be numeric ({role}), found dtype {df[name].dtype}", len(df))]) from None


def _violation(mask: np.ndarray, df: pd.DataFrame, column: str, rule: str, cols: list[str]) -> Violation | None:
    n = int(mask.sum())
    if not n:
        return None
    ex = df.loc[mask, [c for c in cols if c in df.columns]].head(3)
    return Violation("summary", column, rule, n, [dict(zip(ex.columns, map(_fmt, row))) for row in ex.itertuples(index=False)])


def _fmt(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else (round(v, 4) if isinstance(v, float) else v)


def _weights(df: pd.DataFrame, weights: str | None, func: str) -> np.ndarray:
    """``weights`` column, else ``n`` when present (a compressed summary), else ones."""
    if weights is None:
        weights = "n" if "n" in df.columns else None
    if weights is None:
        return np.ones(len(df))
    return _column(df, weights, func, "weights column of customer counts")


@dataclass(frozen=True)
class RFM:
    """A checked, compressed repeat-purchase summary: unique (x, t_x, T) rows and their counts."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    n: np.ndarray

    @property
    def customers(self) -> float:
        return float(self.n.sum())

    @property
    def repeat_customers(self) -> float:
        return float(self.n[self.x > 0].sum())

    @property
    def repeat_transactions(self) -> float:
        return float((self.n * self.x).sum())

    def __len__(self) -> int:
        return len(self.x)


def rfm_arrays(summary, *, frequency: str = "frequency", recency: str = "recency", T: str = "T", weights: str | None = None, func: str = "rfm_arrays", compress: bool = True) -> RFM:
    """Check a repeat-purchase summary and compress it to unique ``(x, t_x, T)`` rows.

    Raises DataError (listing every broken rule: negative or non-integer
    frequency, recency after T, missing values, ...) or ParameterError
    (missing columns, wrong type)."""
    df = _table(summary, func)
    x = _column(df, frequency, func, "frequency column: repeat purchases")
    tx = _column(df, recency, func, "recency column: time of the last repeat purchase")
    big_t = _column(df, T, func, "T column: time since the first purchase")
    n = _weights(df, weights, func)
    cols = [c for c in (frequency, recency, T, weights or "n") if c in df.columns]
    checks = [
        (~np.isfinite(x) | ~np.isfinite(tx) | ~np.isfinite(big_t) | ~np.isfinite(n), "(all)", "missing or infinite values"),
        (np.isfinite(x) & ((x < 0) | (x != np.round(x))), frequency, "frequency must be a whole number >= 0"),
        (np.isfinite(tx) & (tx < 0), recency, "recency must be >= 0"),
        (np.isfinite(big_t) & (big_t < 0), T, "T must be >= 0 (the first purchase cannot come after the calibration end)"),
        (np.isfinite(big_t) & (big_t == 0) & (x > 0), frequency, "frequency must be 0 when T is 0 (first purchase on the calibration end)"),
        (np.isfinite(tx) & np.isfinite(big_t) & (tx > big_t * (1 + 1e-9) + 1e-12), recency, "recency must be <= T"),
        ((x == 0) & (tx > 0), recency, "recency must be 0 when frequency is 0"),
        (np.isfinite(n) & (n < 0), weights or "n", "customer counts must be >= 0"),
    ]
    violations = [v for mask, col, rule in checks if (v := _violation(mask, df, col, rule, cols)) is not None]
    if violations:
        raise DataError(violations)
    keep = n > 0
    x, tx, big_t, n = x[keep], np.minimum(tx[keep], big_t[keep]), big_t[keep], n[keep]
    if not len(x):
        raise ModelError(f"{func}: the summary has no customers (0 rows with a positive count); there is nothing to fit.")
    if compress:
        x, tx, big_t, n = _compress(x, tx, big_t, n)
    return RFM(x, tx, big_t, n)


def _compress(x, tx, T, n):
    """Unique (x, t_x, T) rows (sorted) with summed counts: each column factorised (hashing), the
    codes combined into one integer key."""
    cx, ux = pd.factorize(x, sort=True)
    ct, ut = pd.factorize(tx, sort=True)
    cT, uT = pd.factorize(T, sort=True)
    key = (cx.astype(np.int64) * len(ut) + ct) * len(uT) + cT
    inv, uk = pd.factorize(key, sort=False)
    counts = np.bincount(inv, weights=n, minlength=len(uk))
    order = np.argsort(uk)
    uk, counts = uk[order], counts[order]
    iT = uk % len(uT)
    rest = uk // len(uT)
    return ux[rest // len(ut)].astype(float), ut[rest % len(ut)].astype(float), uT[iT].astype(float), counts


def _require_repeat(rfm: RFM, func: str) -> None:
    if rfm.repeat_customers == 0:
        raise ModelError(
            f"{func}: no repeat buyers: all {rfm.customers:,.0f} customers have frequency 0, so the purchase and "
            "dropout rates cannot be told apart. Use a later calibration_end (a longer calibration period) or a "
            "dataset with repeat purchases."
        )
    if len(rfm) < 4 or rfm.customers < 10:
        raise ModelError(f"{func}: only {rfm.customers:,.0f} customer(s) in {len(rfm)} pattern(s); a 4-parameter model needs many more (hundreds).")


# ============================================================ likelihoods
def _log1mexp(u):
    """log(1 - exp(u)) for u <= 0, accurate everywhere."""
    u = np.asarray(u, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(u > -math.log(2.0), np.log(-np.expm1(u)), np.log1p(-np.exp(u)))


class _Rows:
    """(x, t_x, T) rows with the distinct frequencies indexed once: every term that depends on ``x``
    alone (gamma and beta functions) is computed per distinct ``x`` and gathered."""

    def __init__(self, x, tx, T):
        self.x, self.tx, self.T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        self.ux, self.ix = np.unique(self.x, return_inverse=True)
        self.ix = self.ix.ravel()
        self.rep = self.x > 0


def bgnbd_loglik(params, x, tx, T, *, gradient: bool = False, rows: _Rows | None = None):
    """BG/NBD log-likelihood of each (x, t_x, T) row (Fader, Hardie and Lee 2005, eq. 6), in log space:

    ``log L = lgamma(r+x) - lgamma(r) + r log(alpha) - log B(a, b) + logsumexp(A, B)`` with
    ``A = log B(a, b+x) - (r+x) log(alpha+T)`` and, for x > 0, ``B = log B(a+1, b+x-1) - (r+x) log(alpha+t_x)``.

    With ``gradient=True`` also the rows' derivatives with respect to
    ``(r, alpha, a, b)`` (an ``n x 4`` array)."""
    r, alpha, a, b = (float(v) for v in params)
    if rows is None:
        rows = _Rows(x, tx, T)
    ux, ix, rep = rows.ux, rows.ix, rows.rep
    x, tx, T = rows.x, rows.tx, rows.T
    urep = ux > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        bl_A = special.betaln(a, b + ux)[ix]
        bl_B = np.where(urep, special.betaln(a + 1.0, np.where(urep, b + ux - 1.0, b)), 0.0)[ix]
        la_T = np.log(alpha + T)
        la_tx = np.log(alpha + tx)
        rx = r + x
        A = bl_A - rx * la_T
        B = np.where(rep, bl_B - rx * la_tx, -np.inf)
        lse = np.logaddexp(A, B)
        ll = special.gammaln(r + ux)[ix] + (r * math.log(alpha) - special.gammaln(r) - special.betaln(a, b)) + lse
    if not gradient:
        return ll
    wB = np.exp(B - lse)  # share of the "dropped out after the last purchase" term
    wA = 1.0 - wB
    psi_abx = special.digamma(a + b + ux)[ix]
    d_r = special.digamma(r + ux)[ix] + (math.log(alpha) - special.digamma(r)) - wA * la_T - wB * la_tx
    d_alpha = r / alpha - rx * (wA / (alpha + T) + wB / (alpha + tx))
    ab = special.digamma(a + b)
    # psi(a+1) - psi(a) = 1/a and psi(b+x) - psi(b+x-1) = 1/(b+x-1)
    d_a = ab + wB / a - psi_abx
    with np.errstate(invalid="ignore", divide="ignore"):
        d_b = (ab - special.digamma(b)) + special.digamma(b + ux)[ix] - psi_abx - np.where(rep, wB / (b + x - 1.0), 0.0)
    return ll, np.column_stack([d_r, d_alpha, d_a, d_b])


def _pnbd_logF(r, alpha, s, beta, x, t):
    """log of ``2F1(r+s+x, b; r+s+x+1; z(t)) / (m + t)^(r+s+x)`` (Fader-Hardie eq. 19/20 terms), with
    ``m = max(alpha, beta)``, ``z(t) = |alpha - beta| / (m + t)`` and ``b = s + 1`` if ``alpha >= beta``
    else ``r + x``; via Euler's transformation so the hypergeometric factor stays bounded."""
    if alpha >= beta:
        m, mn, bb = alpha, beta, s + 1.0 + 0.0 * x
    else:
        m, mn, bb = beta, alpha, r + x
    aa = r + s + x
    lm = np.log(m + t)
    z = (m - mn) / (m + t)
    h = special.hyp2f1(1.0, aa + 1.0 - bb, aa + 1.0, z)
    return (1.0 - bb) * (np.log(mn + t) - lm) + np.log(h) - aa * lm


class _PNBDRows:
    """Pareto/NBD rows with the (x, t_x) and (x, T) pairs de-duplicated once, so each likelihood
    evaluation computes each hypergeometric term only once per distinct pair."""

    def __init__(self, x, tx, T):
        self.x, self.tx, self.T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        self.ux, self.ix = np.unique(self.x, return_inverse=True)
        self.pairs_tx, self.i_tx = self._pairs(self.tx)
        self.pairs_T, self.i_T = self._pairs(self.T)

    def _pairs(self, t):
        stacked = np.column_stack([self.x, t])
        u, inv = np.unique(stacked, axis=0, return_inverse=True)
        if len(u) > 0.7 * len(stacked):  # not worth it
            return None, None
        return u, inv.ravel()

    def logF(self, r, alpha, s, beta, which):
        t = self.tx if which == "tx" else self.T
        pairs, inv = (self.pairs_tx, self.i_tx) if which == "tx" else (self.pairs_T, self.i_T)
        if pairs is None:
            return _pnbd_logF(r, alpha, s, beta, self.x, t)
        return _pnbd_logF(r, alpha, s, beta, pairs[:, 0], pairs[:, 1])[inv]


def pareto_nbd_loglik(params, x, tx, T, *, rows: _PNBDRows | None = None, parts: bool = False):
    """Pareto/NBD log-likelihood of each (x, t_x, T) row, in log space.

    ``L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0 ]``
    with ``A0 = F(t_x) - F(T)`` (Fader and Hardie 2005 note, eqs. 18-20). With
    ``parts=True`` returns ``(ll, log_alive_term, log_dead_term)`` (their
    difference gives P(alive))."""
    r, alpha, s, beta = (float(v) for v in params)
    if rows is None:
        rows = _PNBDRows(x, tx, T)
    x, T = rows.x, rows.T
    with np.errstate(divide="ignore", invalid="ignore"):
        f_tx = rows.logF(r, alpha, s, beta, "tx")
        f_T = rows.logF(r, alpha, s, beta, "T")
        log_a0 = f_tx + _log1mexp(np.minimum(f_T - f_tx, 0.0))
        alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        dead = math.log(s) - np.log(r + s + x) + log_a0
        lgr = special.gammaln(rows.ux + r)[rows.ix] - special.gammaln(r)
        ll = lgr + r * math.log(alpha) + s * math.log(beta) + np.logaddexp(alive, dead)
    if parts:
        return ll, alive, dead
    return ll


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


# ============================================================ maximum likelihood
@dataclass
class _Fit:
    theta: np.ndarray  # log-parameters at the optimum
    cov_log: np.ndarray  # covariance of the log-parameters (total information inverted)
    loglik: float
    converged: bool
    iterations: int
    message: str
    hessian: np.ndarray  # of the mean negative log-likelihood in the log-parameters
    nfev: int


_STEP = 1e-4  # finite-difference step in the log-parameters (gradient and Hessian share the points)


class _Objective:
    """Mean negative log-likelihood over log-parameters, memoised (the Hessian stencil reuses the
    gradient's points)."""

    def __init__(self, loglik, weights, grad=None):
        self._loglik = loglik  # params -> per-row ll (or (ll, per-row grad) when grad)
        self.w = weights / weights.sum()
        self.total = float(weights.sum())
        self.has_grad = grad
        self._cache: dict[bytes, tuple[float, np.ndarray | None]] = {}
        self.nfev = 0

    def _eval(self, theta):
        key = np.asarray(theta, dtype=float).tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if not np.all(np.abs(theta) <= _BOUND):
            return np.inf, None
        self.nfev += 1
        params = np.exp(theta)
        with np.errstate(all="ignore"):
            out = self._loglik(params)
        # weighted sums by elementwise products, not BLAS dot products: multithreaded BLAS costs more
        # than it saves on these shapes (and spins idle threads on a busy machine)
        if self.has_grad:
            ll, g = out
            val = -float(np.sum(self.w * ll))
            grad = -np.sum(g * self.w[:, None], axis=0) * params  # chain rule to log-parameters
        else:
            val, grad = -float(np.sum(self.w * out)), None
        if not np.isfinite(val):
            val, grad = np.inf, None
        if len(self._cache) > 512:
            self._cache.clear()
        self._cache[key] = (val, grad)
        return val, grad

    def f(self, theta) -> float:
        return self._eval(theta)[0]

    def grad(self, theta) -> np.ndarray:
        val, g = self._eval(theta)
        if g is not None:
            return g
        if self.has_grad:  # infinite value: no gradient; push back towards the start
            return np.zeros_like(theta)
        e = np.diag(np.full(len(theta), _STEP))
        return np.array([(self.f(theta + e[i]) - self.f(theta - e[i])) / (2 * _STEP) for i in range(len(theta))])

    def hessian(self, theta) -> np.ndarray:
        if self.has_grad:  # forward differences of the analytic gradient (error ~1e-5 relative)
            H = numdiff.approx_fprime(theta, self.grad, epsilon=1e-5, centered=False)
        else:
            H = numdiff.approx_hess2(theta, self.f, epsilon=np.full(len(theta), _STEP))
        return (H + H.T) / 2


def _maximize(obj: _Objective, theta0: np.ndarray, names: tuple[str, ...], func: str, *, hess0: np.ndarray | None = None) -> _Fit:
    """Maximise the likelihood over the log-parameters: BFGS from ``theta0``; or, for a warm start
    that comes with the coarse fit's Hessian ``hess0``, BFGS started from that curvature (numerical
    gradient) or one Newton step on it (analytic gradient). Then Newton steps on the numerical Hessian
    until the step in the log-parameters is below 1e-7. The inverse Hessian at the optimum, times the
    number of customers, gives the covariance of the log-parameters."""
    theta = np.asarray(theta0, dtype=float)
    message, iterations, converged = "", 0, True
    if hess0 is None:
        # BFGS (plain numpy); the objective is +inf outside [-25, 25] in every log-parameter, which
        # keeps the search inside. (L-BFGS-B would do the same, but scipy's implementation calls
        # multithreaded BLAS on 4-vectors, which costs more than the likelihood on a busy machine.)
        res = optimize.minimize(obj.f, theta, jac=obj.grad, method="BFGS", options={"maxiter": 2000, "gtol": 1e-8})
        theta, message, iterations = res.x, str(res.message), int(res.nit)
        if not np.isfinite(res.fun):
            raise ModelError(f"{func}: the log-likelihood is not finite at any parameters tried; check the summary's values (T and recency in one time unit).")
    elif not obj.has_grad:  # warm start, numerical gradient: BFGS from the coarse fit's curvature
        inv0 = np.linalg.inv(hess0)
        try:
            res = optimize.minimize(obj.f, theta, jac=obj.grad, method="BFGS", options={"hess_inv0": (inv0 + inv0.T) / 2, "gtol": 1e-9, "xrtol": 1e-9, "maxiter": 200})
            if np.isfinite(res.fun) and res.fun <= obj.f(theta):
                theta, message, iterations = res.x, str(res.message), int(res.nit)
        except (ValueError, np.linalg.LinAlgError):
            pass
    else:  # warm start, analytic gradient: one Newton step on the coarse curvature
        step = -np.linalg.solve(hess0, obj.grad(theta))
        if np.all(np.isfinite(step)) and obj.f(theta + step) < obj.f(theta):
            theta = theta + step
    H = obj.hessian(theta)
    start = theta.copy()
    for _ in range(50):  # Newton polish with the fixed Hessian
        g = obj.grad(theta)
        try:
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        f0, t = obj.f(theta), 1.0
        while t > 1e-4 and not obj.f(theta + t * step) <= f0 + 1e-15 * abs(f0):
            t /= 2
        if t <= 1e-4:
            break
        theta = np.clip(theta + t * step, -_BOUND, _BOUND)
        iterations += 1
        if np.max(np.abs(t * step)) < 1e-7:
            break
    if np.max(np.abs(theta - start)) > 1e-4:
        H = obj.hessian(theta)  # the Hessian where we ended (for the standard errors)
    g = obj.grad(theta)
    at_bound = np.abs(theta) > _BOUND - 0.5
    if at_bound.any():
        bad = ", ".join(f"{names[i]} = {math.exp(theta[i]):.3g}" for i in np.flatnonzero(at_bound))
        raise ModelError(
            f"{func}: no interior maximum: {bad} ran to the edge of the allowed range. The data do not identify "
            "the model (e.g. almost no repeat purchases, or no sign of customers dropping out): use a longer "
            "calibration period or another model."
        )
    info = H * obj.total
    try:
        evals = np.linalg.eigvalsh(info)
        if evals.min() <= 0:
            raise np.linalg.LinAlgError
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        converged = False
        cov = np.full((len(theta), len(theta)), np.nan)
        warnings.warn(f"{func}: the Hessian at the optimum is not positive definite; standard errors are not available.", CLVWarning, stacklevel=3)
    if np.max(np.abs(g)) > 1e-6:
        converged = False
        warnings.warn(f"{func}: the optimiser stopped with gradient {np.max(np.abs(g)):.2g} (per customer); the estimates may be imprecise.", CLVWarning, stacklevel=3)
    return _Fit(theta, cov, -obj.f(theta) * obj.total, converged, iterations, message, H, obj.nfev)


def _params_table(names, theta, cov_log, level):
    est = np.exp(theta)
    se_log = np.sqrt(np.clip(np.diag(cov_log), 0, None))
    z = stats.norm.ppf(0.5 + level / 2)
    return summary_frame(names, est, est * se_log, np.exp(theta - z * se_log), np.exp(theta + z * se_log))


def _coarse(rfm: RFM, bins: int = 40) -> RFM:
    """A coarsened copy (T and t_x rounded to a grid of ``bins`` steps over T's range) for a warm start."""
    step = float(rfm.T.max()) / bins
    T = np.maximum(np.round(rfm.T / step), 1.0) * step
    tx = np.minimum(np.round(rfm.tx / step) * step, T)
    return RFM(*_compress(rfm.x, tx, T, rfm.n))


# ============================================================ results
@dataclass(frozen=True, eq=False)
class _CountingResult(Result):
    """Shared parts of the BG/NBD and Pareto/NBD results."""

    params: pd.DataFrame
    cov_log: np.ndarray = field(repr=False)  # covariance of the log-parameters
    loglik: float
    customers: int
    patterns: int  # unique (frequency, recency, T) rows the fit ran on
    repeat_customers: int
    repeat_transactions: float
    converged: bool
    iterations: int
    level: float = 0.95
    time_unit: str | None = None

    NAMES: ClassVar[tuple[str, ...]] = ()
    PREFIX: ClassVar[str] = ""
    LABEL: ClassVar[str] = ""

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
        out[f"{prefix}.repeat_customers"] = self.repeat_customers
        return out

    def _repr_html_(self) -> str:
        head = (
            f"<strong>{type(self).__name__}</strong> — {self.customers:,} customers "
            f"({self.repeat_customers:,} repeat, {self.patterns:,} unique patterns), log-likelihood {self.loglik:,.1f}"
        )
        return head + self.summary().to_html(float_format=lambda v: f"{v:.4g}")

    # ---- predictions on a summary frame (one value per row)
    def _rows(self, summary, frequency, recency, T, func):
        df = _table(summary, func)
        rfm = rfm_arrays(df, frequency=frequency, recency=recency, T=T, weights=None, func=func, compress=False)
        return rfm.x, rfm.tx, rfm.T

    def expected_purchases(self, summary, *, t: float, frequency: str = "frequency", recency: str = "recency", T: str = "T") -> np.ndarray:
        """Expected repeat purchases of each customer (row) in ``(T, T + t]``, given the calibration history."""
        t = _nonneg(t, "t", f"{type(self).__name__}.expected_purchases")
        x, tx, big_t = self._rows(summary, frequency, recency, T, "expected_purchases")
        return _by_unique(lambda a, b, c: self._conditional_expected(a, b, c, t), x, tx, big_t)

    def probability_alive(self, summary, *, frequency: str = "frequency", recency: str = "recency", T: str = "T") -> np.ndarray:
        """Probability that each customer (row) is still alive at the end of calibration."""
        x, tx, big_t = self._rows(summary, frequency, recency, T, "probability_alive")
        return _by_unique(self._p_alive, x, tx, big_t)

    def expected_purchases_new(self, t) -> np.ndarray:
        """Expected repeat purchases in ``(0, t]`` of a customer just acquired (unconditional ``E[X(t)]``)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        if (t < 0).any():
            raise ParameterError(f"{type(self).__name__}.expected_purchases_new: t must be >= 0")
        z = np.zeros_like(t)
        out = np.where(t > 0, self._conditional_expected(z, z, np.full_like(t, 1e-300), np.maximum(t, 1e-300)), 0.0)
        return out

    def expected_purchases_grid(self, *, t: float, max_frequency: int, T: float, recency_points: int = 40) -> pd.DataFrame:
        """Conditional expected purchases in ``(T, T+t]`` and P(alive) over a frequency x recency grid
        (customers of age ``T``): columns frequency, recency, expected_purchases, probability_alive."""
        if max_frequency < 1 or T <= 0:
            raise ParameterError("expected_purchases_grid: max_frequency must be >= 1 and T > 0")
        f = np.arange(0, int(max_frequency) + 1, dtype=float)
        rec = np.linspace(0.0, float(T), int(recency_points))
        ff, rr = np.meshgrid(f, rec, indexing="ij")
        ff, rr = ff.ravel(), rr.ravel()
        keep = (ff > 0) | (rr == 0)
        ff, rr = ff[keep], rr[keep]
        tt = np.full_like(ff, float(T))
        return pd.DataFrame(
            {
                "frequency": ff.astype(int),
                "recency": rr,
                "expected_purchases": self._conditional_expected(ff, rr, tt, float(t)),
                "probability_alive": self._p_alive(ff, rr, tt),
            }
        )


def _nonneg(v, name, func) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ParameterError(f"{func}: {name} must be a number >= 0, got {v!r}") from None
    if not np.isfinite(v) or v < 0:
        raise ParameterError(f"{func}: {name} must be a finite number >= 0, got {v!r}")
    return v


def _by_unique(fn, x, tx, T) -> np.ndarray:
    """Evaluate ``fn`` on the unique (x, t_x, T) rows and scatter back."""
    stacked = np.column_stack([x, tx, T])
    if len(stacked) > 1000:
        u, inv = np.unique(stacked, axis=0, return_inverse=True)
        if len(u) < 0.7 * len(stacked):
            return np.asarray(fn(u[:, 0], u[:, 1], u[:, 2]))[inv.ravel()]
    return np.asarray(fn(x, tx, T))


@dataclass(frozen=True, eq=False)
class BGNBDResult(_CountingResult):
    """A fitted BG/NBD model: ``r, alpha`` (Gamma purchase rates), ``a, b`` (Beta dropout probability)."""

    NAMES: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    PREFIX: ClassVar[str] = "clv.bgnbd"
    LABEL: ClassVar[str] = "BG/NBD"

    @property
    def r(self) -> float:
        return self.param("r")

    @property
    def alpha(self) -> float:
        return self.param("alpha")

    @property
    def a(self) -> float:
        return self.param("a")

    @property
    def b(self) -> float:
        return self.param("b")

    def _p_alive(self, x, tx, T):
        r, alpha, a, b = self.values
        x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.log(a) - np.log(np.where(x > 0, b + x - 1.0, 1.0)) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return np.where(x > 0, special.expit(-log_ratio), 1.0)

    def _conditional_expected(self, x, tx, T, t):
        """FHL (2005) eq. 10, with Euler's transformation: ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x;
        a+b+x-1; w) = (1-w)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; w), w = t/(alpha+T+t), which stays bounded."""
        r, alpha, a, b = self.values
        x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        w = t / (alpha + T + t)
        with np.errstate(divide="ignore", invalid="ignore"):
            log1w = np.log(alpha + T) - np.log(alpha + T + t)
            hyp = special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, w)
            bracket = -np.expm1((a - 1.0) * log1w) - np.exp((a - 1.0) * log1w) * (hyp - 1.0)
            out = (a + b + x - 1.0) / (a - 1.0) * bracket
        return out * self._p_alive(x, tx, T)


@dataclass(frozen=True, eq=False)
class ParetoNBDResult(_CountingResult):
    """A fitted Pareto/NBD model: ``r, alpha`` (Gamma purchase rates), ``s, beta`` (Gamma dropout rates)."""

    NAMES: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    PREFIX: ClassVar[str] = "clv.pareto_nbd"
    LABEL: ClassVar[str] = "Pareto/NBD"

    @property
    def r(self) -> float:
        return self.param("r")

    @property
    def alpha(self) -> float:
        return self.param("alpha")

    @property
    def s(self) -> float:
        return self.param("s")

    @property
    def beta(self) -> float:
        return self.param("beta")

    def _p_alive(self, x, tx, T):
        _, alive, dead = pareto_nbd_loglik(self.values, x, tx, T, parts=True)
        return special.expit(alive - dead)

    def _conditional_expected(self, x, tx, T, t):
        """``P(alive) (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]`` (Schmittlein et al. 1987)."""
        r, alpha, s, beta = self.values
        x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        u = np.log1p(t / (beta + T))
        # [1 - exp(-(s-1) u)] / (s-1), continuous at s = 1
        k = -np.expm1(-(s - 1.0) * u) / (s - 1.0) if abs(s - 1.0) > 1e-10 else u
        return self._p_alive(x, tx, T) * (r + x) * (beta + T) / (alpha + T) * k


# ============================================================ fitting
def _start_rates(rfm: RFM) -> tuple[float, float]:
    """A purchase-rate start: r = 1, alpha so that r/alpha matches purchases per unit of time."""
    rate = max((rfm.n * rfm.x).sum() / (rfm.n * rfm.T).sum(), 1e-4)
    return 1.0, 1.0 / rate


def fit_bgnbd(summary, *, frequency: str = "frequency", recency: str = "recency", T: str = "T", weights: str | None = None, level: float = 0.95, time_unit: str | None = None) -> BGNBDResult:
    """Fit the BG/NBD model by maximum likelihood.

    Parameters
    ----------
    summary
        A pandas repeat-purchase summary: per customer
        (``workbench.tables.repeat_summary(...).to_pandas()``) or per unique
        pattern with a count column ``n`` (``repeat_summary_compressed``).
    frequency, recency, T
        Column names: repeat purchases, time of the last repeat purchase and
        time since the first purchase, in one time unit.
    weights
        Column of customer counts; default ``n`` if the summary has it, else
        one customer per row.
    level
        Confidence level of the intervals (log-scale Wald).
    time_unit
        ``"week"`` or ``"day"``: recorded on the result for labels.

    Raises
    ------
    DataError
        Impossible values in the summary (listed all at once).
    ModelError
        No repeat buyers, too few customers, or no interior optimum.
    """
    func = "fit_bgnbd"
    level = _level(level, func)
    rfm = rfm_arrays(summary, frequency=frequency, recency=recency, T=T, weights=weights, func=func)
    _require_repeat(rfm, func)
    r0, a0 = _start_rates(rfm)
    theta0 = np.log([r0 * 0.5, a0 * 0.5, 1.0, 3.0])

    def make(data: RFM):
        rows = _Rows(data.x, data.tx, data.T)
        return _Objective(lambda p: bgnbd_loglik(p, None, None, None, gradient=True, rows=rows), data.n, grad=True)

    fit = _fit_multiresolution(rfm, make, theta0, BGNBDResult.NAMES, func)
    return BGNBDResult(
        params=_params_table(BGNBDResult.NAMES, fit.theta, fit.cov_log, level),
        cov_log=fit.cov_log,
        loglik=fit.loglik,
        customers=int(round(rfm.customers)),
        patterns=len(rfm),
        repeat_customers=int(round(rfm.repeat_customers)),
        repeat_transactions=rfm.repeat_transactions,
        converged=fit.converged,
        iterations=fit.iterations,
        level=level,
        time_unit=time_unit,
    )


def fit_pareto_nbd(summary, *, frequency: str = "frequency", recency: str = "recency", T: str = "T", weights: str | None = None, level: float = 0.95, time_unit: str | None = None) -> ParetoNBDResult:
    """Fit the Pareto/NBD model by maximum likelihood, with standard errors and intervals for
    ``r, alpha, s, beta``. Arguments and errors as :func:`fit_bgnbd`."""
    func = "fit_pareto_nbd"
    level = _level(level, func)
    rfm = rfm_arrays(summary, frequency=frequency, recency=recency, T=T, weights=weights, func=func)
    _require_repeat(rfm, func)
    r0, a0 = _start_rates(rfm)
    theta0 = np.log([r0 * 0.5, a0 * 0.5, 0.5, float(np.average(rfm.T, weights=rfm.n))])

    def make(data: RFM):
        rows = _PNBDRows(data.x, data.tx, data.T)
        return _Objective(lambda p: pareto_nbd_loglik(p, None, None, None, rows=rows), data.n)

    fit = _fit_multiresolution(rfm, make, theta0, ParetoNBDResult.NAMES, func)
    return ParetoNBDResult(
        params=_params_table(ParetoNBDResult.NAMES, fit.theta, fit.cov_log, level),
        cov_log=fit.cov_log,
        loglik=fit.loglik,
        customers=int(round(rfm.customers)),
        patterns=len(rfm),
        repeat_customers=int(round(rfm.repeat_customers)),
        repeat_transactions=rfm.repeat_transactions,
        converged=fit.converged,
        iterations=fit.iterations,
        level=level,
        time_unit=time_unit,
    )


def _fit_multiresolution(rfm: RFM, make, theta0, names, func) -> _Fit:
    """Fit directly, or (many unique patterns) first on a coarsened copy of the data, then polish on
    the data itself with Newton steps on the coarse fit's Hessian (a handful of evaluations)."""
    if len(rfm) <= COARSE_ROWS:
        return _maximize(make(rfm), theta0, names, func)
    warm = _maximize(make(_coarse(rfm)), theta0, names, func)
    return _maximize(make(rfm), warm.theta, names, func, hess0=warm.hessian)


def _level(level, func) -> float:
    try:
        level = float(level)
    except (TypeError, ValueError):
        level = float("nan")
    if not 0 < level < 1:
        raise ParameterError(f"{func}: level must be between 0 and 1 (e.g. 0.95), got {level!r}")
    return level


# ============================================================ Gamma-Gamma spend
@dataclass(frozen=True, eq=False)
class GammaGammaResult(Result):
    """A fitted Gamma-Gamma spend model: transaction values ``~ Gamma(p, rate nu)``, ``nu ~ Gamma(q, rate gamma)``.

    ``mean_spend`` is the population mean spend per transaction ``p gamma / (q - 1)`` (infinite when
    ``q <= 1``); ``frequency_spend_corr`` is the (weighted) correlation between repeat customers'
    frequency and mean spend, which the model assumes to be near 0."""

    params: pd.DataFrame
    cov_log: np.ndarray = field(repr=False)
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
        df = _table(summary, "expected_spend")
        x = _column(df, frequency, "expected_spend", "frequency column")
        m = _column(df, monetary_value, "expected_spend", "monetary_value column: mean spend per repeat purchase")
        return self._expected(x, m)

    def _expected(self, x, m):
        p, q, g = self.p, self.q, self.gamma
        m = np.where(x > 0, m, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = p * (g + x * m) / (p * x + q - 1.0)
        if q <= 1 and np.any(x == 0):
            warnings.warn("Gamma-Gamma: q <= 1, so the population mean spend is infinite; customers without repeat purchases get NaN.", CLVWarning, stacklevel=3)
            out = np.where(x == 0, np.nan, out)
        return out


def fit_gamma_gamma(summary, *, frequency: str = "frequency", monetary_value: str = "monetary_value", weights: str | None = None, level: float = 0.95) -> GammaGammaResult:
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
    level = _level(level, func)
    df = _table(summary, func)
    x = _column(df, frequency, func, "frequency column: repeat purchases")
    m = _column(df, monetary_value, func, "monetary_value column: mean spend per repeat purchase")
    n = _weights(df, weights, func)
    rep = np.isfinite(x) & (x > 0) & (n > 0)
    cols = [c for c in (frequency, monetary_value) if c in df.columns]
    checks = [
        (np.isfinite(x) & ((x < 0) | (x != np.round(x))), frequency, "frequency must be a whole number >= 0"),
        (rep & ~np.isfinite(m), monetary_value, "missing spend for a customer with repeat purchases"),
        (rep & np.isfinite(m) & (m < 0), monetary_value, "spend must be >= 0 (refunds must be netted out before modelling)"),
    ]
    violations = [v for mask, col, rule in checks if (v := _violation(mask, df, col, rule, cols)) is not None]
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
    obj = _Objective(lambda pr: gamma_gamma_loglik(pr, x, m, gradient=True), n, grad=True)
    q0 = 3.0
    p0 = 2.0
    theta0 = np.log([p0, q0, mean_m * (q0 - 1.0) / p0])
    fit = _maximize(obj, theta0, GammaGammaResult.NAMES, func)
    return GammaGammaResult(
        params=_params_table(GammaGammaResult.NAMES, fit.theta, fit.cov_log, level),
        cov_log=fit.cov_log,
        loglik=fit.loglik,
        customers=int(round(n.sum())),
        transactions=float((n * x).sum()),
        frequency_spend_corr=corr,
        converged=fit.converged,
        iterations=fit.iterations,
        level=level,
    )


# ============================================================ CLV
@dataclass(frozen=True, eq=False)
class CLVResult(Result):
    """Customer lifetime value over a horizon.

    ``customers`` has one row per summary row: ``expected_purchases`` (in the
    horizon), ``probability_alive``, ``expected_spend`` (per transaction),
    ``discounted_purchases`` and ``clv``; with the summary's own index and its
    count column ``n`` (1 per row for a per-customer summary)."""

    customers: pd.DataFrame = field(repr=False)
    horizon: float
    discount_rate: float
    time_unit: str
    step: float
    model: str

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

    def summary(self) -> pd.DataFrame:
        rows = {
            "customers": float(self.n.sum()),
            "mean_clv": self.mean_clv,
            "median_clv": self.median_clv,
            "total_clv": self.total_clv,
            "top20_share": self.top_share(0.2),
            "mean_expected_purchases": self._mean("expected_purchases"),
            "mean_discounted_purchases": self._mean("discounted_purchases"),
            "mean_probability_alive": self._mean("probability_alive"),
            "mean_expected_spend": self._mean("expected_spend"),
        }
        return pd.DataFrame({"value": rows}).rename_axis("quantity")

    def to_metrics(self, prefix: str = "clv") -> dict:
        s = self.summary()["value"]
        out = {f"{prefix}.{k}": float(v) for k, v in s.items()}
        out[f"{prefix}.horizon"] = self.horizon
        out[f"{prefix}.discount_rate"] = self.discount_rate
        return out

    def _repr_html_(self) -> str:
        head = f"<strong>CLVResult</strong> — {self.model}, horizon {self.horizon:g} {self.time_unit}s, annual discount rate {self.discount_rate:.1%}"
        return head + self.summary().to_html(float_format=lambda v: f"{v:,.4g}")


def discount_factors(times, *, discount_rate: float, time_unit: str) -> np.ndarray:
    """``(1 + d)^(-t / units_per_year)``: the value today of 1 paid at time ``t`` (in ``time_unit``)."""
    if time_unit not in UNITS_PER_YEAR:
        raise ParameterError(f"time_unit must be one of {', '.join(UNITS_PER_YEAR)}, got {time_unit!r}")
    return (1.0 + discount_rate) ** (-np.asarray(times, dtype=float) / UNITS_PER_YEAR[time_unit])


def customer_lifetime_value(
    purchases: _CountingResult,
    spend: GammaGammaResult,
    summary,
    *,
    horizon: float,
    discount_rate: float,
    time_unit: str = "week",
    step: float | None = None,
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
    monetary_value: str = "monetary_value",
    weights: str | None = None,
) -> CLVResult:
    """Discounted customer lifetime value over ``horizon`` (in ``time_unit``) for each summary row.

    ``CLV_i = E[M_i] * sum_{k=1..K} (E[X_i(t_k)] - E[X_i(t_{k-1})]) * (1 + d)^(-t_k / P)``

    with ``E[X_i(t)]`` the conditional expected repeat purchases in ``(T_i, T_i + t]``
    from ``purchases`` (BG/NBD or Pareto/NBD), ``E[M_i]`` the Gamma-Gamma
    conditional expected spend per transaction, ``t_k = min(k * step, horizon)``,
    ``K = ceil(horizon / step)``, ``d`` the annual ``discount_rate`` and ``P``
    the time units per year (52.18 weeks, 365.25 days). Purchases in each step
    are discounted at the step's end. ``step`` defaults to about a month
    (4.35 weeks or 30.44 days), capped at the horizon. Spend and purchases are
    independent in the Gamma-Gamma model, so their expectations multiply.
    """
    func = "customer_lifetime_value"
    if not isinstance(purchases, _CountingResult):
        raise ParameterError(f"{func}: purchases must be a fitted BG/NBD or Pareto/NBD result, got {type(purchases).__name__}")
    if not isinstance(spend, GammaGammaResult):
        raise ParameterError(f"{func}: spend must be a fitted Gamma-Gamma result, got {type(spend).__name__}")
    horizon = _nonneg(horizon, "horizon", func)
    if horizon <= 0:
        raise ParameterError(f"{func}: horizon must be > 0 (in {time_unit}s), got {horizon!r}")
    d = float(discount_rate)
    if not np.isfinite(d) or d <= -1 or d > 10:
        raise ParameterError(f"{func}: discount_rate is an annual rate such as 0.10 (10%); got {discount_rate!r}")
    if time_unit not in UNITS_PER_YEAR:
        raise ParameterError(f"{func}: time_unit must be one of {', '.join(UNITS_PER_YEAR)}, got {time_unit!r}")
    if step is None:
        step = UNITS_PER_YEAR[time_unit] / 12.0
    step = min(_nonneg(step, "step", func), horizon)
    if step <= 0:
        raise ParameterError(f"{func}: step must be > 0")
    df = _table(summary, func)
    rfm = rfm_arrays(df, frequency=frequency, recency=recency, T=T, weights=None, func=func, compress=False)
    n = _weights(df, weights, func)
    k = int(math.ceil(horizon / step - 1e-9))
    grid = np.minimum(np.arange(0, k + 1) * step, horizon)
    disc = discount_factors(grid[1:], discount_rate=d, time_unit=time_unit)

    def stats_for(x, tx, big_t):
        cum = np.column_stack([np.zeros_like(x)] + [purchases._conditional_expected(x, tx, big_t, t) for t in grid[1:]])
        inc = np.diff(cum, axis=1)
        return np.column_stack([cum[:, -1], inc @ disc, purchases._p_alive(x, tx, big_t)])

    out = _by_unique(stats_for, rfm.x, rfm.tx, rfm.T)
    m = _column(df, monetary_value, func, "monetary_value column: mean spend per repeat purchase") if monetary_value in df.columns else np.full(len(df), np.nan)
    if monetary_value not in df.columns and (rfm.x > 0).any():
        raise ParameterError(f"{func}: the summary has no column {monetary_value!r}; CLV needs each repeat customer's mean spend (repeat_summary's monetary_value).")
    e_spend = spend._expected(rfm.x, m)
    frame = pd.DataFrame(
        {
            "frequency": rfm.x,
            "recency": rfm.tx,
            "T": rfm.T,
            "n": n,
            "expected_purchases": out[:, 0],
            "discounted_purchases": out[:, 1],
            "probability_alive": out[:, 2],
            "expected_spend": e_spend,
        },
        index=df.index,
    )
    frame["clv"] = frame["discounted_purchases"] * frame["expected_spend"]
    return CLVResult(customers=frame, horizon=horizon, discount_rate=d, time_unit=time_unit, step=step, model=purchases.LABEL)


# ============================================================ validation
@dataclass(frozen=True, eq=False)
class HoldoutComparison(Result):
    """Actual versus expected holdout purchases by calibration frequency.

    ``table``: one row per calibration frequency (the last bucket is
    ``max_frequency`` and more): ``customers``, ``actual`` and ``expected``
    (mean holdout purchases per customer), ``actual_total``, ``expected_total``."""

    table: pd.DataFrame
    duration: float
    model: str
    time_unit: str | None = None

    @property
    def actual_total(self) -> float:
        return float(self.table["actual_total"].sum())

    @property
    def expected_total(self) -> float:
        return float(self.table["expected_total"].sum())

    @property
    def total_error(self) -> float:
        """(expected - actual) / actual over all customers."""
        return self.expected_total / self.actual_total - 1.0 if self.actual_total > 0 else float("nan")

    @property
    def mean_abs_error(self) -> float:
        """Customer-weighted mean absolute difference of the per-customer means across buckets."""
        t = self.table
        return float(np.average(np.abs(t["expected"] - t["actual"]), weights=t["customers"]))

    def summary(self) -> pd.DataFrame:
        return self.table.copy()

    def to_metrics(self, prefix: str | None = None) -> dict:
        prefix = prefix or f"clv.holdout.{self.model.lower().replace('/', '_').replace('-', '_')}"
        return {
            f"{prefix}.actual_total": self.actual_total,
            f"{prefix}.expected_total": self.expected_total,
            f"{prefix}.total_error": self.total_error,
            f"{prefix}.mean_abs_error": self.mean_abs_error,
            f"{prefix}.duration": self.duration,
        }


def holdout_comparison(
    purchases: _CountingResult,
    summary,
    *,
    duration: float | None = None,
    max_frequency: int = 7,
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
    holdout: str | None = None,
    duration_holdout: str = "duration_holdout",
    weights: str | None = None,
) -> HoldoutComparison:
    """Compare actual holdout purchases with the model's conditional expectations, by calibration frequency.

    ``holdout`` is the column of holdout purchases: ``frequency_holdout`` (per
    customer) or ``frequency_holdout_sum`` (per compressed pattern; the sum over
    its ``n`` customers), found automatically when not given. ``duration`` is the
    holdout length in the summary's time unit; by default the column
    ``duration_holdout``."""
    func = "holdout_comparison"
    if not isinstance(purchases, _CountingResult):
        raise ParameterError(f"{func}: purchases must be a fitted BG/NBD or Pareto/NBD result, got {type(purchases).__name__}")
    df = _table(summary, func)
    if holdout is None:
        holdout = next((c for c in ("frequency_holdout", "frequency_holdout_sum") if c in df.columns), None)
        if holdout is None:
            raise ParameterError(f"{func}: the summary has no holdout purchases column (frequency_holdout or frequency_holdout_sum); build it with a holdout_end after calibration_end.")
    actual = _column(df, holdout, func, "holdout purchases column")
    n = _weights(df, weights, func)
    if duration is None:
        if duration_holdout not in df.columns:
            raise ParameterError(f"{func}: give duration= (the holdout length in the summary's time unit) or a {duration_holdout!r} column.")
        dur = _column(df, duration_holdout, func, "holdout duration column")
    else:
        dur = np.full(len(df), _nonneg(duration, "duration", func))
    if not np.all(np.isfinite(dur)) or (dur <= 0).all():
        raise ModelError(f"{func}: the holdout period is empty (duration {np.nanmax(dur) if len(dur) else 0:g}); choose a calibration_end before the end of the data.")
    rfm = rfm_arrays(df, frequency=frequency, recency=recency, T=T, weights=None, func=func, compress=False)
    expected = np.empty(len(df))
    for d in np.unique(dur):
        sel = dur == d
        expected[sel] = _by_unique(lambda a, b, c: purchases._conditional_expected(a, b, c, float(d)), rfm.x[sel], rfm.tx[sel], rfm.T[sel])
    per_row_actual_total = actual if holdout.endswith("_sum") else actual * n
    bucket = np.minimum(rfm.x, max_frequency).astype(int)
    t = (
        pd.DataFrame({"frequency": bucket, "customers": n, "actual_total": per_row_actual_total, "expected_total": expected * n})
        .groupby("frequency")
        .sum()
    )
    t["actual"] = t["actual_total"] / t["customers"]
    t["expected"] = t["expected_total"] / t["customers"]
    labels = [str(i) if i < max_frequency else f"{max_frequency}+" for i in t.index]
    t.index = pd.Index(labels, name="calibration_frequency")
    t = t[["customers", "actual", "expected", "actual_total", "expected_total"]]
    return HoldoutComparison(table=t, duration=float(np.max(dur)), model=purchases.LABEL, time_unit=purchases.time_unit)


def expected_cumulative_repeat(purchases: _CountingResult, *, acquisitions, times) -> pd.DataFrame:
    """Expected cumulative repeat purchases of a customer base over calendar time, for a tracking plot.

    ``acquisitions``: a DataFrame with ``t`` (time of each cohort's first
    purchase, in the model's time unit, on the same clock as ``times``) and
    ``n`` (customers first buying then). Returns ``time`` and
    ``expected_cumulative = sum_j n_j E[X(time - t_j)]`` (over cohorts already
    acquired) and ``expected`` (the increment over the previous time)."""
    func = "expected_cumulative_repeat"
    acq = _table(acquisitions, func)
    t0 = _column(acq, "t", func, "t column: time of first purchase")
    n = _column(acq, "n", func, "n column: customers acquired")
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
    ``models``: fitted BG/NBD or Pareto/NBD results by display name. Periods are
    weeks (``time_unit="week"``) or days counted from the first acquisition day:
    period ``k`` ends at the end of day ``origin + k * length - 1``, when a customer
    acquired on day ``d`` has age ``D - d`` days (as ``T`` in the repeat summary),
    and her repeat purchases on days up to ``D`` are counted. Returns ``time``
    (period number k), ``actual`` (repeat purchases in the period) and
    ``expected_<name>`` per model."""
    func = "tracking_table"
    df = _table(daily, func)
    day = _column(df, "day", func, "day column: integer day number")
    new = _column(df, "new_customers", func, "new_customers column")
    rep = _column(df, "repeat_purchases", func, "repeat_purchases column")
    if time_unit not in UNITS_PER_YEAR:
        raise ParameterError(f"{func}: time_unit must be one of {', '.join(UNITS_PER_YEAR)}, got {time_unit!r}")
    if not len(day) or new.sum() <= 0:
        raise ModelError(f"{func}: no customers acquired in the table; nothing to track.")
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

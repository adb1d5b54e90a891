"""Pareto/NBD (Schmittlein, Morrison and Colombo 1987).

The BG/NBD purchase process (``lambda ~ Gamma(r, rate alpha)``) and an
exponential lifetime with rate ``mu ~ Gamma(s, rate beta)``. The likelihood
uses the Gaussian hypergeometric form of Fader and Hardie's note "Deriving an
expression for P(X(t) = x) under the Pareto/NBD model" (2005, eqs. 18-20),
switching on ``alpha >= beta``, evaluated in log space after Euler's
transformation ``2F1(a, b; a+1; z) = (1-z)^(1-b) 2F1(1, a+1-b; a+1; z)``,
whose right-hand side stays bounded, so customers with hundreds of purchases
neither overflow nor underflow. Covariates act on ``alpha`` (purchase rate)
and ``beta`` (drop-out rate) as in Fader and Hardie (2007).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import special

from workbench.models.clv.counting import CountingResult, fit_counting, start_rates
from workbench.models.clv.rfm import RFM


def log1mexp(u):
    """log(1 - exp(u)) for u <= 0, accurate everywhere."""
    u = np.asarray(u, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(u > -math.log(2.0), np.log(-np.expm1(u)), np.log1p(-np.exp(u)))


def _logF(r, alpha, s, beta, x, t, gradient: bool = False):
    """log of ``2F1(r+s+x, b; r+s+x+1; z(t)) / (m + t)^(r+s+x)`` (Fader-Hardie eq. 19/20 terms), with
    ``m = max(alpha, beta)``, ``z(t) = |alpha - beta| / (m + t)`` and ``b = s + 1`` if ``alpha >= beta``
    else ``r + x``; via Euler's transformation so the hypergeometric factor ``h = 2F1(1, B; C; z)``
    stays bounded.

    With ``gradient=True`` also the derivatives with respect to ``(r, alpha, s, beta)`` (``len x 4``):
    analytic except those of ``log h`` with respect to its parameters ``B`` and ``C`` (central
    differences; ``log h`` is of order one, so they are accurate to about 1e-10); ``d h / d z`` is
    exact, ``(B / C) 2F1(2, B+1; C+1; z)``."""
    swap = alpha < beta  # m = beta: the roles of (r, alpha) and (s, beta) exchange in b
    m, mn = (beta, alpha) if swap else (alpha, beta)
    bb = r + x if swap else s + 1.0 + 0.0 * x
    aa = r + s + x
    lm, lmn = np.log(m + t), np.log(mn + t)
    z = (m - mn) / (m + t)
    B, C = aa + 1.0 - bb, aa + 1.0
    h = special.hyp2f1(1.0, B, C, z)
    val = (1.0 - bb) * (lmn - lm) + np.log(h) - aa * lm
    if not gradient:
        return val
    eB, eC = 1e-5 * (1.0 + B), 1e-5 * (1.0 + C)
    dB = (np.log(special.hyp2f1(1.0, B + eB, C, z)) - np.log(special.hyp2f1(1.0, B - eB, C, z))) / (2.0 * eB)
    dC = (np.log(special.hyp2f1(1.0, B, C + eC, z)) - np.log(special.hyp2f1(1.0, B, C - eC, z))) / (2.0 * eC)
    dz = B / C * special.hyp2f1(2.0, B + 1.0, C + 1.0, z) / h  # d log h / dz
    im, imn = 1.0 / (m + t), 1.0 / (mn + t)
    # the parameter in b (s, or r when swapped) moves b and C; the other moves B and C
    d_in_b = dC - lmn
    d_other = dB + dC - lm
    d_m = -(1.0 - bb) * im + dz * (mn + t) * im * im - aa * im
    d_mn = (1.0 - bb) * imn - dz * im
    grad = np.column_stack([d_in_b, d_mn, d_other, d_m] if swap else [d_other, d_m, d_in_b, d_mn])
    return val, grad


def _pair_index(x, t):
    """The distinct (x, t) pairs: ``(index of each row's pair, first row of each pair)``, by hashing
    (``pd.factorize``), not sorting."""
    cx, _ = pd.factorize(x)
    ct, ut = pd.factorize(t)
    inv, uniq = pd.factorize(cx.astype(np.int64) * len(ut) + ct)
    first = np.empty(len(uniq), dtype=np.int64)
    first[inv[::-1]] = np.arange(len(inv) - 1, -1, -1)
    return inv, first


class Rows:
    """Pareto/NBD rows with the distinct frequencies, (x, t_x) pairs and (x, T) pairs indexed once,
    so each likelihood evaluation computes each hypergeometric term once per distinct pair."""

    def __init__(self, x, tx, T):
        self.x, self.tx, self.T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        self.ux, self.ix = np.unique(self.x, return_inverse=True)
        self.ix = self.ix.ravel()
        self.i_tx, first = _pair_index(self.x, self.tx)
        self.x_tx, self.t_tx = self.x[first], self.tx[first]
        self.i_T, first = _pair_index(self.x, self.T)
        self.x_T, self.t_T = self.x[first], self.T[first]


def pareto_nbd_loglik(params, x, tx, T, *, rows: Rows | None = None, parts: bool = False, gradient: bool = False, weights=None):
    """Pareto/NBD log-likelihood of each (x, t_x, T) row, in log space.

    ``L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0 ]``
    with ``A0 = F(t_x) - F(T)`` (Fader and Hardie 2005 note, eqs. 18-20). The bracket is summed as
    ``s/(r+s+x) F(t_x) + G(T)``, ``G(T) = (alpha+T)^-(r+x) (beta+T)^-s - s/(r+s+x) F(T) > 0`` (the
    probability of no purchase in ``(t_x, T]`` beyond what the death term covers), so every term
    is computed once per distinct (x, t_x) or (x, T) pair and each row needs a single
    ``logaddexp``. With ``parts=True`` returns ``(ll, log_alive_term, log_dead_term)`` (their
    difference gives P(alive)); with ``gradient=True`` ``(ll, derivatives with respect to (r, alpha,
    s, beta))``, the pair terms' derivatives combined per row by the rows' shares of the two terms;
    given ``weights`` (the rows' counts) the derivatives come as their weighted total (a 4-vector),
    summed per pair (``bincount`` of the weighted shares), which needs no per-row gradient."""
    r, alpha, s, beta = (float(v) for v in params)
    if rows is None:
        rows = Rows(x, tx, T)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ls = math.log(s)
        # per (x, t_x) pair: log of s/(r+s+x) F(t_x)
        xp = rows.x_tx
        fp = _logF(r, alpha, s, beta, xp, rows.t_tx, gradient)
        P = ls - np.log(r + s + xp) + (fp[0] if gradient else fp)
        # per (x, T) pair: the alive term and log G(T) = alive + log(1 - s/(r+s+x) F(T) / alive)
        xq, tq = rows.x_T, rows.t_T
        fq = _logF(r, alpha, s, beta, xq, tq, gradient)
        alive = -(r + xq) * np.log(alpha + tq) - s * np.log(beta + tq)
        dead_T = ls - np.log(r + s + xq) + (fq[0] if gradient else fq)
        u = np.minimum(dead_T - alive, 0.0)
        Q = alive + log1mexp(u)
        const = r * math.log(alpha) + s * math.log(beta) - special.gammaln(r)
        Pr, Qr = P[rows.i_tx], Q[rows.i_T]
        lse = np.logaddexp(Pr, Qr)
        ll = (special.gammaln(rows.ux + r) + const)[rows.ix] + lse
    if parts:
        a, d = alive[rows.i_T], Pr + log1mexp(np.minimum(dead_T[rows.i_T] - Pr, 0.0))
        return ll, a, d
    if not gradient:
        return ll
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # d/d(r, alpha, s, beta) of log(s/(r+s+x)) per pair, and of the alive term
        def front(xv):
            k = -1.0 / (r + s + xv)
            return np.column_stack([k, np.zeros_like(xv), 1.0 / s + k, np.zeros_like(xv)])

        gP = front(xp) + fp[1]
        g_dead = front(xq) + fq[1]
        g_alive = np.column_stack([-np.log(alpha + tq), -(r + xq) / (alpha + tq), -np.log(beta + tq), -s / (beta + tq)])
        kappa = -1.0 / np.expm1(-u)  # d log(1 - e^u) / du
        gQ = g_alive + kappa[:, None] * (g_dead - g_alive)
        wP = np.exp(Pr - lse)  # the row's share of the (x, t_x) term
        g0 = np.column_stack([special.digamma(rows.ux + r) - special.digamma(r) + math.log(alpha), np.full(len(rows.ux), r / alpha),
                              np.full(len(rows.ux), math.log(beta)), np.full(len(rows.ux), s / beta)])
        if weights is not None:
            w = np.asarray(weights, dtype=float)
            nwP = w * wP
            on_P = np.bincount(rows.i_tx, nwP, len(xp))
            on_Q = np.bincount(rows.i_T, w, len(xq)) - np.bincount(rows.i_T, nwP, len(xq))
            return ll, np.bincount(rows.ix, w, len(rows.ux)) @ g0 + on_P @ gP + on_Q @ gQ
        g = g0[rows.ix] + gQ[rows.i_T]
        g += wP[:, None] * (gP[rows.i_tx] - gQ[rows.i_T])
    return ll, g


class ParetoNBDResult(CountingResult):
    """A fitted Pareto/NBD model: ``r, alpha`` (Gamma purchase rates), ``s, beta`` (Gamma drop-out rates)."""

    NAMES: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    PREFIX: ClassVar[str] = "clv.pareto_nbd"
    LABEL: ClassVar[str] = "Pareto/NBD"
    LINKS: ClassVar[dict[str, int]] = {"alpha": -1, "beta": -1}
    GRADIENT: ClassVar[bool] = True
    TOTAL_GRADIENT: ClassVar[bool] = True

    @property
    def s(self) -> float:
        return self.param("s")

    @property
    def beta(self) -> float:
        return self.param("beta")

    prepare = staticmethod(Rows)

    @staticmethod
    def loglik_rows(params, rows, gradient=False, weights=None):
        return pareto_nbd_loglik(params, None, None, None, rows=rows, gradient=gradient, weights=weights)

    @staticmethod
    def start(rfm: RFM) -> np.ndarray:
        r0, a0 = start_rates(rfm)
        return np.log([r0 * 0.5, a0 * 0.5, 0.5, float(np.average(rfm.T, weights=rfm.n))])

    @staticmethod
    def p_alive(params, x, tx, T):
        _, alive, dead = pareto_nbd_loglik(params, x, tx, T, parts=True)
        return special.expit(alive - dead)

    @staticmethod
    def conditional_expected(params, x, tx, T, t):
        """``P(alive) (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]`` (Schmittlein et al. 1987)."""
        r, alpha, s, beta = params
        x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        u = np.log1p(t / (beta + T))
        # [1 - exp(-(s-1) u)] / (s-1), continuous at s = 1
        k = -np.expm1(-(s - 1.0) * u) / (s - 1.0) if abs(s - 1.0) > 1e-10 else u
        return ParetoNBDResult.p_alive(params, x, tx, T) * (r + x) * (beta + T) / (alpha + T) * k


def fit_pareto_nbd(
    summary,
    *,
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
    weights: str | None = None,
    covariates=None,
    reference: dict | None = None,
    level: float = 0.95,
    time_unit: str | None = None,
) -> ParetoNBDResult:
    """Fit the Pareto/NBD model by maximum likelihood, with standard errors and intervals for
    ``r, alpha, s, beta``. ``covariates`` shift ``alpha`` and ``beta``: ``alpha_i = alpha0
    exp(-g1'z)``, ``beta_i = beta0 exp(-g2'z)``, so ``exp(g1)`` and ``exp(g2)`` are the ratios of the
    mean purchase and drop-out rates. Other arguments and errors as :func:`~workbench.models.clv.fit_bgnbd`."""
    return fit_counting(ParetoNBDResult, summary, frequency=frequency, recency=recency, T=T, weights=weights, covariates=covariates,
                        reference=reference, level=level, time_unit=time_unit, func="fit_pareto_nbd")

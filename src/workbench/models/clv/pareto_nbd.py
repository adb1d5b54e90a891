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
from scipy import special

from workbench.models.clv.counting import CountingResult, fit_counting, start_rates
from workbench.models.clv.rfm import RFM


def log1mexp(u):
    """log(1 - exp(u)) for u <= 0, accurate everywhere."""
    u = np.asarray(u, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(u > -math.log(2.0), np.log(-np.expm1(u)), np.log1p(-np.exp(u)))


def _logF(r, alpha, s, beta, x, t):
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


class Rows:
    """Pareto/NBD rows with the (x, t_x) and (x, T) pairs de-duplicated once, so each likelihood
    evaluation computes each hypergeometric term only once per distinct pair."""

    def __init__(self, x, tx, T):
        self.x, self.tx, self.T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        self.ux, self.ix = np.unique(self.x, return_inverse=True)
        self.ix = self.ix.ravel()
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
            return _logF(r, alpha, s, beta, self.x, t)
        return _logF(r, alpha, s, beta, pairs[:, 0], pairs[:, 1])[inv]


def pareto_nbd_loglik(params, x, tx, T, *, rows: Rows | None = None, parts: bool = False):
    """Pareto/NBD log-likelihood of each (x, t_x, T) row, in log space.

    ``L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0 ]``
    with ``A0 = F(t_x) - F(T)`` (Fader and Hardie 2005 note, eqs. 18-20). With
    ``parts=True`` returns ``(ll, log_alive_term, log_dead_term)`` (their
    difference gives P(alive))."""
    r, alpha, s, beta = (float(v) for v in params)
    if rows is None:
        rows = Rows(x, tx, T)
    x, T = rows.x, rows.T
    with np.errstate(divide="ignore", invalid="ignore"):
        f_tx = rows.logF(r, alpha, s, beta, "tx")
        f_T = rows.logF(r, alpha, s, beta, "T")
        log_a0 = f_tx + log1mexp(np.minimum(f_T - f_tx, 0.0))
        alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        dead = math.log(s) - np.log(r + s + x) + log_a0
        lgr = special.gammaln(rows.ux + r)[rows.ix] - special.gammaln(r)
        ll = lgr + r * math.log(alpha) + s * math.log(beta) + np.logaddexp(alive, dead)
    if parts:
        return ll, alive, dead
    return ll


class ParetoNBDResult(CountingResult):
    """A fitted Pareto/NBD model: ``r, alpha`` (Gamma purchase rates), ``s, beta`` (Gamma drop-out rates)."""

    NAMES: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    PREFIX: ClassVar[str] = "clv.pareto_nbd"
    LABEL: ClassVar[str] = "Pareto/NBD"
    LINKS: ClassVar[dict[str, int]] = {"alpha": -1, "beta": -1}
    GRADIENT: ClassVar[bool] = False

    @property
    def s(self) -> float:
        return self.param("s")

    @property
    def beta(self) -> float:
        return self.param("beta")

    prepare = staticmethod(Rows)

    @staticmethod
    def loglik_rows(params, rows, gradient=False):
        return pareto_nbd_loglik(params, None, None, None, rows=rows)

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

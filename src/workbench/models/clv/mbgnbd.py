"""MBG/NBD (Batislam, Denizel and Filiztekin 2007, with Wagner and Hoppe's
2008 erratum): BG/NBD in which a customer may also drop out at time 0, right
after her first purchase, so customers without repeat purchases are not
certainly alive.

With ``w = t / (alpha + T + t)``:

* ``log L = lgamma(r+x) - lgamma(r) + r log(alpha) - log B(a, b) +
  logsumexp(log B(a, b+x+1) - (r+x) log(alpha+T), log B(a+1, b+x) - (r+x) log(alpha+t_x))``;
* ``P(alive at T) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))``;
* ``E[X(T, T+t)] = P(alive) (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; w)]``,
  the hypergeometric term rewritten by Euler's transformation as
  ``(1-w)^(a-1) 2F1(a+b-r, a-1; a+b+x; w)``, which stays bounded.

These are the formulas of ``lifetimes``' ``ModifiedBetaGeoFitter`` (tested
against it). Covariates act on ``alpha``, ``a`` and ``b`` as in BG/NBD.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from scipy import special

from workbench.models.clv.bgnbd import Rows
from workbench.models.clv.counting import CountingResult, fit_counting, start_rates
from workbench.models.clv.rfm import RFM


def mbgnbd_loglik(params, x, tx, T, *, gradient: bool = False, rows: Rows | None = None):
    """MBG/NBD log-likelihood of each (x, t_x, T) row (see the module docstring); with
    ``gradient=True`` also the derivatives with respect to ``(r, alpha, a, b)``."""
    r, alpha, a, b = (float(v) for v in params)
    if rows is None:
        rows = Rows(x, tx, T)
    ux, ix = rows.ux, rows.ix
    x, tx, T = rows.x, rows.tx, rows.T
    with np.errstate(invalid="ignore", divide="ignore"):
        la_T = np.log(alpha + T)
        la_tx = np.log(alpha + tx)
        rx = r + x
        A = special.betaln(a, b + ux + 1.0)[ix] - rx * la_T
        B = special.betaln(a + 1.0, b + ux)[ix] - rx * la_tx
        lse = np.logaddexp(A, B)
        ll = special.gammaln(r + ux)[ix] + (r * math.log(alpha) - special.gammaln(r) - special.betaln(a, b)) + lse
    if not gradient:
        return ll
    wB = np.exp(B - lse)
    wA = 1.0 - wB
    psi_abx1 = special.digamma(a + b + ux + 1.0)[ix]
    ab = special.digamma(a + b)
    d_r = special.digamma(r + ux)[ix] + (math.log(alpha) - special.digamma(r)) - wA * la_T - wB * la_tx
    d_alpha = r / alpha - rx * (wA / (alpha + T) + wB / (alpha + tx))
    d_a = ab - psi_abx1 + wB / a
    d_b = (ab - special.digamma(b)) - psi_abx1 + special.digamma(b + ux + 1.0)[ix] - wB / (b + x)
    return ll, np.column_stack([d_r, d_alpha, d_a, d_b])


class MBGNBDResult(CountingResult):
    """A fitted MBG/NBD model: ``r, alpha`` (Gamma purchase rates), ``a, b`` (Beta drop-out probability,
    at time 0 and after each purchase)."""

    NAMES: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    PREFIX: ClassVar[str] = "clv.mbgnbd"
    LABEL: ClassVar[str] = "MBG/NBD"
    LINKS: ClassVar[dict[str, int]] = {"alpha": -1, "a": 1, "b": 1}
    GRADIENT: ClassVar[bool] = True

    @property
    def a(self) -> float:
        return self.param("a")

    @property
    def b(self) -> float:
        return self.param("b")

    prepare = staticmethod(Rows)

    @staticmethod
    def loglik_rows(params, rows, gradient=False):
        return mbgnbd_loglik(params, None, None, None, gradient=gradient, rows=rows)

    @staticmethod
    def start(rfm: RFM) -> np.ndarray:
        r0, a0 = start_rates(rfm)
        return np.log([r0 * 0.5, a0 * 0.5, 1.0, 3.0])

    @staticmethod
    def p_alive(params, x, tx, T):
        r, alpha, a, b = params
        x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = math.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return special.expit(-log_ratio)

    @staticmethod
    def conditional_expected(params, x, tx, T, t):
        r, alpha, a, b = params
        x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        w = t / (alpha + T + t)
        with np.errstate(divide="ignore", invalid="ignore"):
            log1w = np.log(alpha + T) - np.log(alpha + T + t)
            hyp = special.hyp2f1(a + b - r, a - 1.0, a + b + x, w)
            bracket = -np.expm1((a - 1.0) * log1w) - np.exp((a - 1.0) * log1w) * (hyp - 1.0)
            out = (a + b + x) / (a - 1.0) * bracket
        return out * MBGNBDResult.p_alive(params, x, tx, T)


def fit_mbgnbd(
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
) -> MBGNBDResult:
    """Fit the MBG/NBD model by maximum likelihood (arguments, covariates and errors as
    :func:`~workbench.models.clv.fit_bgnbd`)."""
    return fit_counting(MBGNBDResult, summary, frequency=frequency, recency=recency, T=T, weights=weights, covariates=covariates,
                        reference=reference, level=level, time_unit=time_unit, func="fit_mbgnbd")

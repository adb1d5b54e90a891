"""BG/NBD (Fader, Hardie and Lee 2005, "Counting your customers the easy way").

While alive a customer buys as a Poisson process with rate ``lambda ~
Gamma(r, rate alpha)``; after each purchase she drops out with probability
``p ~ Beta(a, b)``. Covariates act on ``alpha`` (purchase rate), ``a`` and
``b`` (drop-out), as in Fader and Hardie (2007); see
:mod:`workbench.models.clv.counting`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from scipy import special

from workbench.models.clv.counting import CountingResult, fit_counting, start_rates
from workbench.models.clv.rfm import RFM


class Rows:
    """(x, t_x, T) rows with the distinct frequencies indexed once: every term that depends on ``x``
    alone (gamma and beta functions) is computed per distinct ``x`` and gathered."""

    def __init__(self, x, tx, T):
        self.x, self.tx, self.T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        self.ux, self.ix = np.unique(self.x, return_inverse=True)
        self.ix = self.ix.ravel()
        self.rep = self.x > 0


def bgnbd_loglik(params, x, tx, T, *, gradient: bool = False, rows: Rows | None = None):
    """BG/NBD log-likelihood of each (x, t_x, T) row (Fader, Hardie and Lee 2005, eq. 6), in log space:

    ``log L = lgamma(r+x) - lgamma(r) + r log(alpha) - log B(a, b) + logsumexp(A, B)`` with
    ``A = log B(a, b+x) - (r+x) log(alpha+T)`` and, for x > 0, ``B = log B(a+1, b+x-1) - (r+x) log(alpha+t_x)``.

    With ``gradient=True`` also the rows' derivatives with respect to
    ``(r, alpha, a, b)`` (an ``n x 4`` array)."""
    r, alpha, a, b = (float(v) for v in params)
    if rows is None:
        rows = Rows(x, tx, T)
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


class BGNBDResult(CountingResult):
    """A fitted BG/NBD model: ``r, alpha`` (Gamma purchase rates), ``a, b`` (Beta drop-out probability)."""

    NAMES: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    PREFIX: ClassVar[str] = "clv.bgnbd"
    LABEL: ClassVar[str] = "BG/NBD"
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
        return bgnbd_loglik(params, None, None, None, gradient=gradient, rows=rows)

    @staticmethod
    def start(rfm: RFM) -> np.ndarray:
        r0, a0 = start_rates(rfm)
        return np.log([r0 * 0.5, a0 * 0.5, 1.0, 3.0])

    @staticmethod
    def p_alive(params, x, tx, T):
        """``1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``."""
        r, alpha, a, b = params
        x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.log(a) - np.log(np.where(x > 0, b + x - 1.0, 1.0)) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return np.where(x > 0, special.expit(-log_ratio), 1.0)

    @staticmethod
    def conditional_expected(params, x, tx, T, t):
        """FHL (2005) eq. 10, with Euler's transformation: ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x;
        a+b+x-1; w) = (1-w)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; w), w = t/(alpha+T+t), which stays bounded."""
        r, alpha, a, b = params
        x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        w = t / (alpha + T + t)
        with np.errstate(divide="ignore", invalid="ignore"):
            log1w = np.log(alpha + T) - np.log(alpha + T + t)
            hyp = special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, w)
            bracket = -np.expm1((a - 1.0) * log1w) - np.exp((a - 1.0) * log1w) * (hyp - 1.0)
            out = (a + b + x - 1.0) / (a - 1.0) * bracket
        return out * BGNBDResult.p_alive(params, x, tx, T)


def fit_bgnbd(
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
) -> BGNBDResult:
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
    covariates
        Categorical columns of the summary (e.g. ``("segment", "exposed")``)
        whose levels shift ``alpha`` (purchase rate), ``a`` and ``b``
        (drop-out): ``alpha_i = alpha0 exp(-g1'z)``, ``a_i = a0 exp(g2'z)``,
        ``b_i = b0 exp(g3'z)``. ``params`` are then the reference level's.
    reference
        Reference level per covariate (default: the level with most customers).
    level
        Confidence level of the intervals (log-scale Wald).
    time_unit
        ``"week"`` or ``"day"``: recorded on the result for labels.

    Raises
    ------
    DataError
        Impossible values in the summary (listed all at once).
    ModelError
        No repeat buyers (overall or in a covariate level), too few customers,
        a covariate with one level, or no interior optimum.
    """
    return fit_counting(BGNBDResult, summary, frequency=frequency, recency=recency, T=T, weights=weights, covariates=covariates,
                        reference=reference, level=level, time_unit=time_unit, func="fit_bgnbd")

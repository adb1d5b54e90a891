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
import pandas as pd
from scipy import special

from workbench.models.clv.counting import CountingResult, fit_counting, start_rates
from workbench.models.clv.rfm import RFM


class Rows:
    """(x, t_x, T) rows with the distinct frequencies indexed once: every term that depends on ``x``
    alone (gamma and beta functions) is computed per distinct ``x`` and gathered. The distinct
    ``T`` and ``t_x`` values are indexed too, for :func:`bgnbd_totals`."""

    def __init__(self, x, tx, T):
        self.x, self.tx, self.T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        self.ux, self.ix = np.unique(self.x, return_inverse=True)
        self.ix = self.ix.ravel()
        self.rep = self.x > 0
        self._totals = None

    def totals_layout(self, n):
        """The repeat rows' indices into their distinct x, T and t_x values and the counts summed
        over each (computed once per weights ``n``)."""
        if self._totals is None or self._totals[0] is not n:
            n = np.asarray(n, dtype=float)
            rep = self.rep
            iT, uT = pd.factorize(self.T[rep])  # hashing: cheaper than sorting
            itx, utx = pd.factorize(self.tx[rep])
            ix = self.ix[rep]
            nr, xr = n[rep], self.x[rep]
            nx = len(self.ux)
            zero_T = self.T[~rep]
            self._totals = (n, dict(
                ix=ix, iT=iT.ravel(), itx=itx.ravel(), uT=uT, utx=utx, n=nr, x=xr,
                N_x=np.bincount(ix, nr, nx), N_T=np.bincount(iT.ravel(), nr, len(uT)),
                NX_T=np.bincount(iT.ravel(), nr * xr, len(uT)),
                zero_T=zero_T, zero_n=n[~rep], N=float(n.sum()),
            ))
        return self._totals[1]


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


def bgnbd_totals(params, rows: Rows, n):
    """The count-weighted totals of the BG/NBD log-likelihood, its gradient and its Hessian with
    respect to ``(r, alpha, a, b)``, in one pass: ``sum(n * ll)``, a 4-vector and a 4 x 4 matrix.

    The sums over rows are taken per distinct value wherever a term depends on ``x``, ``T`` or
    ``t_x`` alone (``bincount`` of the rows' weights), so only the few quantities that mix them
    (the two terms' shares ``w_A``, ``w_B`` and their products) are computed per row. The
    Hessian of ``log(e^A + e^B)`` is ``w_A H_A + w_B H_B + w_A w_B (g_A - g_B)(g_A - g_B)'``.
    Customers without repeat purchases contribute ``r (log alpha - log(alpha + T))``."""
    r, alpha, a, b = (float(v) for v in params)
    L = rows.totals_layout(n)
    H = np.zeros((4, 4))
    g = np.zeros(4)
    # customers without repeat purchases
    zn = L["zero_n"]
    N0 = float(zn.sum())
    ll = 0.0
    if N0 > 0:
        lz = np.log(alpha + L["zero_T"])
        iz = 1.0 / (alpha + L["zero_T"])
        s_lz, s_iz, s_iz2 = float((zn * lz).sum()), float((zn * iz).sum()), float((zn * iz * iz).sum())
        la = math.log(alpha)
        ll = r * (N0 * la - s_lz)
        g[0] += N0 * la - s_lz
        g[1] += r * (N0 / alpha - s_iz)
        H[0, 1] += N0 / alpha - s_iz
        H[1, 1] += r * (s_iz2 - N0 / alpha**2)
    N_x = L["N_x"]
    Nrep = float(N_x.sum())
    if Nrep == 0:
        H = H + np.triu(H, 1).T
        return ll, g, H
    # repeat customers: per distinct x (x = 0, if present, has no weight here)
    ux = rows.ux
    xs = np.where(ux > 0, ux, 1.0)
    ix, iT, itx, nr, xr = L["ix"], L["iT"], L["itx"], L["n"], L["x"]
    uT, utx = L["uT"], L["utx"]
    with np.errstate(invalid="ignore", divide="ignore"):
        laT_u, latx_u = np.log(alpha + uT), np.log(alpha + utx)
        iT_u, itx_u = 1.0 / (alpha + uT), 1.0 / (alpha + utx)
        blA = special.betaln(a, b + xs)
        rx = r + xr
        # per row only d = B - A; log(e^A + e^B) = A + softplus(d), and A's total is summed per distinct value
        dr = latx_u[itx] - laT_u[iT]  # also the r-element of g_A - g_B
        d = (special.betaln(a + 1.0, b + xs - 1.0) - blA)[ix] - rx * dr
        e = np.abs(d)
        np.negative(e, out=e)
        np.exp(e, out=e)  # exp(-|d|)
        sp = np.log1p(e)
        sp += np.maximum(d, 0.0)  # softplus(d)
        np.add(e, 1.0, out=e)
        wB = np.where(d > 0, 1.0, e - 1.0) / e  # the share e^B / (e^A + e^B)
        sum_A = float(N_x @ blA) - float(laT_u @ (r * L["N_T"] + L["NX_T"]))
        ll += sum_A + float((nr * sp).sum()) + float(N_x @ special.gammaln(r + xs)) + Nrep * (r * math.log(alpha) - special.gammaln(r) - special.betaln(a, b))
        nwB = nr * wB
        q = nwB * xr
        SB_T, SB_tx = np.bincount(iT, nwB, len(uT)), np.bincount(itx, nwB, len(utx))
        SB_x = np.bincount(ix, nwB, len(ux))
        QB_T, QB_tx = np.bincount(iT, q, len(uT)), np.bincount(itx, q, len(utx))
        WA_T = L["N_T"] - SB_T  # sum of n w_A per distinct T
        RWA_T = r * L["N_T"] + L["NX_T"] - r * SB_T - QB_T  # sum of n (r+x) w_A per distinct T
        RWB_tx = r * SB_tx + QB_tx  # sum of n (r+x) w_B per distinct t_x
        inv_b = np.where(ux > 0, 1.0 / (b + xs - 1.0), 0.0)
        psi = special.digamma
        p1 = lambda v: special.polygamma(1, v)  # noqa: E731
        g[0] += float(N_x @ psi(r + xs)) + Nrep * (math.log(alpha) - psi(r)) - float(WA_T @ laT_u) - float(SB_tx @ latx_u)
        g[1] += Nrep * r / alpha - float(RWA_T @ iT_u) - float(RWB_tx @ itx_u)
        g[2] += Nrep * (psi(a + b) - psi(a)) + float(N_x @ (psi(a) - psi(a + b + xs))) + float(SB_x.sum()) / a
        g[3] += Nrep * (psi(a + b) - psi(b)) + float(N_x @ (psi(b + xs) - psi(a + b + xs))) - float(SB_x @ inv_b)
        # w_A H_A + w_B H_B and the terms that do not depend on the row's share
        H[0, 0] += float(N_x @ p1(r + xs)) - Nrep * p1(r)
        H[0, 1] += Nrep / alpha - float(WA_T @ iT_u) - float(SB_tx @ itx_u)
        H[1, 1] += -Nrep * r / alpha**2 + float(RWA_T @ (iT_u * iT_u)) + float(RWB_tx @ (itx_u * itx_u))
        p1_abx = p1(a + b + xs)
        H[2, 2] += -Nrep * (p1(a) - p1(a + b)) + float(N_x @ (p1(a) - p1_abx)) - float(SB_x.sum()) / a**2
        H[2, 3] += Nrep * p1(a + b) - float(N_x @ p1_abx)
        H[3, 3] += -Nrep * (p1(b) - p1(a + b)) + float(N_x @ (p1(b + xs) - p1_abx)) + float(SB_x @ np.where(ux > 0, p1(b + xs - 1.0) - p1(b + xs), 0.0))
        # w_A w_B (g_A - g_B)(g_A - g_B)': differences r: log(alpha+t_x) - log(alpha+T),
        # alpha: (r+x) (1/(alpha+t_x) - 1/(alpha+T)), a: -1/a, b: 1/(b+x-1)
        v = nwB - nwB * wB
        dal = rx * (itx_u[itx] - iT_u[iT])
        vdr, vda = v * dr, v * dal
        V_x = np.bincount(ix, v, len(ux))
        H[0, 0] += float((vdr * dr).sum())
        H[0, 1] += float((vdr * dal).sum())
        H[1, 1] += float((vda * dal).sum())
        H[0, 2] += -float(vdr.sum()) / a
        H[1, 2] += -float(vda.sum()) / a
        H[0, 3] += float(np.bincount(ix, vdr, len(ux)) @ inv_b)
        H[1, 3] += float(np.bincount(ix, vda, len(ux)) @ inv_b)
        H[2, 2] += float(V_x.sum()) / a**2
        H[2, 3] += -float(V_x @ inv_b) / a
        H[3, 3] += float(V_x @ (inv_b * inv_b))
    H = H + np.triu(H, 1).T
    return ll, g, H


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
    loglik_totals = staticmethod(bgnbd_totals)

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

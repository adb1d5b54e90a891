"""The vectorised Cox partial likelihood behind :func:`~workbench.models.survival.fit_cox`.

Rows are at risk on ``(start, stop]``. The distinct event times of each
stratum form a grid of slots; a row covers the slots ``j_lo .. j_hi - 1``, so
a sum over every slot's risk set is one ``bincount`` at ``j_lo``, one at
``j_hi`` and a cumulative sum: O(n) per quantity after an O(n log n) sort.

Ties. A slot with ``m`` tied events of total weight ``d`` contributes *terms*
``(f, mw)`` to the likelihood: ``-mw * log(S0 - f * S0D)`` where ``S0`` sums
the risk over the risk set and ``S0D`` over the tied events. Breslow: one term
with ``f = 0`` and ``mw = d``. Efron: ``m`` terms ``f = 0, 1/m, ..., (m-1)/m``
with ``mw = d / m`` (the mean weight of the tied events, as R's ``coxph`` with
case weights). Gradient, information and score residuals follow the same
terms, so both methods share every line of code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.errors import ModelError

TIES = ("efron", "breslow")


@dataclass
class CoxState:
    """Risk-set bookkeeping that does not depend on the coefficients."""

    j_lo: np.ndarray  # first grid slot at which the row is at risk
    j_hi: np.ndarray  # first grid slot past the row's risk window
    j_ev: np.ndarray  # grid slot of each event row
    ev_rows: np.ndarray  # indices of event rows (event and positive weight)
    grid_time: np.ndarray  # event time of each grid slot (nan on the spare slot per stratum)
    size: int
    t_slot: np.ndarray  # slot of each tie term
    t_f: np.ndarray  # Efron fraction of each term (0 under Breslow)
    t_mw: np.ndarray  # weight of each term
    t_count: np.ndarray  # terms per slot
    efron: bool


def cox_state(start, stop, event, strata, nstrata, weights, ties: str) -> CoxState:
    """Grid slots per stratum, each row's risk window on them, and the tie terms."""
    ev = (event > 0) & (weights > 0)
    j_lo = np.empty(len(stop), dtype=np.int64)
    j_hi = np.empty(len(stop), dtype=np.int64)
    grid_times = []
    offset = 0
    for s in range(nstrata):
        rows = np.flatnonzero(strata == s) if nstrata > 1 else np.arange(len(stop))
        T = np.unique(stop[rows][ev[rows]])
        j_lo[rows] = offset + np.searchsorted(T, start[rows], side="right")
        j_hi[rows] = offset + np.searchsorted(T, stop[rows], side="right")
        grid_times.append(np.append(T, np.nan))  # one spare slot: where rows leave after the last event
        offset += len(T) + 1
    ev_rows = np.flatnonzero(ev)
    j_ev = j_hi[ev_rows] - 1  # the slot of the row's own stop time
    d = np.bincount(j_ev, weights=weights[ev_rows], minlength=offset)
    if ties == "breslow":
        t_slot = np.flatnonzero(d > 0)
        t_f = np.zeros(len(t_slot))
        t_mw = d[t_slot]
    else:
        m = np.bincount(j_ev, minlength=offset)
        t_slot = np.sort(j_ev, kind="stable")
        rank = np.arange(len(t_slot)) - np.searchsorted(t_slot, t_slot, side="left")
        t_f = rank / m[t_slot]
        t_mw = d[t_slot] / m[t_slot]
    t_count = np.bincount(t_slot, minlength=offset)
    return CoxState(j_lo, j_hi, j_ev, ev_rows, np.concatenate(grid_times), offset, t_slot, t_f, t_mw, t_count,
                    ties != "breslow")


def risk_sum(st: CoxState, values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` over each grid slot's risk set (rows with start < t <= stop)."""
    diff = np.bincount(st.j_lo, weights=values, minlength=st.size + 1) - np.bincount(st.j_hi, weights=values, minlength=st.size + 1)
    return np.cumsum(diff)[: st.size]


def _tie_sum(st: CoxState, values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` over each slot's event rows (the tied set), per term."""
    return np.bincount(st.j_ev, weights=values[st.ev_rows], minlength=st.size)[st.t_slot]


# Tall-and-skinny products are written as column loops: multithreaded BLAS
# matrix-vector products on millions of rows with two or three columns are
# tens of times slower than plain element-wise numpy on a shared machine.
def linpred(cols, beta) -> np.ndarray:
    eta = np.zeros(len(cols[0]) if cols else 0)
    for k, x in enumerate(cols):
        eta += beta[k] * x
    return eta


def derivatives(beta, cols, st: CoxState, weights, x_ev, w_ev, *, need_hessian=True):
    """Log partial likelihood, gradient, information; per term the weighted
    covariate means ``xb`` and risk sums ``den`` (scaled by exp(-c))."""
    eta = linpred(cols, beta)
    c = eta.max() if len(eta) else 0.0
    r = weights * np.exp(eta - c)
    p = len(cols)
    ts, f, mw = st.t_slot, st.t_f, st.t_mw
    den = risk_sum(st, r)[ts]
    if st.efron:
        den = den - f * _tie_sum(st, r)
    ll = float((w_ev * eta[st.ev_rows]).sum() - (mw * (np.log(den) + c)).sum())
    xb = np.zeros((len(ts), p))
    rx = []
    for k in range(p):
        rx.append(r * cols[k])
        s1 = risk_sum(st, rx[k])[ts]
        if st.efron:
            s1 = s1 - f * _tie_sum(st, rx[k])
        xb[:, k] = s1 / den
    grad = np.array([(w_ev * x_ev[:, k]).sum() - (mw * xb[:, k]).sum() for k in range(p)])
    if not need_hessian:
        return ll, grad, None, xb, den, c
    info = np.zeros((p, p))
    for k in range(p):
        for j in range(k, p):
            rxx = rx[k] * cols[j]
            s2 = risk_sum(st, rxx)[ts]
            if st.efron:
                s2 = s2 - f * _tie_sum(st, rxx)
            info[k, j] = info[j, k] = (mw * (s2 / den - xb[:, k] * xb[:, j])).sum()
    return ll, grad, info, xb, den, c


def newton(cols, st, weights, x_ev, w_ev, *, max_iter=60, tol=1e-10, where="fit_cox"):
    """Newton-Raphson with step halving from beta = 0."""
    p = len(cols)
    beta = np.zeros(p)
    ll, grad, info, *_ = derivatives(beta, cols, st, weights, x_ev, w_ev)
    ll0 = ll
    for it in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            raise ModelError(f"{where}: the information matrix is singular: two covariates are collinear or one never varies "
                             "within a stratum; drop one of them from adjust_for.") from None
        halvings = 0
        while True:
            new = beta + step
            ll_new, g_new, i_new, *_ = derivatives(new, cols, st, weights, x_ev, w_ev)
            if np.isfinite(ll_new) and ll_new >= ll - 1e-10 * max(1.0, abs(ll)):
                break
            step = step / 2
            halvings += 1
            if halvings > 30:
                raise ModelError(f"{where}: Newton steps stopped improving the partial likelihood; the model is not identified "
                                 "(check for covariates that perfectly predict churn).")
        beta, ll, grad, info = new, ll_new, g_new, i_new
        if np.max(np.abs(beta)) > 25:
            raise ModelError(f"{where}: a coefficient ran off to {beta[np.argmax(np.abs(beta))]:+.1f} (a hazard ratio of 0 or "
                             "infinity): some covariate level has no churn events, or churn happens only in it. "
                             "Check the event counts by group.")
        if np.max(np.abs(step)) < tol:
            return beta, ll, ll0, grad, info, it
    raise ModelError(f"{where}: Newton-Raphson did not converge in {max_iter} iterations (last step "
                     f"{np.max(np.abs(step)):.2g}); the data may not identify the model.")


def score_residuals(beta, cols, st: CoxState, weights, x_ev, w_ev):
    """Per-row score residuals U_i (unweighted: the score is sum_i w_i U_i, and
    U_i is the derivative of the score with respect to row i's weight), and per
    slot the mean of the terms' covariate means (for Schoenfeld residuals)."""
    _, _, _, xb, den, c = derivatives(beta, cols, st, weights, x_ev, w_ev, need_hessian=False)
    p = len(cols)
    ts, size = st.t_slot, st.size
    dl_t = st.t_mw / den  # hazard increment per term
    dl = np.bincount(ts, weights=dl_t, minlength=size)
    H = np.concatenate([[0.0], np.cumsum(dl)])
    H0 = H[st.j_hi] - H[st.j_lo]
    risk = np.exp(linpred(cols, beta) - c)
    risk_ev = risk[st.ev_rows]
    has = st.t_count > 0
    U = np.empty((len(risk), p))
    mean_xb = np.zeros((size, p))
    for k in range(p):
        pk = np.bincount(ts, weights=dl_t * xb[:, k], minlength=size)
        P1 = np.concatenate([[0.0], np.cumsum(pk)])
        U[:, k] = -risk * (cols[k] * H0 - (P1[st.j_hi] - P1[st.j_lo]))
        mean_xb[has, k] = np.bincount(ts, weights=xb[:, k], minlength=size)[has] / st.t_count[has]
        if st.efron:  # a tied event row is at risk in the l-th term with weight 1 - f_l, not 1
            dl_f = np.bincount(ts, weights=st.t_f * dl_t, minlength=size)[st.j_ev]
            pk_f = np.bincount(ts, weights=st.t_f * dl_t * xb[:, k], minlength=size)[st.j_ev]
            U[st.ev_rows, k] += risk_ev * (x_ev[:, k] * dl_f - pk_f)
    U[st.ev_rows] += x_ev - mean_xb[st.j_ev]
    return U, mean_xb


def cluster_meat(U, weights, codes):
    """sum over clusters of (sum of w_i U_i)(sum of w_i U_i)^T."""
    G = np.column_stack([np.bincount(codes, weights=U[:, k] * weights) for k in range(U.shape[1])])
    return G.T @ G


__all__ = ["TIES", "CoxState", "cluster_meat", "cox_state", "derivatives", "linpred", "newton", "risk_sum", "score_residuals"]

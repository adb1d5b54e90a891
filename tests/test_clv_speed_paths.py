"""The fast paths of the CLV fits give what the plain paths give: BG/NBD's exact Hessian (one pass
over distinct values) against numerical derivatives, Newton on it against BFGS with difference
Hessians, an already-sorted compressed summary against the same rows shuffled, and the coarse
grid against compressing the rounded values."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.tools import numdiff

from workbench.data import load_dataset
from workbench.data.simulate import simulate_bgnbd_summary, simulate_pareto_nbd_summary
from workbench.models.clv import counting, fit_bgnbd, fit_pareto_nbd, rfm_arrays
from workbench.models.clv.bgnbd import BGNBDResult, Rows, bgnbd_loglik, bgnbd_totals
from workbench.models.clv.rfm import RFM, compress_rows
from workbench.tables import repeat_summary_compressed


@pytest.fixture(scope="module")
def cdnow_compressed():
    return repeat_summary_compressed(load_dataset("cdnow-sample"), time_unit="week", calibration_end="1997-09-30").to_pandas()


@pytest.fixture(scope="module")
def drawn():
    """80,000 customers from BG/NBD, days as the repeat summary gives them: more patterns than COARSE_ROWS."""
    rng = np.random.default_rng(11)
    T = (273 - rng.integers(0, 84, 80_000)) / 7.0
    s = simulate_bgnbd_summary(n=80_000, T=T, seed=rng, r=0.243, alpha=4.414, a=0.793, b=2.426)
    s["recency"] = np.floor(s["recency"].to_numpy() * 7.0) / 7.0
    return s.groupby(["frequency", "recency", "T"]).size().rename("n").reset_index()


@pytest.mark.parametrize("params", [(0.3, 5.0, 0.9, 2.0), (2.0, 0.5, 3.0, 0.7), (0.05, 40.0, 0.2, 12.0)])
def test_bgnbd_totals_match_numerical_derivatives(cdnow_compressed, params):
    x, tx, T, n = (cdnow_compressed[c].to_numpy(float) for c in ("frequency", "recency", "T", "n"))
    p = np.array(params)
    ll, g, H = bgnbd_totals(p, Rows(x, tx, T), n)
    assert ll == pytest.approx(float(n @ bgnbd_loglik(p, x, tx, T)), rel=1e-12)
    total_grad = lambda q: n @ bgnbd_loglik(q, x, tx, T, gradient=True)[1]  # noqa: E731
    np.testing.assert_allclose(g, total_grad(p), rtol=1e-9, atol=1e-9 * np.abs(g).max())
    num = numdiff.approx_fprime(p, total_grad, epsilon=1e-6 * p, centered=True)
    np.testing.assert_allclose(H, (num + num.T) / 2, rtol=1e-5, atol=1e-6 * np.abs(H).max())
    np.testing.assert_array_equal(H, H.T)


def test_newton_on_the_exact_hessian_gives_the_bfgs_fit(drawn, monkeypatch):
    """Above COARSE_ROWS patterns BG/NBD is fitted by Newton steps on its exact Hessian; without it
    (BFGS, Hessians by differences of the gradient) the estimates and standard errors are the same."""
    assert len(drawn) > counting.COARSE_ROWS
    fast = fit_bgnbd(drawn)
    monkeypatch.setattr(BGNBDResult, "loglik_totals", None)
    plain = fit_bgnbd(drawn)
    np.testing.assert_allclose(fast.values, plain.values, rtol=1e-7)
    np.testing.assert_allclose(fast.params.std_err, plain.params.std_err, rtol=1e-4)
    assert fast.loglik == pytest.approx(plain.loglik, rel=1e-12)
    assert fast.converged and plain.converged


def test_sorted_compressed_input_equals_shuffled_rows(drawn):
    a = rfm_arrays(drawn)
    b = rfm_arrays(drawn.sample(frac=1.0, random_state=3))
    for name in ("x", "tx", "T", "n"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    # sorted but with a repeated pattern: still compressed
    doubled = drawn.iloc[np.repeat(np.arange(len(drawn)), 2)].reset_index(drop=True)
    c = rfm_arrays(doubled)
    np.testing.assert_array_equal(c.x, a.x)
    np.testing.assert_array_equal(c.n, 2 * a.n)


@pytest.mark.parametrize("model", ["bgnbd", "pareto_nbd"])
def test_coarse_grid_equals_compressing_the_rounded_values(model):
    rng = np.random.default_rng(5)
    T = (273 - rng.integers(0, 84, 30_000)) / 7.0
    if model == "bgnbd":
        s = simulate_bgnbd_summary(n=30_000, T=T, seed=rng, r=0.243, alpha=4.414, a=0.793, b=2.426)
    else:
        s = simulate_pareto_nbd_summary(n=30_000, T=T, seed=rng, r=0.553, alpha=10.578, s=0.606, beta=11.669)
    rfm = rfm_arrays(s)
    coarse = counting._coarse(rfm)
    step = float(rfm.T.max()) / 40
    T_r = np.maximum(np.round(rfm.T / step), 1.0) * step
    tx_r = np.minimum(np.round(rfm.tx / step) * step, T_r)
    ref = RFM(*compress_rows(rfm.x, tx_r, T_r, rfm.n))
    for name in ("x", "tx", "T", "n"):
        np.testing.assert_allclose(getattr(coarse, name), getattr(ref, name), rtol=1e-12)


def test_pareto_nbd_large_table_matches_small_table_fit(drawn):
    """The Pareto/NBD fit on many patterns (coarse grid, then the data) finds the optimum a direct
    fit finds."""
    fast = fit_pareto_nbd(drawn)
    from workbench.models.clv.pareto_nbd import ParetoNBDResult
    from workbench.models.mle import Objective, maximize

    rfm = rfm_arrays(drawn)
    rows = ParetoNBDResult.prepare(rfm.x, rfm.tx, rfm.T)
    direct = maximize(Objective(lambda th: ParetoNBDResult.loglik_rows(np.exp(th), rows), rfm.n), ParetoNBDResult.start(rfm), ParetoNBDResult.NAMES, "test")
    np.testing.assert_allclose(fast.values, np.exp(direct.theta), rtol=1e-6)
    np.testing.assert_allclose(fast.params.std_err.to_numpy(), np.exp(direct.theta) * np.sqrt(np.diag(direct.cov)), rtol=1e-3)


@pytest.mark.parametrize(
    "params",
    [
        (0.553, 10.578, 0.606, 11.669),
        (0.553, 11.669, 0.606, 10.578),
        (0.55, 10.0, 0.6, 300.0),
        (0.55, 300.0, 0.6, 2.0),
        (5.0, 0.5, 3.0, 0.01),
        (0.6, 10.0, 0.6, 10.0),
    ],
    ids=["cdnow", "alpha>beta", "beta>>alpha", "alpha>>beta", "large-r", "alpha=beta"],
)
def test_pareto_nbd_gradient_matches_numerical(cdnow_compressed, params):
    """Pareto/NBD's gradient (analytic but for the hypergeometric function's parameter derivatives),
    per row and as the weighted total, against central differences of the total log-likelihood."""
    from workbench.models.clv import pareto_nbd_loglik

    x, tx, T, n = (cdnow_compressed[c].to_numpy(float) for c in ("frequency", "recency", "T", "n"))
    p = np.array(params)
    ll, g = pareto_nbd_loglik(p, x, tx, T, gradient=True)
    ll_t, g_t = pareto_nbd_loglik(p, x, tx, T, gradient=True, weights=n)
    np.testing.assert_array_equal(ll, pareto_nbd_loglik(p, x, tx, T))
    np.testing.assert_array_equal(ll_t, ll)
    num = numdiff.approx_fprime(p, lambda q: float(n @ pareto_nbd_loglik(q, x, tx, T)), epsilon=1e-5 * p, centered=True)
    scale = np.abs(num).max()
    np.testing.assert_allclose(n @ g, num, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(g_t, n @ g, rtol=1e-10, atol=1e-10 * scale)

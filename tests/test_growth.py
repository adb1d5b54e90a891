"""Bass diffusion (workbench.models.growth): scipy's curve_fit and statsmodels'
HC3 as oracles, planted truth (one fit, the simulator end to end, and 95%
interval coverage over repeated simulations), forecasts, and clear errors."""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.optimize import curve_fit

from workbench.errors import ModelError, ParameterError
from workbench.models.growth import (
    BassIdentificationWarning,
    bass_adoptions,
    bass_cumulative,
    bass_peak,
    bass_rate,
    fit_bass,
)

from conftest import REPO

P, Q, M = 0.01, 0.3, 20_000.0


def _bench():
    spec = importlib.util.spec_from_file_location("coverage_growth", REPO / "benchmarks" / "coverage_growth.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _series(seed=1, periods=40, p=P, q=Q, m=M, weekly=True):
    rng = np.random.default_rng(seed)
    y = rng.poisson(bass_adoptions(np.arange(1, periods + 1), p, q, m)).astype(float)
    if weekly:
        return pd.Series(y, index=pd.date_range("2024-01-01", periods=periods, freq="W-MON"), name="new_users")
    return y


def _num_jacobian(t, theta, h=1e-6):
    """Central differences of m (F(t) - F(t-1)) in (log p, log q, log m)."""
    def f(th):
        return bass_adoptions(t, *np.exp(th))
    J = np.empty((len(t), 3))
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        J[:, j] = (f(theta + e) - f(theta - e)) / (2 * h)
    return J


# ----------------------------------------------------------------- the curve
def test_curve_shape_and_peak_formula():
    t = np.linspace(0, 200, 2001)
    F = bass_cumulative(t, P, Q)
    assert F[0] == 0 and np.all(np.diff(F) >= 0) and F[-1] == pytest.approx(1, abs=1e-9)
    # per-period adoptions sum to m F(T) and the density peaks at ln(q/p)/(p+q)
    assert bass_adoptions(np.arange(1, 101), P, Q, M).sum() == pytest.approx(M * bass_cumulative(100, P, Q))
    t_star, height = bass_peak(P, Q, M)
    assert t_star == pytest.approx(np.log(Q / P) / (P + Q)) == pytest.approx(10.97, abs=0.01)
    dens = np.gradient(M * F, t)
    assert t[np.argmax(dens)] == pytest.approx(t_star, abs=0.1)
    assert dens.max() == pytest.approx(height, rel=1e-3)
    assert bass_peak(0.3, 0.1, 100.0) == (0.0, pytest.approx(30.0))  # q <= p: falls from the start


# ----------------------------------------------------------------- the continuous-curve fit, published
# Annual sales from 1979 of the teaching example in Cheng-Jun Wang, "Bass diffusion model" (R notes,
# 2012-04-24; RPubs document 15329): nls(Sales ~ M * (((P+Q)^2/P) exp(-(P+Q) t)) / (1 + (Q/P) exp(-(P+Q) t))^2),
# t = 1..10, prints M 6.80e+04 (std. error 3.13e+03), P 6.59e-03 (1.43e-03), Q 6.38e-01 (4.14e-02),
# residual standard error 727 on 7 degrees of freedom.
TEACHING_SALES = [840, 1470, 2110, 4000, 7590, 10950, 10530, 9470, 7790, 5890]
PUBLISHED_NLS = {"m": (6.80e4, 3.13e3), "p": (6.59e-3, 1.43e-3), "q": (6.38e-1, 4.14e-2)}


def _sig3(v: float) -> float:
    return float(f"{v:.3g}")


def test_continuous_curve_reproduces_a_published_nls_fit():
    res = fit_bass(np.array(TEACHING_SALES, float), model="continuous", cov_type="nonrobust")
    for name, (estimate, std_err) in PUBLISHED_NLS.items():
        row = res.params.loc[name]
        assert _sig3(row.estimate) == estimate and _sig3(row.std_err) == std_err, (name, row.estimate, row.std_err)
    assert round(res.residual_std) == 727 and res.df_resid == 7
    np.testing.assert_allclose(res.fitted, bass_rate(np.arange(1, 11), res.p, res.q, res.m), rtol=1e-12)
    assert res.model == "continuous" and res.forecast(horizon=0).adoptions.to_numpy() == pytest.approx(res.fitted.to_numpy())
    # the per-period (interval) model on the same sales is a different fit: p = 0.0088, not 0.0066
    interval = fit_bass(np.array(TEACHING_SALES, float))
    assert round(interval.p, 4) == 0.0088 and round(res.p, 4) == 0.0066
    # the analytic Jacobian of m f(t) behind the standard errors equals scipy's finite differences
    popt, pcov = curve_fit(lambda t, p, q, m: bass_rate(t, p, q, m), np.arange(1, 11.0), np.array(TEACHING_SALES, float), p0=[0.03, 0.38, 60630])
    np.testing.assert_allclose(popt, [res.p, res.q, res.m], rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(np.diag(pcov)), res.params.loc[["p", "q", "m"], "std_err"], rtol=1e-4)


def test_continuous_model_recovers_rates_sampled_at_period_ends():
    t = np.arange(1, 31)
    y = bass_rate(t, 0.02, 0.4, 5000.0)
    res = fit_bass(y, model="continuous")
    assert (res.p, res.q, res.m) == pytest.approx((0.02, 0.4, 5000.0), rel=1e-6)
    off = fit_bass(y)  # the interval model misreads point rates as period counts: a shifted curve
    assert abs(off.p / 0.02 - 1) > 0.05
    with pytest.raises(ParameterError, match="model must be 'interval' or 'continuous'"):
        fit_bass(y, model="discrete")


# ----------------------------------------------------------------- oracles
def test_estimates_and_nonrobust_errors_equal_curve_fit():
    y = _series(seed=3, weekly=False)
    t = np.arange(1, len(y) + 1)
    r = fit_bass(y, cov_type="nonrobust")
    popt, pcov = curve_fit(bass_adoptions, t, y, p0=[0.02, 0.2, 1.5 * y.sum()], maxfev=20000)
    s = r.summary()
    np.testing.assert_allclose(s.loc[["p", "q", "m"], "estimate"], popt, rtol=1e-5)
    np.testing.assert_allclose(s.loc[["p", "q", "m"], "std_err"], np.sqrt(np.diag(pcov)), rtol=1e-4)
    assert r.df_resid == len(y) - 3


def test_hc3_covariance_equals_statsmodels_on_the_linearised_model():
    """At the optimum the NLS sandwich is OLS-HC3 of the residuals on the Jacobian."""
    y = _series(seed=4, weekly=False)
    r = fit_bass(y)  # default HC3
    theta = np.log([r.p, r.q, r.m])
    J = _num_jacobian(np.arange(1, len(y) + 1, dtype=float), theta)
    e = y - r.fitted.to_numpy()
    ols = sm.OLS(e, J).fit(cov_type="HC3")
    np.testing.assert_allclose(ols.params, 0, atol=1e-6 * np.abs(e).max())  # J'e = 0 at the optimum
    np.testing.assert_allclose(r.cov_log, ols.cov_params(), rtol=1e-4)
    # natural-scale std errors are the delta method of the log-scale ones
    np.testing.assert_allclose(r.summary().loc[["p", "q", "m"], "std_err"], np.exp(theta) * np.sqrt(np.diag(ols.cov_params())), rtol=1e-4)


# ----------------------------------------------------------------- planted truth
def test_one_fit_lands_near_the_planted_values():
    r = fit_bass(_series(seed=11))
    s = r.summary()
    for name, truth in (("p", P), ("q", Q), ("m", M)):
        assert s.loc[name, "ci_low"] <= truth <= s.loc[name, "ci_high"], name
    assert r.p == pytest.approx(P, rel=0.25) and r.q == pytest.approx(Q, rel=0.05) and r.m == pytest.approx(M, rel=0.03)
    assert r.peak_time == pytest.approx(np.log(Q / P) / (P + Q), abs=0.5)
    # the peak is reported as a calendar period: week 11 (t* = 10.97 falls in the 11th week)
    assert r.peak_period == pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=int(np.floor(r.peak_time)))
    m = r.to_metrics()
    for k in ("p", "q", "m"):
        assert m[f"bass.{k}_ci_low"] < m[f"bass.{k}"] < m[f"bass.{k}_ci_high"]
    assert m["bass.n_periods"] == 40 and m["bass.peak_period"] == str(r.peak_period.date())


def test_log_intervals_are_positive_and_wald_ones_symmetric():
    y = _series(seed=5, periods=14)  # short: the peak is barely past
    log = fit_bass(y).summary()
    wald = fit_bass(y, interval="wald").summary()
    assert (log.loc[["p", "q", "m"], "ci_low"] > 0).all()
    np.testing.assert_allclose(wald["estimate"] - wald["ci_low"], wald["ci_high"] - wald["estimate"])
    assert (
        log.loc[["p", "q", "m"], "ci_high"] - log.loc[["p", "q", "m"], "estimate"] > log.loc[["p", "q", "m"], "estimate"] - log.loc[["p", "q", "m"], "ci_low"]
    ).all()


def test_simulator_signups_end_to_end(tiny_dataset):
    """Weekly signups of the simulated product (tables.kpis) recover the planted p, q, m."""
    from workbench import tables
    from workbench.data import load_dataset

    truth = json.loads((tiny_dataset / "truth.json").read_text())["bass"]
    ds = load_dataset(tiny_dataset)
    k = tables.kpis(ds, period="week").to_pandas()
    end = ds.observation_end
    k = k[pd.to_datetime(k["period"]) + pd.Timedelta(days=7) <= end]  # complete weeks only
    r = fit_bass(k.set_index(pd.DatetimeIndex(k["period"]))["new_users"])
    s = r.summary()
    for name in ("p", "q"):
        assert s.loc[name, "ci_low"] <= truth[name] <= s.loc[name, "ci_high"], (name, s.loc[name].to_dict(), truth[name])
    assert s.loc["m", "ci_low"] <= truth["m_effective"] <= s.loc["m", "ci_high"]
    assert r.peak_time == pytest.approx(truth["peak_week"], abs=1.5)


def test_interval_coverage_over_repeated_simulations():
    """200 series of 40 weeks with Poisson noise: 95% intervals cover 90-98%."""
    table = _bench().bass_coverage(200, noise="poisson")
    print(table.to_string())
    assert (table["failures"] == 0).all()
    for _, row in table.iterrows():
        assert 0.90 <= row["coverage"] <= 0.98, row.to_dict()
        assert abs(row["relative_bias"]) < 0.03, row.to_dict()


def test_interval_coverage_with_multiplicative_noise():
    table = _bench().bass_coverage(200, noise="lognormal")
    print(table.to_string())
    for _, row in table.iterrows():
        assert 0.90 <= row["coverage"] <= 0.98, row.to_dict()


# ----------------------------------------------------------------- forecast
def test_forecast_band_and_cumulative():
    r = fit_bass(_series(seed=7, periods=25))
    f = r.forecast(horizon=10, draws=500, seed=1)
    assert len(f) == 35 and f["forecast"].sum() == 10
    assert list(f["period"][:25]) == list(r.adoptions.index)
    assert f["period"].iloc[-1] == r.adoptions.index[-1] + pd.Timedelta(weeks=10)
    assert (f["ci_low"] <= f["adoptions"] + 1e-9).all() and (f["adoptions"] <= f["ci_high"] + 1e-9).all()
    assert (f["pi_low"] <= f["ci_low"] + 1e-9).all() and (f["pi_high"] >= f["ci_high"] - 1e-9).all()
    np.testing.assert_allclose(f["cumulative"][:25], np.cumsum(r.adoptions))
    assert np.all(np.diff(f["cumulative"]) >= 0)
    # the cumulative forecast approaches the market size
    assert f["cumulative"].iloc[-1] == pytest.approx(r.adoptions.sum() + bass_adoptions(np.arange(26, 36), r.p, r.q, r.m).sum())
    again = r.forecast(horizon=10, draws=500, seed=1)
    pd.testing.assert_frame_equal(f, again)


def test_forecast_band_narrows_with_more_data():
    short = fit_bass(_series(seed=8, periods=12)).forecast(horizon=5, draws=500)
    long = fit_bass(_series(seed=8, periods=30)).forecast(horizon=5, draws=500)
    w_short = (short["ci_high"] - short["ci_low"]).iloc[11]
    w_long = (long["ci_high"] - long["ci_low"]).iloc[11]
    assert w_long < w_short


def test_warns_when_the_peak_is_not_yet_observed():
    y = _series(seed=9, periods=9)
    with pytest.warns(BassIdentificationWarning, match="after the last observed period"):
        r = fit_bass(y)
    assert r.peak_time > 9


# ----------------------------------------------------------------- bad input
def test_too_short_series_is_a_clear_error():
    with pytest.raises(ModelError, match=r"too short: 5 period\(s\).*at least 6.*finer period"):
        fit_bass([10, 30, 60, 40, 20])


@pytest.mark.parametrize(
    "series, message",
    [
        ([1, 2, np.nan, 4, 5, 6, 7], "missing or infinite"),
        ([1, 2, -3, 4, 5, 6, 7], "must be >= 0"),
        ([0, 0, 0, 0, 0, 0, 0], "no adoptions at all"),
    ],
)
def test_bad_values_are_clear_errors(series, message):
    with pytest.raises(ModelError, match=message):
        fit_bass(series)


def test_gaps_between_periods_are_a_clear_error():
    s = _series(seed=2, periods=20).drop(pd.Timestamp("2024-02-05"))
    with pytest.raises(ModelError, match="not evenly spaced.*reindex"):
        fit_bass(s)


def test_a_fit_that_does_not_converge_is_a_clear_error():
    with pytest.raises(ModelError, match=r"did not converge.*max_nfev=1"):
        fit_bass(_series(seed=1), max_nfev=1)


@pytest.mark.parametrize("series", [np.full(30, 100.0), 10 * 1.2 ** np.arange(1, 31)], ids=["flat", "exponential"])
def test_a_series_without_a_slowdown_is_a_clear_error(series):
    """No curvature: the market size runs away, so the fit has no interior optimum."""
    with pytest.raises(ModelError, match="market size ran to its bound.*includes the peak"):
        fit_bass(series)


def test_bad_arguments():
    y = _series(seed=1)
    with pytest.raises(ParameterError, match="alpha"):
        fit_bass(y, alpha=1.5)
    with pytest.raises(ParameterError, match="cov_type"):
        fit_bass(y, cov_type="robust")
    with pytest.raises(ParameterError, match="one column"):
        fit_bass(pd.DataFrame({"a": y.to_numpy(), "b": y.to_numpy()}))
    with pytest.raises(ParameterError, match="horizon"):
        fit_bass(y).forecast(horizon=-1)


def test_summary_metrics_and_html():
    r = fit_bass(_series(seed=1))
    s = r.summary()
    assert list(s.columns) == ["estimate", "std_err", "ci_low", "ci_high"]
    assert list(s.index) == ["p", "q", "m", "peak_time", "peak_adoptions"]
    assert "BassResult" in r._repr_html_() and "peak_time" in r._repr_html_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        json.dumps(r.to_metrics())


def test_too_few_busy_periods_is_a_clear_error():
    """A cohort that arrived in three months (CDNOW's design) cannot identify three parameters."""
    with pytest.raises(ModelError, match=r"only 3 period\(s\) have any adopters.*finer period"):
        fit_bass([800.0, 950.0, 600.0, 0, 0, 0, 0, 0, 0, 0])


def test_plot_marks_the_peak_and_the_forecast():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from workbench.plots.growth import period_positions, plot_bass

    r = fit_bass(_series(seed=1, periods=30))
    f = r.forecast(horizon=8, draws=200)
    ax = plot_bass(r, f)
    peak_x = mdates.date2num(pd.Timestamp(period_positions(r, [r.peak_time])[0]))
    vlines = [ln.get_xdata()[0] for ln in ax.get_lines() if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == ln.get_xdata()[1]]
    assert any(abs(mdates.date2num(pd.Timestamp(x)) - peak_x) < 1e-6 for x in vlines)
    # the peak sits t* weeks after the start of the first week
    expected = pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=r.peak_time)
    assert abs(pd.Timestamp(period_positions(r, [r.peak_time])[0]) - expected) < pd.Timedelta(microseconds=1)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "forecast" in labels and "parameter band" in labels
    plt.close("all")
    with pytest.raises(ParameterError, match="BassResult"):
        plot_bass(f)

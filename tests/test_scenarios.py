"""Scenario planner (workbench.models.scenarios): the users -> customers ->
revenue accounting checked by hand, bands from parameter draws, crossovers,
common random numbers, and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.errors import ModelError, ParameterError
from workbench.models.conversion import conversion_curve
from workbench.models.growth import bass_adoptions, fit_bass
from workbench.models.scenarios import Strategy, compare_strategies, fit_customer_value, project_revenue


@pytest.fixture(scope="module")
def growth():
    rng = np.random.default_rng(1)
    y = rng.poisson(bass_adoptions(np.arange(1, 31), 0.01, 0.3, 20_000)).astype(float)
    return fit_bass(pd.Series(y, index=pd.date_range("2024-01-01", periods=30, freq="W-MON")))


def test_per_period_accounting_by_hand():
    new = np.array([100.0, 200, 300, 200, 100, 50])
    s = Strategy("x", adoption=new, conversion=0.1, value=20.0, retention=0.8)
    t = project_revenue(s, horizon=0, draws=100).table
    customers, expected = 0.0, []
    for n in new:
        customers = 0.8 * customers + 0.1 * n
        expected.append(customers * 20.0)
    np.testing.assert_allclose(t["revenue"], expected)
    np.testing.assert_allclose(t["users"], np.cumsum(new))
    np.testing.assert_allclose(t["new_customers"], 0.1 * new)
    np.testing.assert_allclose(t["cumulative_revenue"], np.cumsum(expected))
    # fixed inputs: no uncertainty, the band collapses onto the point
    np.testing.assert_allclose(t["revenue_low"], t["revenue"])
    np.testing.assert_allclose(t["revenue_high"], t["revenue"])


def test_a_conversion_curve_delays_customers():
    new = np.array([1000.0, 0, 0, 0, 0])
    curve = [0.02, 0.05, 0.07, 0.08]  # cumulative share by period since signup; flat afterwards
    t = project_revenue(Strategy("x", adoption=new, conversion=curve, value=1.0), horizon=0, draws=100).table
    np.testing.assert_allclose(t["new_customers"], [20, 30, 20, 10, 0])
    np.testing.assert_allclose(t["customers"], [20, 50, 70, 80, 80])  # retention 1: all keep paying
    # two cohorts: the convolution of signups and the curve's increments
    t2 = project_revenue(Strategy("x", adoption=[1000.0, 500.0, 0, 0], conversion=curve, value=1.0), horizon=0, draws=100).table
    np.testing.assert_allclose(t2["new_customers"], [20, 30 + 10, 20 + 15, 10 + 10])


def test_lifetime_value_is_booked_at_conversion():
    t = project_revenue(Strategy("x", adoption=[100.0, 100.0, 0.0], conversion=0.5, value=40.0, value_basis="lifetime"), horizon=0, draws=100).table
    np.testing.assert_allclose(t["revenue"], [2000, 2000, 0])


def test_bass_parameters_give_users_from_launch():
    s = Strategy("x", adoption={"p": 0.02, "q": 0.4, "m": 1000.0}, conversion=1.0, value=1.0, market_scale=0.5)
    t = project_revenue(s, horizon=20, draws=100).table
    np.testing.assert_allclose(t["new_users"], bass_adoptions(np.arange(1, 21), 0.02, 0.4, 500.0))
    assert not t["forecast"].any() or t["forecast"].all()


def test_bands_come_from_parameter_draws(growth):
    s = Strategy("x", adoption=growth, conversion=(0.1, 0.01), value=(30.0, 3.0), retention=0.9)
    r = project_revenue(s, horizon=10, draws=4000, seed=2)
    t = r.table
    assert len(t) == 40 and t["forecast"].sum() == 10
    assert t["period"].iloc[-1] == growth.adoptions.index[-1] + pd.Timedelta(weeks=10)
    point_users = bass_adoptions(np.arange(1, 41), growth.p, growth.q, growth.m)
    np.testing.assert_allclose(t["new_users"], point_users)
    inner = t.iloc[5:35]
    assert (inner["revenue_low"] < inner["revenue"]).all() and (inner["revenue"] < inner["revenue_high"]).all()
    # value is log-normal around 30 with sd 3/30 on the log scale, conversion logit-normal:
    # the relative band of cumulative users is far narrower than that of revenue
    rel_users = (t["users_high"] - t["users_low"]).iloc[-1] / t["users"].iloc[-1]
    rel_rev = (t["cumulative_revenue_high"] - t["cumulative_revenue_low"]).iloc[-1] / t["cumulative_revenue"].iloc[-1]
    assert rel_users < 0.1 < rel_rev
    assert r.draws.shape == (4000, 40)
    assert r.to_metrics()["scenarios.x.total_revenue"] == pytest.approx(t["cumulative_revenue"].iloc[-1])


def test_value_band_matches_the_lognormal_percentiles():
    r = project_revenue(Strategy("x", adoption=[100.0] * 3, conversion=1.0, value=(10.0, 1.0)), horizon=0, draws=20000, seed=3)
    t = r.table
    # revenue in period 1 is 100 customers x value; value ~ 10 exp(N(0, 0.1))
    assert t["revenue_low"].iloc[0] == pytest.approx(1000 * np.exp(-1.96 * 0.1), rel=0.01)
    assert t["revenue_high"].iloc[0] == pytest.approx(1000 * np.exp(1.96 * 0.1), rel=0.01)


def test_conversion_curve_result_is_read_in_periods():
    rng = np.random.default_rng(4)
    n = 5000
    t = rng.exponential(100, n)
    obs = np.full(n, 200.0)
    d = pd.DataFrame({"converted": (t <= obs).astype(int), "days_to_convert": np.where(t <= obs, t, np.nan), "observed_days": obs})
    curve = conversion_curve(d, max_days=200)
    s = Strategy("x", adoption=[1000.0] + [0.0] * 19, conversion=curve, value=1.0, period_days=7)
    table = project_revenue(s, horizon=0, draws=500).table
    np.testing.assert_allclose(table["customers"].iloc[[0, 4, 12]], 1000 * curve.share_at([7, 35, 91]))


def _free_and_paid():
    weeks = 40
    new = bass_adoptions(np.arange(1, weeks + 1), 0.01, 0.3, 10_000)
    free = Strategy("free", adoption=new, conversion=list(1 - np.exp(-0.05 * np.arange(1, weeks + 1))), value=10.0, retention=0.95)
    paid = Strategy("paid", adoption=new, market_scale=0.2, conversion=1.0, value=4.0, retention=0.95)
    return free, paid, new


def test_crossover_of_a_slow_converting_free_product():
    free, paid, new = _free_and_paid()
    c = compare_strategies(free, paid, horizon=0, draws=200)
    a = c.scenarios["free"].table["revenue"].to_numpy()
    b = c.scenarios["paid"].table["revenue"].to_numpy()
    first_free_ahead = int(np.argmax(a > b)) + 1
    assert a[0] < b[0] and c.crossovers[0] == first_free_ahead
    ca, cb = np.cumsum(a), np.cumsum(b)
    assert c.cumulative_crossovers[0] == int(np.argmax(ca > cb)) + 1 > c.crossovers[0]
    assert c.leader_at_end == "free"
    m = c.to_metrics()
    assert m["scenarios.crossover_t"] == first_free_ahead and m["scenarios.crossover_share_of_draws"] == 1.0
    np.testing.assert_allclose(c.difference["revenue_diff"], a - b)


def test_no_crossover_is_reported_as_none():
    new = np.full(20, 100.0)
    a = Strategy("a", adoption=new, conversion=0.2, value=5.0)
    b = Strategy("b", adoption=new, conversion=0.1, value=5.0)
    c = compare_strategies(a, b, horizon=0, draws=100)
    assert c.crossovers == () and c.cumulative_crossovers == ()
    assert c.to_metrics()["scenarios.crossover_t"] == "none" and c.leader_at_end == "a"
    assert np.isnan(c.summary().loc["crossover_t", "estimate"])


def test_shared_inputs_are_drawn_once(growth):
    """Common random numbers: strategies sharing the growth fit and the value
    object get the same draws of them, so within each draw one strategy's
    revenue is a constant multiple of the other's (only their conversion
    draws differ); independent growth draws would make the ratio wander."""
    value = (30.0, 3.0)
    a = Strategy("high", adoption=growth, conversion=(0.2, 0.02), value=value)
    b = Strategy("low", adoption=growth, conversion=(0.1, 0.01), value=value)
    c = compare_strategies(a, b, horizon=5, draws=500, seed=5)
    ratio = c.scenarios["high"].draws / c.scenarios["low"].draws
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, [0]], ratio.shape), rtol=1e-9)
    assert ratio.std() > 0.05  # the conversion draws themselves differ between the two
    assert (c.difference["prob_first_ahead"] > 0.99).all()


def test_bad_strategies_are_clear_errors(growth):
    with pytest.raises(ParameterError, match="conversion must be a share"):
        Strategy("x", adoption=[1.0, 2.0], conversion=1.5, value=1.0)
    with pytest.raises(ParameterError, match="non-decreasing"):
        Strategy("x", adoption=[1.0, 2.0], conversion=[0.2, 0.1], value=1.0)
    with pytest.raises(ParameterError, match="retention must be in"):
        Strategy("x", adoption=[1.0, 2.0], conversion=0.1, value=1.0, retention=1.2)
    with pytest.raises(ParameterError, match="adoption must be"):
        Strategy("x", adoption="lots", conversion=0.1, value=1.0)
    with pytest.raises(ParameterError, match="p, q and m"):
        Strategy("x", adoption={"p": 0.1}, conversion=0.1, value=1.0)
    s = Strategy("x", adoption=[1.0, 2.0], conversion=0.1, value=1.0)
    with pytest.raises(ParameterError, match="draws must be an integer >= 100"):
        project_revenue(s, horizon=0, draws=10)
    with pytest.raises(ParameterError, match="at least two"):
        compare_strategies(s, horizon=0)
    with pytest.raises(ParameterError, match="names must differ"):
        compare_strategies(s, s, horizon=0)
    with pytest.raises(ModelError, match="different numbers of periods"):
        compare_strategies(s, Strategy("y", adoption=growth, conversion=0.1, value=1.0), horizon=3)


# ----------------------------------------------------------------- value calibration
def _kpis_with_customers(seed=0, T=80, a=30.0, v=2.0, r=0.9):
    rng = np.random.default_rng(seed)
    f = rng.poisson(bass_adoptions(np.arange(1, T + 1), 0.02, 0.25, 8000)).astype(float)
    Q = np.zeros(T)
    for t in range(1, T):
        Q[t] = rng.binomial(int(Q[t - 1] + f[t - 1]), r)
    revenue = (a * f + v * Q) * np.exp(rng.normal(0, 0.05, T))
    return pd.DataFrame({"period": pd.date_range("2024-01-01", periods=T, freq="W-MON"), "first_time_customers": f, "revenue": revenue})


def test_customer_value_recovers_planted_values():
    r = fit_customer_value(_kpis_with_customers())
    s = r.summary()
    for name, truth in (("first_value", 30.0), ("value", 2.0), ("retention", 0.9)):
        assert s.loc[name, "ci_low"] <= truth <= s.loc[name, "ci_high"], (name, s.loc[name].to_dict())
    assert r.r_squared > 0.9
    assert r.to_metrics()["customer_value.retention"] == pytest.approx(r.retention[0])


def test_customer_value_estimates_equal_curve_fit_and_hac_equals_statsmodels():
    import statsmodels.api as sm
    from scipy.optimize import curve_fit

    k = _kpis_with_customers(seed=3)
    f = k["first_time_customers"].to_numpy()
    y = k["revenue"].to_numpy()

    def model(_, a, v, r):
        Q = np.zeros(len(f))
        for t in range(1, len(f)):
            Q[t] = r * (Q[t - 1] + f[t - 1])
        return a * f + v * Q

    popt, _ = curve_fit(model, np.arange(len(f)), y, p0=[20.0, 1.0, 0.8], bounds=([0, 0, 0], [np.inf, np.inf, 1]))
    r = fit_customer_value(k)
    np.testing.assert_allclose(r.params["estimate"], popt, rtol=1e-4)
    # HAC sandwich on the linearised model, in (log a, log v, logit r)
    theta = np.array([np.log(popt[0]), np.log(popt[1]), np.log(popt[2] / (1 - popt[2]))])

    def g(th):
        return model(None, np.exp(th[0]), np.exp(th[1]), 1 / (1 + np.exp(-th[2])))

    J = np.column_stack([(g(theta + h) - g(theta - h)) / 2e-6 for h in np.eye(3) * 1e-6])
    ols = sm.OLS(y - g(theta), J).fit(cov_type="HAC", cov_kwds={"maxlags": int(np.floor(4 * (80 / 100) ** (2 / 9)))})
    est = r.params["estimate"].to_numpy()
    delta = np.array([est[0], est[1], est[2] * (1 - est[2])])
    np.testing.assert_allclose(r.params["std_err"], delta * np.sqrt(np.diag(ols.cov_params())), rtol=1e-3)


def test_a_strategy_with_calibrated_values_reproduces_the_fitted_revenue():
    k = _kpis_with_customers(seed=4)
    cv = fit_customer_value(k)
    s = Strategy("x", adoption=k["first_time_customers"].to_numpy(), conversion=1.0, first_value=cv.first_value, value=cv.value, retention=cv.retention)
    t = project_revenue(s, horizon=0, draws=200).table
    np.testing.assert_allclose(t["revenue"], cv.fitted["fitted"], rtol=1e-10)


def test_first_value_accounting_by_hand():
    t = project_revenue(Strategy("x", adoption=[10.0, 0.0, 0.0], conversion=1.0, first_value=50.0, value=5.0, retention=0.5), horizon=0, draws=100).table
    np.testing.assert_allclose(t["revenue"], [500.0, 25.0, 12.5])
    np.testing.assert_allclose(t["customers"], [10.0, 5.0, 2.5])


def test_customer_value_errors():
    with pytest.raises(ModelError, match="at least 8"):
        fit_customer_value(_kpis_with_customers(T=6))
    with pytest.raises(ParameterError, match=r"\['first_time_customers'\] not in the data"):
        fit_customer_value(_kpis_with_customers().drop(columns="first_time_customers"))
    with pytest.raises(ModelError, match="no first-time customers"):
        fit_customer_value(_kpis_with_customers().assign(first_time_customers=0.0))
    with pytest.raises(ParameterError, match="first_value applies to value_basis='per_period'"):
        Strategy("x", adoption=[1.0], conversion=1.0, value=1.0, first_value=2.0, value_basis="lifetime")


# ----------------------------------------------------------------- the users_to_revenue report
def _report_text(result) -> str:
    """The text the executed report displayed (not its code): the sections' HTML, unescaped."""
    import html

    import nbformat

    nb = nbformat.read(result.executed_notebook, as_version=4)
    return html.unescape("\n".join(
        o["data"].get("text/html", o["data"].get("text/markdown", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "data" in o))


def test_report_on_a_simulated_dataset_records_estimates_near_the_truth(report_runs, tiny_dataset):
    import json

    result = report_runs("users_to_revenue", dataset=str(tiny_dataset))
    assert result.ok, result.error
    m = json.loads((result.run_dir / "metrics.json").read_text())
    truth = json.loads((tiny_dataset / "truth.json").read_text())
    for k in ("p", "q", "m"):
        assert m[f"bass.{k}_ci_low"] < m[f"bass.{k}"] < m[f"bass.{k}_ci_high"]
    assert m["bass.p_ci_low"] <= truth["bass"]["p"] <= m["bass.p_ci_high"]
    assert m["bass.q_ci_low"] <= truth["bass"]["q"] <= m["bass.q_ci_high"]
    assert m["bass.m_ci_low"] <= truth["bass"]["m_effective"] <= m["bass.m_ci_high"]
    assert m["scaling.best_law"] == "power"
    assert m["scaling.power.exponent_ci_low"] < m["scaling.power.exponent"] < m["scaling.power.exponent_ci_high"]
    assert abs(m["scaling.power.exponent"] - truth["scaling"]["beta"]) < 0.05
    assert m["conversion.share_90d"] == pytest.approx(truth["conversion"]["share_by_horizon"]["overall"], abs=0.02)
    assert m["conversion.share_90d_ci_low"] < m["conversion.share_90d"] < m["conversion.share_90d_ci_high"]
    assert m["customer_value.retention"] < 1 and m["scenarios.free.total_revenue"] > 0
    html = result.report.read_text()
    assert html.count("data:image/png;base64,") >= 6  # growth, scaling, conversion, hazard ratios, monetization, scenarios
    text = _report_text(result)
    assert "Note.</strong>" not in text and not any(k.endswith(".note") for k in m)  # every section ran
    assert f"p = {m['bass.p']:.4f}" in text and f"β = {m['scaling.power.exponent']:.2f}" in text  # prose from the results


def test_report_on_cdnow_notes_what_the_data_cannot_show(report_runs):
    result = report_runs("users_to_revenue", dataset="cdnow-sample")
    assert result.ok, result.error
    m = result.metrics
    assert m["conversion.share_90d"] == 1.0  # signup is the first purchase
    assert "pays from signup" in m["scenarios.note"]
    assert m["scaling.n_units"] == 1 and m["scaling.cov_type"] == "ar1"
    text = _report_text(result)
    assert "signup is the first purchase" in text and "No conversion hazard model" in text and "No scenarios" in text


def test_report_on_a_kpi_only_dataset_skips_conversion_with_a_note(report_runs, tiny_dataset, tmp_path):
    import shutil

    folder = tmp_path / "kpi_only"
    folder.mkdir()
    shutil.copy(tiny_dataset / "kpis.parquet", folder / "kpis.parquet")
    result = report_runs("users_to_revenue", dataset=str(folder))
    assert result.ok, result.error
    m = result.metrics
    assert "bass.p" in m and m["scaling.best_law"] == "power"
    assert "conversion.share_90d" not in m and "they need" in m["scenarios.note"]
    assert "No conversion analysis: no purchase events" in _report_text(result)


def test_plot_marks_the_crossover():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workbench.plots.scenarios import plot_scenarios

    free, paid, _ = _free_and_paid()
    c = compare_strategies(free, paid, horizon=0, draws=200)
    ax = plot_scenarios(c)
    vlines = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert c.crossovers and c.crossovers[0] in vlines
    assert any("crossover" in t.get_text() for t in ax.texts)
    assert {ln.get_label() for ln in ax.get_lines()} >= {"free", "paid"}
    plt.close("all")
    with pytest.raises(ParameterError, match="ComparisonResult"):
        plot_scenarios(free)

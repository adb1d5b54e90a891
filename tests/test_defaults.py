"""Package defaults that nothing else pinned: each test fails if the default
changes (so a change is a decision, made in the code and its docs, not a slip).

- Cox models report 95% intervals unless asked otherwise;
- fit_scaling's Newey-West lag is floor(4 (T/100)^(2/9)) when not given;
- the sample-ratio-mismatch alarm rings below p = 0.001;
- co-creation at the very instant of the first purchase is not "before" it:
  the purchase counts as unexposed, in the user table and in the risk sets.
(NaN in record() is pinned in tests/test_reports_metrics.py.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from workbench.data import load_dataset
from workbench.models import experiments as ex
from workbench.models import survival as sv
from workbench.models.scaling import fit_scaling
from workbench.tables import conversion, conversion_risk_sets

from test_survival import draw_episodes


def test_cox_intervals_are_95_percent_by_default():
    ep = draw_episodes(1500, seed=3)
    for fit in (sv.cox_time_varying, sv.cox_naive_ever):
        default, explicit = fit(ep).summary(), fit(ep, alpha=0.05).summary()
        pd.testing.assert_frame_equal(default, explicit)
        z = stats.norm.ppf(0.975)
        row = default.iloc[0]
        assert row["ci_low"] == pytest.approx(row["estimate"] - z * row["std_err"], rel=1e-9)
        assert row["ci_high"] == pytest.approx(row["estimate"] + z * row["std_err"], rel=1e-9)
        assert not np.isclose(default.iloc[0]["ci_low"], fit(ep, alpha=0.10).summary().iloc[0]["ci_low"])


def _one_unit(periods: int, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    users = np.geomspace(1e3, 1e6, periods) * np.exp(rng.normal(0, 0.1, periods))
    noise = np.convolve(rng.normal(0, 0.2, periods + 6), np.ones(7) / 7 ** 0.5, "valid")  # autocorrelated: the lag matters
    revenue = 0.05 * users**1.3 * np.exp(noise)
    return pd.DataFrame({"period": pd.date_range("2020-01-01", periods=periods, freq="W"), "users": users, "revenue": revenue})


@pytest.mark.parametrize(("periods", "lag"), [(48, 3), (120, 4), (20, 2)])
def test_newey_west_lag_rule_is_the_default(periods, lag):
    assert int(np.floor(4 * (periods / 100) ** (2 / 9))) == lag
    d = _one_unit(periods)
    default = fit_scaling(d, cov_type="hac").exponent_std_err
    assert default == pytest.approx(fit_scaling(d, cov_type="hac", maxlags=lag).exponent_std_err, rel=1e-12)
    for other in (lag - 1, lag + 1):
        assert default != pytest.approx(fit_scaling(d, cov_type="hac", maxlags=other).exponent_std_err, rel=1e-6)


def _arms(control: int, invited: int) -> pd.DataFrame:
    return pd.DataFrame({"arm": ["control"] * control + ["invited"] * invited})


def test_sample_ratio_alarm_rings_below_p_0_001():
    inside, outside = ex.sample_ratio_mismatch(_arms(5168, 4832)), ex.sample_ratio_mismatch(_arms(5160, 4840))
    assert inside.threshold == 0.001
    assert 0.0005 < inside.p_value < 0.001 and inside.mismatch
    assert 0.001 < outside.p_value < 0.002 and not outside.mismatch


@pytest.fixture(scope="module")
def same_instant(tmp_path_factory):
    """Two users who buy at 10:00 on day 5: one co-created at that very
    instant, one a second before; a third co-created but never bought."""
    folder = tmp_path_factory.mktemp("instant")
    t0 = pd.Timestamp("2024-01-01")
    buy = t0 + pd.Timedelta(days=5, hours=10)
    users = pd.DataFrame({"user_id": ["same", "before", "never"], "signup_at": [t0] * 3, "segment": ["a"] * 3})
    events = pd.DataFrame({
        "user_id": ["same", "same", "before", "before", "never", "never"],
        "event_at": [buy, buy, buy - pd.Timedelta(seconds=1), buy, t0 + pd.Timedelta(days=3), t0 + pd.Timedelta(days=60)],
        "event_type": ["feedback", "purchase", "feedback", "purchase", "feedback", "active"],
        "amount": [None, 10.0, None, 10.0, None, None],
    })
    users.to_parquet(folder / "users.parquet", index=False)
    events.to_parquet(folder / "events.parquet", index=False)
    (folder / "dataset.yml").write_text(yaml.safe_dump({"name": "instant", "observation_end": "2024-03-01"}))
    return load_dataset(folder)


def test_cocreation_at_the_instant_of_the_first_purchase_is_not_before_it(same_instant):
    c = conversion(same_instant).to_pandas().set_index("user_id")
    assert c.loc["same", "cocreated_before_conversion"] == 0
    assert c.loc["before", "cocreated_before_conversion"] == 1
    assert c.loc["never", "cocreated_before_conversion"] == 1  # never bought: co-creation at any time counts


def test_a_purchase_at_the_instant_of_co_creation_counts_as_unexposed(same_instant):
    rs = conversion_risk_sets(same_instant, bin_days=7, strata=(), exposure="feedback").to_pandas()
    events = rs.groupby("exposed")["events"].sum()
    # "same" converts unexposed (no exposed time before its purchase); "before" converts exposed
    assert events.get(0, 0) == 1 and events.get(1, 0) == 1

"""The customer-value report's words: the model-choice sentence for every
reason code, the co-creator sentence on both sides of each interval, and
the per-customer file a run writes."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from workbench.analyses import customer_value as cv
from workbench.errors import ParameterError


def test_choice_sentence_for_every_reason_code():
    decisive = cv.choice_sentence("Pareto/NBD", {"code": "lower_customer_mse", "best_value": 2.5, "second_value": 2.7,
                                                 "second": "BG/NBD", "difference": -0.2, "difference_se": 0.05})
    assert decisive.startswith("Trust Pareto/NBD: on the holdout it predicts each customer's purchases best")
    assert "2.500 against 2.700 for BG/NBD" in decisive and "a gap of 4.0 standard errors" in decisive
    tie = cv.choice_sentence("Pareto/NBD", {"code": "customer_mse_tie_lower_total_error", "chosen_total_error": -0.115,
                                            "other_total_error": -0.121})
    assert "equally well" in tie and "(-11.5% against -12.1% for the next best)" in tie
    assert cv.choice_sentence("BG/NBD", {"code": "lower_total_error"}) == "Trust BG/NBD: it misses the holdout total by the least."
    assert "calibration/holdout curve" in cv.choice_sentence("BG/NBD", {"code": "lower_bin_error"})
    assert "only purchase model" in cv.choice_sentence("BG/NBD", {"code": "only_model"})


@pytest.mark.parametrize("rate,drop,buy,stay", [
    ((1.5, 1.2, 1.8), (0.6, 0.5, 0.7), "buy more often", "stay longer as customers"),
    ((0.8, 0.7, 0.9), (1.4, 1.2, 1.6), "buy less often", "leave sooner as customers"),
    ((1.05, 0.9, 1.2), (0.95, 0.8, 1.1), "do not clearly buy more often", "do not clearly stay longer"),
])
def test_cocreator_sentence_follows_each_interval(rate, drop, buy, stay):
    text = cv.cocreator_sentence(rate, drop)
    assert text.startswith(f"Co-creators {buy}") and stay in text


def test_cocreator_sentence_refuses_undefined_intervals():
    assert "not estimable" in cv.cocreator_sentence((2.0, 0.0, math.inf), (1.0, 0.5, 2.0))


def test_covariate_sentence_names_the_reference_level():
    s = cv.covariate_sentence("segment=enthusiast", (1.5, 1.3, 1.7), (0.5, 0.4, 0.6), "mainstream")
    assert s.startswith("Customers with segment enthusiast buy at 1.50 times the purchase rate of customers with segment mainstream")
    assert "Their drop-out runs at 0.50 times the rate of customers with segment mainstream (95% CI 0.40 to 0.60)." in s
    assert "includes no difference" in cv.covariate_sentence("exposed=1", (1.0, 0.9, 1.1), None)


def test_spend_sentence_flags_a_large_correlation():
    assert "small, as the model assumes" in cv.spend_sentence(35.2, 35.1, 0.11, "USD")
    big = cv.spend_sentence(35.2, 35.1, -0.45, None)
    assert "doubtful" in big and "USD" not in big and "*" not in big


def test_value_sentence_with_and_without_a_currency():
    with_usd = cv.value_sentence(70896, 66318, 75790, 30.08, 28.14, 32.16, 2357, 52, "week", 0.1, "USD", "1998-06-30")
    assert "the 2,357 customers are worth 70,896.00 USD together over the next 52 weeks (95% CI 66,318.00 USD to 75,790.00 USD)" in with_usd
    assert "30.08 USD each on average" in with_usd and "at 10% a year" in with_usd
    bare = cv.value_sentence(70896, 66318, 75790, 30.08, 28.14, 32.16, 2357, 52, "week", 0.1, None, "1998-06-30")
    assert "USD" not in bare and "**" not in bare and "worth 70,896.00 together" in bare


def test_sbg_sentence_says_whether_renewal_rises():
    assert "rises from 89.0% in period 1 to 92.0%" in cv.sbg_sentence(22, 7323, 30, 0.11, 0.89, 0.92, 0.306, 10.2, 0.1)
    assert "falls from" in cv.sbg_sentence(2, 10, 30, 0.11, 0.9, 0.8, 0.3, 2.0, 0.1)


def test_parameters_are_checked(tmp_path):
    with pytest.raises(ParameterError, match="time_unit must be one of 'week', 'day', got 'month'"):
        cv.CustomerValue(tmp_path, time_unit="month")
    with pytest.raises(ParameterError, match="calibration_end must be a date like '1997-09-30' or empty, got 'soon'"):
        cv.CustomerValue(tmp_path, calibration_end="soon")
    with pytest.raises(ParameterError, match="horizon must be a finite number > 0"):
        cv.CustomerValue(tmp_path, horizon=float("inf"))


def test_a_report_run_writes_customers_parquet_with_intervals(report_runs):
    run = report_runs("customer_lifetime_value", dataset="cdnow-sample", time_unit="week", calibration_end="1997-09-30", horizon=26.0)
    assert run.ok, run.error
    table = pd.read_parquet(run.run_dir / "customers.parquet")
    assert len(table) == 2357 and table["user_id"].is_unique
    for col in ("probability_alive", "expected_purchases", "expected_spend", "clv"):
        assert (table[f"{col}_ci_low"] <= table[col]).all() and (table[col] <= table[f"{col}_ci_high"]).all()
    assert set(table["model"]) == {run.metrics["clv.choice.chosen"]}
    assert table["clv"].sum() == pytest.approx(run.metrics["clv.total_clv"], rel=5e-6)  # metrics are recorded to 6 significant digits
    assert run.metrics["report.headline"].startswith(f"Trust {run.metrics['clv.choice.chosen']}")
    alive = (table["probability_alive"]).mean()
    assert f"still active with probability {alive:.0%}" in run.report.read_text()

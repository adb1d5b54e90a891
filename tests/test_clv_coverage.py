"""Planted truth over repeated simulations (Pareto/NBD's is slow: ``pytest -m slow``): for
BG/NBD, Pareto/NBD, Gamma-Gamma and sBG, hundreds of datasets drawn from the
model, each fitted; the 95% intervals must cover the planted value 90-98% of
the time and the median estimate must be close to it (5%, or 4 Monte Carlo
standard errors for a weakly identified parameter). The simulation study is
benchmarks/coverage_clv.py (which prints the full table); seeds are fixed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _study():
    spec = importlib.util.spec_from_file_location("coverage_clv", ROOT / "benchmarks" / "coverage_clv.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# Pareto/NBD's study takes minutes: slow (make test-slow); the others take seconds and run with make test.
@pytest.mark.parametrize("model", ["bgnbd", pytest.param("pareto_nbd", marks=pytest.mark.slow), "gamma_gamma", "sbg"])
def test_intervals_cover_the_planted_truth(model):
    study = _study()
    reps = study.DEFAULT_REPS[model]
    assert reps >= 100
    table = study.coverage(model, reps)
    print(table.to_string(index=False))
    assert (table.fits >= 0.99 * reps).all(), "fits failed"
    for row in table.itertuples():
        assert 0.90 <= row.coverage <= 0.98, f"{model} {row.parameter}: coverage {row.coverage:.3f}"
        # close: the median estimate within 5% of the truth, or within 4 Monte Carlo standard errors
        # of the median for a weakly identified parameter (Pareto/NBD's beta: relative RMSE 0.35;
        # its MLE is right-skewed, so the mean sits further out than the median)
        tol = max(0.05, 4 * 1.25 * row.rel_rmse / row.fits**0.5)
        assert abs(row.rel_median_bias) < tol, f"{model} {row.parameter}: median estimate {row.median_estimate:.4g} vs truth {row.truth}"


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bgnbd", "pareto_nbd"])
def test_prediction_intervals_cover_the_true_expected_values(model):
    """95% intervals of CLV, P(alive), expected purchases and spend per customer, and of the total:
    over 200 datasets each covers the customer's expected value under the true parameters given her
    history 90-98% of the time (all customers, and those with a repeat purchase)."""
    study = _study()
    table = study.prediction_coverage(model, study.PREDICTION_REPS)
    print(table.to_string(index=False))
    assert study.PREDICTION_REPS >= 200 and (table.fits == study.PREDICTION_REPS).all()
    assert {"clv", "probability_alive", "total_clv"} <= set(table.quantity)
    for row in table.itertuples():
        assert 0.90 <= row.coverage <= 0.98, f"{model} {row.quantity} ({row.customers}): coverage {row.coverage:.3f}"

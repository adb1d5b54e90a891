"""The co-creation report at 200,000 simulated users, read on the exact
per-user paths and on the aggregated ones (slow; ``make test-slow``): every
hazard ratio it prints agrees within the stated tolerance, and both cover the
planted truth.

Tolerances (relative): 3% for the time-varying, adjusted and naive hazard
ratios and the dose trend (exact Cox, Efron ties, against the
piecewise-exponential model in weekly bins); 5% for the weighted landmark
hazard ratio (per-user propensity on exact covariates against pattern
propensity with numeric covariates in bins, and a user with a missing
covariate kept on the aggregated path). The referral rate ratio is the same
Poisson model on both paths (compared at 4,000 users in
tests/test_analyses_cocreation.py and at 100,000 in
tests/test_referrals_scale.py; its per-user path needs about 9 GB per million
user-period rows, so it is not run here).
"""

from __future__ import annotations

import pytest

from workbench.analyses import cocreation as cc

pytestmark = pytest.mark.slow

TOL = {"naive_ever": 0.03, "time_varying": 0.03, "adjusted": 0.03}


@pytest.fixture(scope="module")
def study_200k(tmp_path_factory):
    from workbench.data.simulate import simulate

    out = tmp_path_factory.mktemp("cc200k") / "sim"
    simulate(users=200_000, seed=4, out=out, progress=False)
    # referrals on cells on both sides: the per-user referral GLM would need ~16 GB here
    exact = cc.CoCreation(out, max_referral_rows=0)
    agg = cc.CoCreation(out, max_episodes=0, max_referral_rows=0)
    return exact, agg


def test_exact_and_aggregated_report_paths_agree_at_200k_users(study_200k):
    exact, agg = study_200k
    assert exact.exact and not agg.exact
    rows = []
    for key, tol in TOL.items():
        e, a = exact.cox[key].hazard_ratio()[0], agg.cox[key].hazard_ratio()[0]
        rows.append((key, e, a))
        assert exact.cox[key].path == "exact" and agg.cox[key].path == "aggregated"
        assert a == pytest.approx(e, rel=tol), key
    e, a = exact.ipw.hazard_ratio("weighted")[0], agg.ipw.hazard_ratio("weighted")[0]
    rows.append(("landmark_weighted", e, a))
    assert a == pytest.approx(e, rel=0.05)
    e, a = float(exact.dose.trend["hazard_ratio"]), float(agg.dose.trend["hazard_ratio"])
    rows.append(("dose_per_idea", e, a))
    assert a == pytest.approx(e, rel=0.03)
    e, a = exact.ph_check.tests.loc["exposed", "p_value"], agg.ph_check.tests.loc["exposed", "p_value"]
    rows.append(("ph_p_value", e, a))
    for name, e, a in rows:
        print(f"{name:<20} exact {e:.4f}  aggregated {a:.4f}  ({100 * (a / e - 1):+.2f}%)")
    planted = cc.planted_value(exact.truth, "churn", "hazard_ratio_adopted")
    for study in (exact, agg):
        hr, lo, hi = study.cox["adjusted"].hazard_ratio()
        assert lo <= planted <= hi, (study.exact, hr, lo, hi, planted)

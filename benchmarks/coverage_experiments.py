"""Coverage of the experiment readout over repeated simulations, end to end
(contract dataset -> engine tables -> readout):

1. fixed horizon: over ``--datasets`` simulated three-arm experiments
   (benchmarks/experiment_sim.py, planted effects on conversion, spend,
   churn and ideas; churn by cancel events; 30-day horizon), how often each
   95% interval covers the planted difference, and the hazard ratio of churn;
2. A/A with a look every day: over ``--aa`` simulated experiments with no
   effect, how often the always-valid interval excludes 0 at any daily look,
   against the naive daily 95% interval.

    .venv/bin/python benchmarks/coverage_experiments.py                       # 200 + 200 datasets of 4,000 users
    .venv/bin/python benchmarks/coverage_experiments.py --datasets 20 --aa 20 # a quick look

Each dataset takes a few seconds (mostly compiling the engine's queries), so
the default run takes about half an hour on two cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import experiment_sim as es  # noqa: E402

H = 30
AA_METRICS = ["retained", "converted", "revenue", "revenue_per_purchase"]


def one_fixed(seed: int, users: int, folder: Path) -> list[dict]:
    from workbench.data import load_dataset
    from workbench.models.experiments import readout

    ds = load_dataset(es.write(es.simulate(users, seed), folder), validate=False)
    res = readout(ds, experiment="onboarding", horizon_days=H, churn="cancel")
    rows = []
    for (metric, arm), truth in es.effects(horizon=H).items():
        r = res.effect(metric, arm)
        rows.append({"dataset": seed, "metric": metric, "arm": arm, "truth": truth, "estimate": r["effect"],
                     "covered": r["ci_low"] < truth < r["ci_high"], "covered_adjusted": r["adj_ci_low"] < truth < r["adj_ci_high"]})
    hr = res.time_to_event["time_to_churn"].comparisons.set_index("arm")
    for arm, truth in (("guided", 0.8), ("checklist", 1.0)):
        rows.append({"dataset": seed, "metric": "churn_hazard_ratio", "arm": arm, "truth": truth, "estimate": hr.loc[arm, "hazard_ratio"],
                     "covered": hr.loc[arm, "hr_ci_low"] < truth < hr.loc[arm, "hr_ci_high"], "covered_adjusted": np.nan})
    return rows


AA = es.Design(arms={"control": 0.5, "treatment": 0.5}, churn_hr={}, conversion_hr={}, spend_multiplier={}, idea_hr={})


def one_aa(seed: int, users: int, folder: Path) -> list[dict]:
    from workbench.data import load_dataset
    from workbench.models.experiments import readout

    ds = load_dataset(es.write(es.simulate(users, seed, AA), folder, AA), validate=False)
    res = readout(ds, experiment="onboarding", horizon_days=H, churn="cancel", metrics=AA_METRICS, sequential=True, cuped=False)
    rows = []
    for metric, g in res.sequential.groupby("metric"):
        rows.append({"metric": metric, "looks": len(g),
                     "always_valid": bool(((g["seq_ci_low"] > 0) | (g["seq_ci_high"] < 0)).any()),
                     "naive_daily": bool(((g["ci_low"] > 0) | (g["ci_high"] < 0)).any()),
                     "fixed_horizon": bool(res.effect(metric, "treatment")["p_value"] < 0.05)})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--datasets", type=int, default=200, help="three-arm datasets for the fixed-horizon coverage (default 200)")
    ap.add_argument("--aa", type=int, default=200, help="A/A datasets with daily looks (default 200)")
    ap.add_argument("--users", type=int, default=4000, help="users per dataset (default 4,000)")
    ap.add_argument("--aa-users", type=int, default=None, help="users per A/A dataset (default: --users)")
    args = ap.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        fixed = [r for i in range(args.datasets) for r in one_fixed(10_000 + i, args.users, Path(tmp) / f"f{i}")]
        aa = [r for i in range(args.aa) for r in one_aa(20_000 + i, args.aa_users or args.users, Path(tmp) / f"a{i}")]
    if fixed:
        t = pd.DataFrame(fixed).groupby(["metric", "arm"], sort=False).agg(
            truth=("truth", "first"), mean_estimate=("estimate", "mean"), coverage=("covered", "mean"),
            coverage_adjusted=("covered_adjusted", "mean"))
        print(f"Fixed horizon: {args.datasets} datasets of {args.users:,} users, 3 arms, 30-day horizon, 95% intervals")
        print(t.to_string(float_format=lambda v: f"{v:.4g}"))
        plain = pd.DataFrame(fixed)
        plain = plain[plain["metric"] != "churn_hazard_ratio"]
        print(f"all {len(plain):,} intervals: coverage {plain['covered'].mean():.3f}; "
              f"Holm-adjusted: all 18 planted effects covered in {plain.groupby('dataset')['covered_adjusted'].all().mean():.3f} of datasets")
    if aa:
        a = pd.DataFrame(aa).groupby("metric").agg(looks=("looks", "median"), always_valid=("always_valid", "mean"),
                                                 naive_daily=("naive_daily", "mean"), fixed_horizon=("fixed_horizon", "mean"))
        print(f"\nA/A: {args.aa} datasets of {args.users:,} users, a look every day; share of experiments where the interval "
              "excludes 0 at any look (always-valid, naive daily) or at the end (fixed horizon)")
        print(a.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

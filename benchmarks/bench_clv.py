"""Benchmark the CLV fits: the workbench against the ``lifetimes`` package
(0.11.3, the best-known Python implementation) fitting BG/NBD and Pareto/NBD
on the same customers, in one run:

1. the CDNOW sample (2,357 customers, weeks, calibration end 1997-09-30);
2. the 1,000,000-user simulated product (``workbench simulate --users 1000000
   --seed 1``, cached under data/interim/sim-1m and shared with
   bench_tables.py): its customers' repeat summary from ``workbench.tables``;
3. 1,000,000 customers drawn from each model (planted CDNOW-like values),
   with times in whole days as the repeat summary gives them.

    make bench                                   # installs the `bench` extra (lifetimes), runs every benchmark
    .venv/bin/python benchmarks/bench_clv.py
    .venv/bin/python benchmarks/bench_clv.py --customers 100000 --users 100000   # a quicker look
    .venv/bin/python benchmarks/bench_clv.py --skip product --skip-raw pareto_nbd   # leave out lifetimes' slowest fits
    .venv/bin/python benchmarks/bench_clv.py --peer-python benchmarks/.venv-peer/bin/python
    .venv/bin/python benchmarks/bench_clv.py --skip product --repeat 5   # medians of 5 timings a side

Two comparisons per input, both in the table:

* **weighted patterns (equal terms)**: both sides fit the same table of unique
  (frequency, recency, T) patterns with customer counts, written once to a
  Parquet file (the workbench's ``n`` column, lifetimes' ``weights=``
  argument, which lifetimes documents for exactly this). Compression is done
  before either clock starts.
* **raw rows**: both sides get one row per customer; the workbench compresses
  inside its timed span (its default path), lifetimes fits the rows as given.
  The difference between the two comparisons is the part of the speed-up that
  comes from compression, which lifetimes also supports.

Timed spans (the same work on both sides, as far as lifetimes allows): the
workbench's ``fit_bgnbd`` / ``fit_pareto_nbd`` in this process: its input
checks, the fit and the standard errors of every parameter (the Hessian at the
optimum); ``lifetimes`` in a child process (``--peer-python``, by default this
interpreter) with its default settings, its ``fit`` call on the loaded
DataFrame: its input checks, the fit, and for BG/NBD the Hessian at the optimum
(autograd's ``hessian``, from which lifetimes' standard errors come).
lifetimes' Pareto/NBD ``fit`` computes no Hessian and has no standard errors
(Nelder-Mead from random values, seeded here), so on Pareto/NBD the workbench
does more work than lifetimes inside the timed span. Each side is timed
``--repeat`` times (default 3) and the median is reported. Times are
wall-clock and CPU seconds; the speed-ups use CPU seconds, which a busy shared
machine disturbs least. The parameter difference is the largest relative
difference over the four parameters (weighted fits); both log-likelihoods are
evaluated with the workbench's likelihood at each side's parameters.

Targets (1,000,000 customers): parameters equal to 1e-3 relative, the
workbench at least 20 times faster than lifetimes on the weighted patterns
(equal terms). Exit status 1 if missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TARGET_SPEEDUP = 20.0
TARGET_RELDIFF = 1e-3
BGNBD_TRUTH = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)
PNBD_TRUTH = dict(r=0.553, alpha=10.578, s=0.606, beta=11.669)

PEER = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, ParetoNBDFitter
np.random.seed(0)  # lifetimes' Pareto/NBD starts Nelder-Mead from random values: make the run repeatable
path, model = sys.argv[1], sys.argv[2]
df = pd.read_parquet(path)
f, r, T = df["frequency"], df["recency"], df["T"]
weights = df["n"] if "n" in df.columns else None
fitter = BetaGeoFitter() if model == "bgnbd" else ParetoNBDFitter()
t0, c0 = time.perf_counter(), time.process_time()
fitter.fit(f, r, T, weights=weights)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
names = ["r", "alpha", "a", "b"] if model == "bgnbd" else ["r", "alpha", "s", "beta"]
import lifetimes
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "params": [float(fitter.params_[n]) for n in names], "version": lifetimes.__version__}))
"""


def run_peer(python: str, path: Path, model: str) -> dict:
    proc = subprocess.run([python, "-c", PEER, str(path), model], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"lifetimes ({model}) failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict]) -> dict:
    """The last run's result with the median wall-clock and CPU seconds over ``runs``."""
    out = dict(runs[-1])
    out["seconds"] = float(np.median([r["seconds"] for r in runs]))
    out["cpu_seconds"] = float(np.median([r["cpu_seconds"] for r in runs]))
    out["cpu_runs"] = [round(r["cpu_seconds"], 4) for r in runs]
    return out


def run_workbench(df: pd.DataFrame, model: str) -> dict:
    """Fit ``df`` (per customer, or patterns with counts ``n``) in this process."""
    from workbench.models.clv import fit_bgnbd, fit_pareto_nbd

    fit = fit_bgnbd if model == "bgnbd" else fit_pareto_nbd
    cols = [c for c in ("frequency", "recency", "T", "n") if c in df.columns]
    t0, c0 = time.perf_counter(), time.process_time()
    res = fit(df[cols])
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "params": res.values.tolist(),
        "patterns": res.patterns,
        "loglik": res.loglik,
        "se": res.params["std_err"].tolist(),
    }


def patterns(df: pd.DataFrame) -> pd.DataFrame:
    """Unique (frequency, recency, T) rows with their customer counts ``n`` (what the engine's
    repeat_summary_compressed returns), computed before any clock starts."""
    return df.groupby(["frequency", "recency", "T"], sort=True).size().rename("n").reset_index()


def loglik_at(pat: pd.DataFrame, model: str, params) -> float:
    from workbench.models.clv import bgnbd_loglik, pareto_nbd_loglik

    ll = bgnbd_loglik if model == "bgnbd" else pareto_nbd_loglik
    x, tx, T, n = (pat[c].to_numpy(float) for c in ("frequency", "recency", "T", "n"))
    return float(n @ ll(params, x, tx, T))


# ---------------------------------------------------------------- inputs
def cdnow_summary() -> pd.DataFrame:
    from workbench.data import load_dataset
    from workbench.tables import repeat_summary

    ds = load_dataset("cdnow-sample")
    return repeat_summary(ds, time_unit="week", calibration_end="1997-09-30").to_pandas()


def product_summary(users: int) -> tuple[pd.DataFrame, str]:
    from workbench.data import load_dataset
    from workbench.data.simulate import simulate
    from workbench.tables import repeat_summary
    from workbench.tables.tracking import calibration_window

    # the same cache folder as bench_tables.py (sim-1m, sim-100k, ...)
    name = f"sim-{users // 1_000_000}m" if users % 1_000_000 == 0 else f"sim-{users // 1000}k" if users % 1000 == 0 else f"sim-{users}"
    folder = ROOT / "data" / "interim" / name
    if not (folder / "users.parquet").exists():
        print(f"simulating {users:,} users into {folder.relative_to(ROOT)} (once) ...", file=sys.stderr)
        simulate(users=users, seed=1, out=folder, progress=False, force=True)
    ds = load_dataset(folder)
    cal = calibration_window(ds)["calibration_end"]
    return repeat_summary(ds, time_unit="week", calibration_end=cal).to_pandas(), str(cal.date())


def drawn_summary(model: str, n: int, seed: int) -> pd.DataFrame:
    """``n`` customers from the model; first purchases over 12 weeks, calibration 39 weeks; whole days."""
    from workbench.data.simulate import simulate_bgnbd_summary, simulate_pareto_nbd_summary

    rng = np.random.default_rng(seed)
    T = (273 - rng.integers(0, 84, n)) / 7.0  # 39 weeks minus up to 12 weeks, in whole days
    if model == "bgnbd":
        s = simulate_bgnbd_summary(n=n, T=T, seed=rng, **BGNBD_TRUTH)
    else:
        s = simulate_pareto_nbd_summary(n=n, T=T, seed=rng, **PNBD_TRUTH)
    s["recency"] = np.floor(s["recency"].to_numpy() * 7.0) / 7.0  # the day of the last purchase
    return s[["frequency", "recency", "T"]]


# ---------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="CLV fits: workbench vs lifetimes")
    ap.add_argument("--users", type=int, default=1_000_000, help="users of the simulated product (default 1,000,000)")
    ap.add_argument("--customers", type=int, default=1_000_000, help="customers drawn from each model (default 1,000,000)")
    ap.add_argument("--peer-python", default=sys.executable, help="Python of the environment holding lifetimes")
    ap.add_argument("--skip", nargs="*", default=[], choices=["cdnow", "product", "drawn"], help="inputs to leave out")
    ap.add_argument("--skip-raw", nargs="*", default=[], choices=["bgnbd", "pareto_nbd"],
                    help="models whose raw per-customer fits to leave out (lifetimes' raw Pareto/NBD takes minutes at 1M)")
    ap.add_argument("--repeat", type=int, default=3, help="timings of each weighted fit, each side; the median is reported (default 3)")
    ap.add_argument("--json", type=Path, help="also write the table as JSON here")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")

    inputs = []
    if "cdnow" not in args.skip:
        s = cdnow_summary()
        inputs += [("CDNOW sample", m, s) for m in ("bgnbd", "pareto_nbd")]
    if "product" not in args.skip:
        s, cal = product_summary(args.users)
        inputs += [(f"simulated product, {args.users:,} users (cal. end {cal})", m, s) for m in ("bgnbd", "pareto_nbd")]
    if "drawn" not in args.skip:
        inputs += [(f"{args.customers:,} customers drawn from the model", m, drawn_summary(m, args.customers, seed=7)) for m in ("bgnbd", "pareto_nbd")]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, model, df in inputs:
            raw_path, pat_path = Path(tmp) / "raw.parquet", Path(tmp) / "patterns.parquet"
            pat = patterns(df[["frequency", "recency", "T"]])
            df[["frequency", "recency", "T"]].to_parquet(raw_path)
            pat.to_parquet(pat_path)
            print(f"{label}: {model}: {len(df):,} customers, {len(pat):,} patterns ...", file=sys.stderr, flush=True)
            wb_w = median_of([run_workbench(pat, model) for _ in range(max(args.repeat, 1))])
            peer_w = median_of([run_peer(args.peer_python, pat_path, model) for _ in range(max(args.repeat, 1))])
            raw = model not in args.skip_raw
            wb_r = run_workbench(df, model) if raw else None
            peer_r = run_peer(args.peer_python, raw_path, model) if raw else None
            ours, theirs = np.array(wb_w["params"]), np.array(peer_w["params"])
            nan = float("nan")
            rows.append(
                {
                    "input": label,
                    "model": "BG/NBD" if model == "bgnbd" else "Pareto/NBD",
                    "customers": len(df),
                    "patterns": len(pat),
                    "workbench_weighted_cpu_s": wb_w["cpu_seconds"],
                    "lifetimes_weighted_cpu_s": peer_w["cpu_seconds"],
                    "speedup_weighted": peer_w["cpu_seconds"] / wb_w["cpu_seconds"],
                    "workbench_raw_cpu_s": wb_r["cpu_seconds"] if raw else nan,
                    "lifetimes_raw_cpu_s": peer_r["cpu_seconds"] if raw else nan,
                    "speedup_raw": peer_r["cpu_seconds"] / wb_r["cpu_seconds"] if raw else nan,
                    "workbench_weighted_s": wb_w["seconds"],
                    "lifetimes_weighted_s": peer_w["seconds"],
                    "max_rel_diff": float(np.max(np.abs(ours / theirs - 1.0))),
                    "max_rel_diff_raw": float(np.max(np.abs(np.array(peer_r["params"]) / np.array(wb_r["params"]) - 1.0))) if raw else nan,
                    "loglik_workbench": wb_w["loglik"],
                    "loglik_lifetimes": loglik_at(pat, model, theirs),
                    "params_workbench": [round(float(v), 6) for v in ours],
                    "params_lifetimes": [round(float(v), 6) for v in theirs],
                    "lifetimes_version": peer_w["version"],
                    "workbench_weighted_cpu_runs": wb_w["cpu_runs"],
                    "lifetimes_weighted_cpu_runs": peer_w["cpu_runs"],
                }
            )
            r = rows[-1]
            print(
                f"  weighted: workbench {r['workbench_weighted_cpu_s']:.2f}s cpu, lifetimes "
                f"{r['lifetimes_weighted_cpu_s']:.2f}s, x{r['speedup_weighted']:.1f}; "
                f"raw: x{r['speedup_raw']:.1f}; max rel diff {r['max_rel_diff']:.2e}",
                file=sys.stderr,
                flush=True,
            )

    table = pd.DataFrame(rows)
    show = table[["input", "model", "customers", "patterns", "workbench_weighted_cpu_s", "lifetimes_weighted_cpu_s", "speedup_weighted",
                  "workbench_raw_cpu_s", "lifetimes_raw_cpu_s", "speedup_raw", "max_rel_diff", "loglik_workbench", "loglik_lifetimes"]]
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 60):
        print(show.to_string(index=False, float_format=lambda v: f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.1f}"))
    print()
    for r in rows:
        print(f"{r['input']} / {r['model']}: workbench {r['params_workbench']}  lifetimes {r['params_lifetimes']}")
    print()
    for r in rows:
        print(
            f"{r['input']} / {r['model']}: weighted-fit CPU seconds per run: workbench "
            f"{r['workbench_weighted_cpu_runs']}  lifetimes {r['lifetimes_weighted_cpu_runs']}"
        )
    print(
        f"\nmethod: weighted = both fit the same unique (frequency, recency, T) patterns with customer counts; CPU seconds, "
        f"median of {max(args.repeat, 1)} timings a side (raw rows: one timing). Timed: the workbench's fit_bgnbd/fit_pareto_nbd "
        "(input checks, fit, standard errors from the Hessian at the optimum); lifetimes' fitter.fit (input checks, fit; "
        "BG/NBD also its autograd Hessian for the standard errors; Pareto/NBD computes no Hessian, so there the workbench "
        f"does more work). lifetimes {rows[0]['lifetimes_version'] if rows else '?'}."
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    big = table[table.customers >= 1_000_000]
    if big.empty:
        print("\nno input with 1,000,000 customers: targets not checked")
        return 0
    ok_speed = bool((big.speedup_weighted >= TARGET_SPEEDUP).all())
    ok_params = bool((big.max_rel_diff <= TARGET_RELDIFF).all())
    print(f"\nat 1,000,000 customers, both fitting the same weighted patterns: at least {TARGET_SPEEDUP:g}x faster: "
          f"{'yes' if ok_speed else 'NO'}; parameters within {TARGET_RELDIFF:g}: {'yes' if ok_params else 'NO'}")
    return 0 if ok_speed and ok_params else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    raise SystemExit(main())

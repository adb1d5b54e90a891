"""Benchmark: the workbench's co-creation hazard models against lifelines'
``CoxTimeVaryingFitter`` on the same counting-process episodes.

For each size, the simulator writes a dataset (planted hazard ratio 0.6 from
the first adopted idea, segments that confound), ``workbench.tables`` builds
the episodes (exposure ``adopted``, churn = cancel events) and the risk sets,
and each model is fitted **in its own subprocess** on the same files, so that
time and peak memory are measured in isolation:

- ``workbench_cox``: ``workbench.models.survival.cox_time_varying`` - the exact
  Cox partial likelihood on the episodes (Efron ties, the default), adjusted
  for segment, with cluster-robust standard errors. Agrees with statsmodels
  PHReg to 1e-8 (tests/test_survival.py); this is the model the 10x / 1%
  target is about.
- ``workbench_cox_breslow``: the same with Breslow ties (the only method
  before Efron was added: how much Efron costs).
- ``workbench_discrete``: ``discrete_time_hazard`` on the aggregated risk sets
  (cloglog GLM on counts per week of tenure, exposure and segment); its input
  does not grow with users, but it differs from the Cox model by the
  discretisation (about 1%).
- ``lifelines_ctv``: lifelines ``CoxTimeVaryingFitter`` (Efron ties; event
  times are in seconds, so ties are negligible) on the same episodes with the
  same two covariates; killed after ``--lifelines-timeout`` seconds.
- ``statsmodels_phreg`` (only up to ``--phreg-max-users``): PHReg with
  ``entry`` and Efron ties, the reference.

Time is the fit alone (reading the Parquet file is excluded); peak memory is
the subprocess's maximum resident set size, with the size right after loading
the data reported beside it. Every worker runs with one BLAS thread
(``--blas-threads``), the same for all models.

    python benchmarks/bench_survival.py                   # 20,000, 100,000 and 1,000,000 users (about 25 minutes)
    python benchmarks/bench_survival.py --users 20000 --json out.json

lifelines' ``CoxTimeVaryingFitter`` walks the event times one by one, each
over the whole risk set, so its time grows about quadratically: measured here
it took 317 s at 20,000 users and did not finish in 600 s at 100,000. Once it
fails to finish at one size it is not run at larger ones, and the speed-up
there is reported as a lower bound (timeout / workbench time); the hazard
ratios are compared at the largest size it finishes.

lifelines is a benchmark-only peer, not installed by ``make bench``: its
latest release declares pandas<3, so pip's resolver would downgrade pandas.
Install it beside the environment (it works with pandas 3.1 here):
``pip install --no-deps "lifelines==0.30.3" "autograd-gamma>=0.5"`` (see the
``bench-survival`` extra in pyproject.toml). Without it the workbench models
are still timed and lifelines is reported as not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


# ----------------------------------------------------------------- workers (run in a subprocess)
def _rss_mb() -> float:
    """Peak resident set size of this process so far (VmHWM: unlike getrusage's
    ru_maxrss, it is not inherited from the parent across fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:  # not Linux: fall back
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _worker(method: str, folder: Path) -> dict:
    import numpy as np
    import pandas as pd
    import statsmodels.api  # noqa: F401  imported before timing: import time is not fit time

    if method == "workbench_discrete":
        rs = pd.read_parquet(folder / "risk_sets.parquet")
        base = _rss_mb()
        from workbench.models.survival import discrete_time_hazard

        t = time.perf_counter()
        res = discrete_time_hazard(rs, adjust_for=["segment"])
        fit_s = time.perf_counter() - t
        hr, lo, hi = res.hazard_ratio()
        return {"fit_s": fit_s, "hr": hr, "ci_low": lo, "ci_high": hi, "rows": len(rs), "base_rss_mb": base}
    ep = pd.read_parquet(folder / "episodes.parquet")
    base = _rss_mb()
    if method in ("workbench_cox", "workbench_cox_breslow"):
        from workbench.models.survival import cox_time_varying

        t = time.perf_counter()
        res = cox_time_varying(ep, adjust_for=["segment"], keep_residuals=False,
                               ties="breslow" if method == "workbench_cox_breslow" else "efron")
        fit_s = time.perf_counter() - t
        hr, lo, hi = res.hazard_ratio()
        return {"fit_s": fit_s, "hr": hr, "ci_low": lo, "ci_high": hi, "rows": len(ep), "base_rss_mb": base,
                "hr_segment": res.hazard_ratio("segment[mainstream]")[0]}
    X = pd.DataFrame({"id": ep["user_id"], "start": ep["start"], "stop": ep["stop"], "event": ep["churned"].astype(int),
                      "exposed": ep["exposed"].astype(float), "mainstream": (ep["segment"] == "mainstream").astype(float)})
    if method == "lifelines_ctv":
        import warnings

        from lifelines import CoxTimeVaryingFitter

        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ctv = CoxTimeVaryingFitter()
            ctv.fit(X, id_col="id", event_col="event", start_col="start", stop_col="stop", show_progress=False)
        fit_s = time.perf_counter() - t
        s = ctv.summary
        return {"fit_s": fit_s, "hr": float(np.exp(ctv.params_["exposed"])), "ci_low": float(s.loc["exposed", "exp(coef) lower 95%"]),
                "ci_high": float(s.loc["exposed", "exp(coef) upper 95%"]), "rows": len(X), "base_rss_mb": base,
                "hr_segment": float(np.exp(ctv.params_["mainstream"]))}
    if method == "statsmodels_phreg":
        from statsmodels.duration.hazard_regression import PHReg

        t = time.perf_counter()
        m = PHReg(X["stop"].to_numpy(), X[["exposed", "mainstream"]].to_numpy(), status=X["event"].to_numpy(),
                  entry=X["start"].to_numpy(), ties="efron")
        r = m.fit()
        fit_s = time.perf_counter() - t
        b = float(r.params[0])
        return {"fit_s": fit_s, "hr": float(np.exp(b)), "log_hr": b, "rows": len(X), "base_rss_mb": base,
                "hr_segment": float(np.exp(r.params[1]))}
    raise SystemExit(f"unknown method {method}")


BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _run_worker(method: str, folder: Path, timeout: float | None, blas_threads: int | None = 1) -> dict:
    cmd = [sys.executable, str(HERE), "--worker", method, str(folder)]
    env = dict(os.environ)
    if blas_threads:
        env.update({v: str(blas_threads) for v in BLAS_VARS})
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"method": method, "status": f"did not finish in {timeout:.0f} s"}
    if p.returncode != 0:
        return {"method": method, "status": "failed", "error": p.stderr.strip().splitlines()[-1:] or ["?"]}
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out.update(method=method, status="ok", wall_s=time.perf_counter() - t)
    return out


# ----------------------------------------------------------------- driver
def prepare(users: int, seed: int, folder: Path) -> dict:
    from workbench import tables
    from workbench.data import load_dataset
    from workbench.data.simulate import simulate

    t = time.perf_counter()
    sim = simulate(users=users, seed=seed, out=folder / "data", progress=False)
    t_sim = time.perf_counter() - t
    ds = load_dataset(folder / "data", validate=False)
    t = time.perf_counter()
    ep = tables.episodes(ds, exposure="adopted", churn="cancel").to_pandas()
    t_ep = time.perf_counter() - t
    t = time.perf_counter()
    rs = tables.risk_sets(ds, exposure="adopted", churn="cancel", bin_days=7, strata=("segment",)).to_pandas()
    t_rs = time.perf_counter() - t
    ep.to_parquet(folder / "episodes.parquet", index=False)
    rs.to_parquet(folder / "risk_sets.parquet", index=False)
    return {"users": users, "episodes": len(ep), "risk_set_rows": len(rs), "simulate_s": t_sim, "episodes_table_s": t_ep,
            "risk_sets_table_s": t_rs, "planted_hr": sim.truth["churn"]["hazard_ratio_adopted"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, nargs="+", default=[20_000, 100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--lifelines-timeout", type=float, default=600.0, help="seconds before lifelines is stopped (default 600)")
    ap.add_argument("--phreg-max-users", type=int, default=100_000, help="run statsmodels PHReg up to this many users")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="BLAS threads in every worker (default 1: small dense solves are far slower with threads on a busy "
                         "machine; 0 leaves the environment as it is)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--worker", nargs=2, metavar=("METHOD", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        out = _worker(args.worker[0], Path(args.worker[1]))
        out["peak_rss_mb"] = _rss_mb()
        print(json.dumps(out))
        return 0
    results = []
    lifelines_failed_at = None
    import importlib.util

    has_lifelines = importlib.util.find_spec("lifelines") is not None
    if not has_lifelines:
        print("lifelines is not installed: only the workbench models (and PHReg) are timed; see this script's docstring.")
    for n in sorted(args.users):
        with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
            folder = Path(tmp)
            info = prepare(n, args.seed, folder)
            print(f"\n{n:,} users: {info['episodes']:,} episodes, {info['risk_set_rows']:,} risk-set rows "
                  f"(simulate {info['simulate_s']:.1f} s, episodes table {info['episodes_table_s']:.1f} s, "
                  f"risk sets {info['risk_sets_table_s']:.1f} s)", flush=True)
            methods = ["workbench_cox", "workbench_cox_breslow", "workbench_discrete"] + (["lifelines_ctv"] if has_lifelines else [])
            if n <= args.phreg_max_users:
                methods.append("statsmodels_phreg")
            rows = []
            for m in methods:
                if m == "lifelines_ctv" and lifelines_failed_at is not None:
                    rows.append({"method": m, "status": f"not run: did not finish in {args.lifelines_timeout:.0f} s at "
                                                       f"{lifelines_failed_at:,} users", "users": n})
                    print(f"  {m:<20} {rows[-1]['status']}", flush=True)
                    continue
                r = _run_worker(m, folder, args.lifelines_timeout if m in ("lifelines_ctv", "statsmodels_phreg") else None,
                                args.blas_threads or None)
                if m == "lifelines_ctv" and r["status"] != "ok":
                    lifelines_failed_at = n
                r.update(users=n, **{k: v for k, v in info.items() if k != "users"})
                rows.append(r)
                if r["status"] == "ok":
                    print(f"  {m:<20} fit {r['fit_s']:8.2f} s   peak RSS {r['peak_rss_mb']:7.0f} MB (after load {r['base_rss_mb']:.0f})"
                          f"   HR {r['hr']:.6f}", flush=True)
                else:
                    print(f"  {m:<20} {r['status']} {r.get('error', '')}", flush=True)
            by = {r["method"]: r for r in rows}
            ll, wb = by.get("lifelines_ctv"), by["workbench_cox"]
            for r in rows:
                if ll and ll["status"] == "ok" and r["status"] == "ok":
                    r["hr_diff_vs_lifelines_pct"] = 100 * (r["hr"] / ll["hr"] - 1)
                    r["speedup_vs_lifelines"] = ll["fit_s"] / r["fit_s"]
            if ll and ll["status"] != "ok" and wb["status"] == "ok":
                wb["speedup_vs_lifelines_at_least"] = args.lifelines_timeout / wb["fit_s"]
                print(f"  workbench_cox vs lifelines: at least {wb['speedup_vs_lifelines_at_least']:.0f}x faster "
                      f"(lifelines: {ll['status']})")
            if ll and ll["status"] == "ok" and wb["status"] == "ok":
                print(f"  workbench_cox vs lifelines: {wb['speedup_vs_lifelines']:.1f}x faster, HR differs by "
                      f"{wb['hr_diff_vs_lifelines_pct']:+.4f}%  (target: >= 10x at 1,000,000 users, within 1%)")
                d = by["workbench_discrete"]
                if d["status"] == "ok":
                    print(f"  workbench_discrete vs lifelines: {d['speedup_vs_lifelines']:.0f}x faster, HR differs by "
                          f"{d['hr_diff_vs_lifelines_pct']:+.3f}% (discretisation)")
            br = by.get("workbench_cox_breslow")
            if br and br["status"] == "ok" and wb["status"] == "ok":
                print(f"  Efron vs Breslow ties: fit {wb['fit_s']:.2f} s vs {br['fit_s']:.2f} s ({wb['fit_s'] / br['fit_s']:.2f}x), "
                      f"HR {wb['hr']:.6f} vs {br['hr']:.6f}")
            ph = by.get("statsmodels_phreg")
            if ph and ph["status"] == "ok" and wb["status"] == "ok":
                import math

                print(f"  workbench_cox vs PHReg: |log HR difference| = {abs(math.log(wb['hr']) - ph['log_hr']):.2e}")
            results.extend(rows)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

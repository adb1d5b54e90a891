"""The co-creation analysis and the report batch at scale: time and peak
memory, per step and per report, at 1M and 10M users.

Two parts (one command each; not part of the tests):

``models``: every step of the co-creation analysis on the bounded paths, each
in its own child process so its peak memory is its own: build the engine
table(s) from the dataset, pull what is small, fit. Steps: the referral rate
ratio on cells with the one-pass cluster sandwich; the time-varying hazard
ratio, the naive "ever" one and dose-response on aggregated risk sets; the
proportional-hazards check as a tenure interaction; landmark IPW on landmark
risk sets with its pass; and, for comparison, the exact paths the report used
before (episodes into pandas and the Cox fit up to ``--exact-max-users``;
the per-user referral GLM up to ``--per-user-referrals-max-users``). Prints wall and CPU seconds and peak resident memory
(VmHWM of the child) per step.

    .venv/bin/python benchmarks/bench_scale.py models                       # 1,000,000 users
    .venv/bin/python benchmarks/bench_scale.py models --users 100000 --exact-max-users 100000

``batch``: for each size, a simulated dataset (``workbench simulate --users N
--seed 1``, cached under data/interim/sim-<N>; or ``--dataset N=FOLDER``), then
each of the five reports run as ``workbench run <notebook> -p dataset
<folder>``, one after the other. For every report: status, wall time and the
peak memory of its whole process tree (the ``workbench`` process, papermill
and the kernel, found by walking /proc parent links every 0.2 s and summing
resident memory -- shared pages counted in each process, so an upper bound),
and the per-user cost ratio between the largest and the smallest size
(seconds per user at N / seconds per user at the smallest N). Targets at 10M
users: every report succeeds with peak memory <= 16 GB, the whole batch <= 30
minutes on 2 cores.

    .venv/bin/python benchmarks/bench_scale.py batch --users 1000000                 # what runs now
    .venv/bin/python benchmarks/bench_scale.py batch --users 1000000 10000000        # the full benchmark
    .venv/bin/python benchmarks/bench_scale.py batch --users 1000000 --reports cocreation_retention

Simulated data goes to data/interim/ (git-ignored); report runs to a
temporary folder (``--keep DIR`` to keep them). The simulator streams (under
1 GB of memory at 10M users; about 3 GB of disk). Run it with ``nice`` on a
shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ("data_overview", "users_to_revenue", "customer_lifetime_value", "cocreation_retention", "experiment_readout")
TARGET_PEAK_GB = 16.0
TARGET_BATCH_MIN = 30.0


# ----------------------------------------------------------------- process-tree memory
def _tree(root: int) -> tuple[list[int], int]:
    """``root`` and all its descendants (found by parent links: the Jupyter
    kernel runs in a session of its own, so process groups would miss it) and
    their resident memory in kB."""
    parent, rss = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            with open(f"/proc/{d}/statm") as f:
                pages = int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parent[int(d)] = ppid
        rss[int(d)] = pages * (os.sysconf("SC_PAGE_SIZE") // 1024)
    children = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, pids = 0, [root], []
    while todo:
        pid = todo.pop()
        pids.append(pid)
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return pids, total


def run_measured(cmd: list[str], *, cwd=ROOT, env=None, interval: float = 0.2, max_gb: float | None = None) -> dict:
    """Run ``cmd``; its wall time, exit status, the peak of its process tree's
    resident memory (sampled), CPU seconds of the tree and the last lines of
    output. With ``max_gb`` the whole tree is killed when it grows past it
    (the machine is shared: a run that would exceed the target is stopped
    before it takes the others' memory)."""
    import signal

    peak, killed = [0], [False]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                pids, kb = _tree(proc.pid)
                peak[0] = max(peak[0], kb)
                if max_gb is not None and kb > max_gb * 1024**2 and not killed[0]:
                    killed[0] = True
                    for pid in pids:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
                stop.wait(interval)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        _, status, usage = os.wait4(proc.pid, 0)
        stop.set()
        t.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        tail = out.read()[-3000:]
    return {"seconds": time.perf_counter() - started, "returncode": proc.returncode, "peak_gb": peak[0] / 1024**2,
            "cpu_seconds": usage.ru_utime + usage.ru_stime, "tail": tail + (f"\n[killed: its processes grew past {max_gb:g} GB]"
                                                                              if killed[0] else ""), "killed": killed[0]}


# ----------------------------------------------------------------- datasets
def dataset_for(users: int, given: dict[int, Path]) -> Path:
    if users in given:
        return given[users]
    name = f"sim-{users // 1_000_000}m" if users % 1_000_000 == 0 else f"sim-{users // 1000}k"
    folder = ROOT / "data" / "interim" / name
    if not (folder / "events.parquet").exists():
        print(f"simulating {users:,} users into {folder.relative_to(ROOT)} (cached) ...", flush=True)
        r = run_measured([sys.executable, "-m", "workbench.cli", "simulate", "--users", str(users), "--seed", "1", "--out",
                          str(folder), "--quiet", "--force"])
        if r["returncode"] != 0:
            sys.exit(f"the simulator failed at {users:,} users (peak {r['peak_gb']:.1f} GB):\n{r['tail']}")
        print(f"  simulated in {r['seconds']:.0f} s, peak {r['peak_gb']:.1f} GB", flush=True)
    return folder


# ----------------------------------------------------------------- part 1: models
STEP_CODE = r"""
import json, sys, time
from pathlib import Path
folder, step = Path(sys.argv[1]), sys.argv[2]
from workbench import tables
from workbench.data import load_dataset
from workbench.models import causal, referrals, survival as sv
import statsmodels.api  # noqa: F401  (imports are not the step's time)
import ibis.backends.duckdb  # noqa: F401

def vmhwm():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024
t0, c0 = time.perf_counter(), time.process_time()
ds = load_dataset(folder, validate=False)
KW = dict(exposure="adopted", churn="cancel_or_inactivity", churn_after_days=30)
info = {}
if step == "referrals_cells":
    kw = dict(exposure="feedback", churn="cancel_or_inactivity", churn_after_days=30, period_days=28)
    res = referrals.referral_rate_ratio_cells(tables.referral_counts(ds, strata=("segment",), **kw), tables.referrals(ds, **kw),
                                             adjust_for=["segment"])
    info = {"estimate": res.rate_ratio()[0], "cells": res.n_cells, "user_rows": res.n_rows}
elif step == "referrals_per_user":
    kw = dict(exposure="feedback", churn="cancel_or_inactivity", churn_after_days=30, period_days=28)
    rows = tables.referrals(ds, **kw).to_pandas()
    res = referrals.referral_rate_ratio(rows, adjust_for=["segment"], period="period")
    info = {"estimate": res.rate_ratio()[0], "user_rows": len(rows)}
elif step in ("time_varying_aggregated", "ph_check_aggregated"):
    rs = tables.risk_sets(ds, bin_days=7, strata=("segment",), **KW)
    res = sv.fit_time_varying(tables.episodes(ds, **KW), rs, adjust_for=["segment"], max_episodes=0)
    info = {"estimate": res.hazard_ratio()[0], "cells": res.n_cells}
    if step == "ph_check_aggregated":
        ph = sv.proportional_hazards_check(res)
        info["estimate"] = float(ph.tests.loc["exposed", "p_value"])
elif step == "time_varying_exact":
    ep = tables.episodes(ds, **KW).to_pandas()
    res = sv.cox_time_varying(ep, adjust_for=["segment"])
    info = {"estimate": res.hazard_ratio()[0], "episodes": len(ep)}
elif step == "naive_aggregated":
    res = sv.fit_naive_ever(tables.episodes(ds, **KW), tables.risk_sets(ds, naive_ever=True, bin_days=7, strata=("segment",), **KW),
                            adjust_for=["segment"], max_episodes=0)
    info = {"estimate": res.hazard_ratio("ever_exposed")[0], "cells": res.n_cells}
elif step == "dose_aggregated":
    res = sv.fit_dose_response(tables.episodes(ds, **KW), tables.dose_risk_sets(ds, max_dose=3, bin_days=7, strata=("segment",), **KW),
                               adjust_for=["segment"], max_episodes=0)
    info = {"estimate": float(res.trend["hazard_ratio"])}
elif step == "landmark_aggregated":
    lm = dict(landmarks=(30, 90, 180), covariates=("segment", "prior_activity"), bin_days=7)
    res = causal.fit_landmark_ipw(tables.episodes(ds, **KW), tables.landmark_risk_sets(ds, **KW, **lm),
                                  tables.landmark_users(ds, **KW, **lm), landmarks=lm["landmarks"],
                                  covariates=list(lm["covariates"]), max_episodes=0)
    info = {"estimate": res.hazard_ratio("weighted")[0]}
elif step == "retention_curves_per_user":
    surv = tables.survival(ds, churn="cancel_or_inactivity", churn_after_days=30).to_pandas()
    km = sv.kaplan_meier(surv, group="segment")
    info = {"estimate": float(km.medians["median"].iloc[0]), "users": len(surv)}
else:
    raise SystemExit(f"unknown step {step}")
print(json.dumps({"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0, "peak_mb": vmhwm(), **info}))
"""

MODEL_STEPS = ["referrals_cells", "time_varying_aggregated", "naive_aggregated", "dose_aggregated", "ph_check_aggregated",
               "landmark_aggregated", "retention_curves_per_user"]


def models(args) -> int:
    results = []
    for n in args.users:
        folder = dataset_for(n, args.dataset)
        steps = MODEL_STEPS + (["time_varying_exact"] if n <= args.exact_max_users else []) + (
            ["referrals_per_user"] if n <= args.per_user_referrals_max_users else [])
        print(f"\n{n:,} users ({folder}): one child process per step", flush=True)
        print(f"  {'step':<28}{'wall (s)':>10}{'CPU (s)':>10}{'peak (MB)':>11}  estimate", flush=True)
        for step in steps:
            r = run_measured([sys.executable, "-c", STEP_CODE, str(folder), step], max_gb=args.max_gb)
            if r["returncode"] != 0:
                print(f"  {step:<28} FAILED (exit {r['returncode']}, tree peak {r['peak_gb']:.1f} GB): {r['tail'][-300:]}", flush=True)
                results.append({"users": n, "step": step, "status": "failed"})
                continue
            out = json.loads(r["tail"].strip().splitlines()[-1])
            extra = ", ".join(f"{k} {v:,}" for k, v in out.items() if k in ("cells", "user_rows", "episodes", "users"))
            print(f"  {step:<28}{out['seconds']:>10.1f}{out['cpu_seconds']:>10.1f}{out['peak_mb']:>11,.0f}  "
                  f"{out.get('estimate', float('nan')):.4f}  {extra}", flush=True)
            results.append({"users": n, "step": step, "status": "ok", **out})
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


# ----------------------------------------------------------------- part 2: the batch
def batch(args) -> int:
    rows = []
    keep = Path(args.keep) if args.keep else None
    with tempfile.TemporaryDirectory(prefix="wb-scale-") as tmp:
        reports_dir = keep or Path(tmp)
        for n in args.users:
            folder = dataset_for(n, args.dataset)
            print(f"\n{n:,} users ({folder}):", flush=True)
            for nb in args.reports:
                cmd = [sys.executable, "-m", "workbench.cli", "run", nb, "-p", "dataset", str(folder), "--reports", str(reports_dir),
                       "--quiet"]
                r = run_measured(cmd, max_gb=args.max_gb)
                ok = r["returncode"] == 0
                rows.append({"users": n, "report": nb, "ok": ok, "seconds": r["seconds"], "peak_gb": r["peak_gb"]})
                print(f"  {nb:<26} {'ok' if ok else 'FAILED':<7} {r['seconds']:8.1f} s   peak {r['peak_gb']:6.2f} GB"
                      + ("" if ok else f"\n    {r['tail'][-600:]}"), flush=True)
    sizes = sorted(set(args.users))
    print("\nsummary")
    print(f"  {'report':<26}" + "".join(f"{f'{n / 1e6:g}M users':>24}" for n in sizes)
          + ("   per-user cost, largest / smallest" if len(sizes) > 1 else ""))
    for nb in args.reports:
        cells, by = [], {r["users"]: r for r in rows if r["report"] == nb}
        for n in sizes:
            r = by[n]
            cells.append(f"{r['seconds']:9.0f} s {r['peak_gb']:6.2f} GB {'ok' if r['ok'] else 'FAIL':>4}")
        ratio = ""
        if len(sizes) > 1 and by[sizes[0]]["ok"] and by[sizes[-1]]["ok"]:
            ratio = f"   {(by[sizes[-1]]['seconds'] / sizes[-1]) / (by[sizes[0]]['seconds'] / sizes[0]):.2f}"
        print(f"  {nb:<26}" + "".join(f"{c:>24}" for c in cells) + ratio)
    for n in sizes:
        here = [r for r in rows if r["users"] == n]
        total = sum(r["seconds"] for r in here) / 60
        peak = max(r["peak_gb"] for r in here)
        ok = all(r["ok"] for r in here)
        print(f"  batch at {n:,} users: {total:.1f} min, largest peak {peak:.2f} GB, all succeeded: {'yes' if ok else 'NO'}"
              + (f"   (targets at 10M: <= {TARGET_BATCH_MIN:g} min, <= {TARGET_PEAK_GB:g} GB each, all succeed: "
                 f"{'met' if ok and total <= TARGET_BATCH_MIN and peak <= TARGET_PEAK_GB else 'NOT met'})" if n >= 10_000_000 else ""))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if all(r["ok"] for r in rows) else 1


def _dataset_arg(text: str) -> tuple[int, Path]:
    n, _, path = text.partition("=")
    return int(n), Path(path).resolve()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    sub = ap.add_subparsers(dest="part", required=True)
    for name in ("models", "batch"):
        p = sub.add_parser(name)
        p.add_argument("--users", type=int, nargs="+", default=[1_000_000])
        p.add_argument("--dataset", type=_dataset_arg, action="append", default=[], metavar="N=FOLDER",
                       help="use this dataset for size N instead of simulating it")
        p.add_argument("--json", type=Path, help="also write the results here")
        p.add_argument("--max-gb", type=float, default=TARGET_PEAK_GB,
                       help=f"kill a step or report whose processes grow past this many GB (default {TARGET_PEAK_GB:g}, the target)")
        if name == "models":
            p.add_argument("--exact-max-users", type=int, default=1_000_000,
                           help="also time the exact Cox path (episodes into pandas + Cox) up to this size (default 1M)")
            p.add_argument("--per-user-referrals-max-users", type=int, default=100_000,
                           help="also time the per-user referral GLM up to this size (default 100k: it needs about 9 GB there)")
        else:
            p.add_argument("--reports", nargs="+", default=list(REPORTS), choices=REPORTS)
            p.add_argument("--keep", metavar="DIR", help="keep the report runs in DIR")
    args = ap.parse_args(argv)
    args.dataset = dict(args.dataset)
    return models(args) if args.part == "models" else batch(args)


if __name__ == "__main__":
    sys.exit(main())

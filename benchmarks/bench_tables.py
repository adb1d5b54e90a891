"""Benchmark the analysis tables: the workbench (Ibis on DuckDB) against plain
pandas ``groupby``, building the survival and repeat-purchase tables from the
same Parquet files of a 1,000,000-user simulated dataset.

    .venv/bin/python benchmarks/bench_tables.py                  # 1,000,000 users
    .venv/bin/python benchmarks/bench_tables.py --users 100000   # a quicker look
    .venv/bin/python benchmarks/bench_tables.py --dataset DIR    # any contract dataset (Parquet)

The dataset is simulated once (``workbench simulate --users N --seed 1``) and
cached under data/interim/sim-<N> (git-ignored). Each side runs in a fresh
child process, so its peak resident memory (read by the parent with wait4) is
its own: read the Parquet files, compute ``survival(churn_after_days=30)`` and
``repeat_summary(time_unit="week")`` and hold both results as pandas frames.
The timed span starts before the files are opened and ends when both frames
exist (interpreter start-up and imports excluded, including the ones the libraries
make lazily on first use; the peak memory includes
them). The results of the two sides must be equal, or the benchmark fails.

The workbench side opens the Parquet files with ``load_dataset(validate=False)``
(no contract checks; pandas checks nothing either); a third child times ``load_dataset``
with validation for reference. Target: the workbench at least 3x faster than
pandas and at most half its peak memory.

Scaling (``--sizes``): the workbench side alone at several sizes, best of
``--repeat``, printing CPU and wall seconds per user and their ratio to the
smallest size (target: at most 1.3 at 10M users against 1M).

    .venv/bin/python benchmarks/bench_tables.py --sizes 1000000 3000000 5000000 10000000 --repeat 3

Every size is simulated (``workbench simulate --seed 1``, streamed in bounded
memory; about a minute at 10M users) and cached under data/interim/sim-<N>.
With ``--replicate-above N``, sizes above N are instead built once by copying
the 1M-user simulated dataset k times with new user ids (``r<i>_`` + id, row
groups in the same user-clustered order), cached under data/interim/rep-<k>m.
CPU seconds are the measure to read on a shared machine: wall time there
depends on what else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SPEEDUP = 3.0
TARGET_MEMORY = 0.5

# ---------------------------------------------------------------- the two sides
WORKBENCH = r"""
import json, sys, time
from pathlib import Path
folder, out = Path(sys.argv[1]), Path(sys.argv[2])
from workbench.data import load_dataset
from workbench import tables as wt
import ibis.backends.duckdb  # imported lazily by connect(); imports are not timed on either side
import resource

t0, c0, r0 = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
ds = load_dataset(folder, validate=False)  # in-process DuckDB; contract checks skipped
survival = wt.survival(ds, churn_after_days=30).to_pandas()
summary = wt.repeat_summary(ds, time_unit="week").to_pandas()
seconds, cpu, r1 = time.perf_counter() - t0, time.process_time() - c0, resource.getrusage(resource.RUSAGE_SELF)
survival.to_parquet(out / "survival.parquet"); summary.to_parquet(out / "repeat_summary.parquet")
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "user_seconds": r1.ru_utime - r0.ru_utime,
                  "system_seconds": r1.ru_stime - r0.ru_stime, "rows": [len(survival), len(summary)]}))
"""

VALIDATED = r"""
import json, sys, time
from pathlib import Path
folder = Path(sys.argv[1])
from workbench.data import load_dataset
from workbench import tables as wt

t0 = time.perf_counter()
ds = load_dataset(folder)
t1 = time.perf_counter()
survival = wt.survival(ds, churn_after_days=30).to_pandas()
summary = wt.repeat_summary(ds, time_unit="week").to_pandas()
print(json.dumps({"seconds": time.perf_counter() - t0, "validate_seconds": t1 - t0, "rows": [len(survival), len(summary)]}))
"""

PANDAS = r"""
import json, sys, time
from pathlib import Path
folder, out = Path(sys.argv[1]), Path(sys.argv[2])
import numpy as np
import pandas as pd
import pyarrow.parquet  # imported lazily by read_parquet; imports are not timed on either side
import yaml

DAY = 86_400


def secs(ts):
    # whole seconds since 1970 (floor), as the workbench does
    return ts.to_numpy().astype("datetime64[us]").astype("int64") // 1_000_000


t0, c0 = time.perf_counter(), time.process_time()
meta = yaml.safe_load((folder / "dataset.yml").read_text()) or {}
users = pd.read_parquet(folder / "users.parquet")
events = pd.read_parquet(folder / "events.parquet", columns=["user_id", "event_at", "event_type", "amount"])
end = pd.Timestamp(meta["observation_end"]) if meta.get("observation_end") else events["event_at"].max()
end_s = int(pd.Timestamp(end).value // 1_000_000_000)
events = events[events["event_at"] <= end]

# survival, rule cancel_or_inactivity: churn = first cancel up to end - 30 days, else 30 days of
# inactivity before the end, else censored at end - 30 days
users = users[users["signup_at"] <= end].set_index("user_id")
last_at = events.groupby("user_id")["event_at"].max()
cancel_at = events[events["event_type"] == "cancel"].groupby("user_id")["event_at"].min()
s = users.join(last_at.rename("last_at")).join(cancel_at.rename("cancel_at"))
last_activity = s["last_at"].fillna(s["signup_at"])
inactive = (end_s - secs(last_activity)) >= 30 * DAY
censor_s = end_s - 30 * DAY
cancelled = (s["cancel_at"] <= pd.Timestamp(censor_s, unit="s")).to_numpy()
cause = np.where(cancelled, "cancel", np.where(inactive, "inactivity", None))
# not yet inactive: censored at the last time churn can be judged, never before signup
censor_at = np.maximum(np.datetime64(pd.Timestamp((end_s - 30 * DAY) * 1_000_000_000), "us"), s["signup_at"].to_numpy().astype("datetime64[us]"))
end_at = np.where(cancelled, s["cancel_at"], np.where(inactive, last_activity, censor_at))
s["end_at"] = pd.to_datetime(end_at).astype("datetime64[us]")
s["duration"] = (secs(s["end_at"]) - secs(s["signup_at"])) / DAY
s["churned"] = (cancelled | inactive).astype("int64")
s["churn_cause"] = cause
attributes = [c for c in users.columns if c not in ("signup_at", "referred_by")]
survival = s[["signup_at", "end_at", "duration", "churned", "churn_cause", *attributes]].sort_index().reset_index()

# repeat summary: purchase days, calibration = holdout end = observation end, weeks
p = events[events["event_type"] == "purchase"]
p = p.assign(day=secs(p["event_at"]) // DAY)
cal = hold = end_s // DAY
days = p[p["day"] <= hold].groupby(["user_id", "day"]).agg(spend=("amount", "sum"), first_at=("event_at", "min"))
days = days.reset_index()
c = days[days["day"] <= cal].groupby("user_id").agg(
    first_purchase_at=("first_at", "min"), first_day=("day", "min"), last_day=("day", "max"),
    n_days=("day", "size"), spend_cal=("spend", "sum"), first_spend=("spend", "first"),
)
h = days[(days["day"] > cal) & (days["day"] <= hold)].groupby("user_id").agg(
    frequency_holdout=("day", "size"), monetary_holdout=("spend", "sum"))
c = c.join(h)
frequency = c["n_days"] - 1
summary = pd.DataFrame({
    "first_purchase_at": c["first_purchase_at"],
    "frequency": frequency.astype("int64"),
    "recency": (c["last_day"] - c["first_day"]) / 7.0,
    "T": (cal - c["first_day"]) / 7.0,
    "monetary_value": ((c["spend_cal"] - c["first_spend"]) / frequency).where(frequency > 0),
    "frequency_holdout": c["frequency_holdout"].fillna(0).astype("int64"),
    "monetary_holdout": c["monetary_holdout"].fillna(0.0).astype("float64"),
    "duration_holdout": (hold - cal) / 7.0,
}).sort_index().reset_index()
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
survival.to_parquet(out / "survival.parquet"); summary.to_parquet(out / "repeat_summary.parquet")
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rows": [len(survival), len(summary)]}))
"""


# ---------------------------------------------------------------- running
def run_child(code: str, *argv: str) -> dict:
    """Run ``code`` in a fresh interpreter; its JSON line plus wall time and peak RSS (MB)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        sys.exit(f"benchmark child failed (exit {proc.returncode}):\n{stderr[-4000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    result["peak_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


def ensure_dataset(users: int, seed: int) -> Path:
    folder = ROOT / "data" / "interim" / f"sim-{users // 1000}k" if users % 1_000_000 else ROOT / "data" / "interim" / f"sim-{users // 1_000_000}m"
    if not (folder / "events.parquet").exists():
        print(f"simulating {users:,} users into {folder.relative_to(ROOT)} (once; cached) ...", flush=True)
        cmd = [sys.executable, "-m", "workbench.cli", "simulate", "--users", str(users), "--seed", str(seed),
               "--out", str(folder), "--quiet", "--force"]
        subprocess.run(cmd, check=True, cwd=ROOT)
    return folder


def replicated_dataset(users: int, seed: int) -> Path:
    """``users`` (a multiple of 1M) as k copies of the 1M-user simulated dataset, ids prefixed ``r<i>_``."""
    import shutil

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if users % 1_000_000:
        sys.exit(f"--sizes above --replicate-above must be multiples of 1,000,000 (got {users:,})")
    k = users // 1_000_000
    folder = ROOT / "data" / "interim" / f"rep-{k}m"
    if (folder / "events.parquet").exists():
        return folder
    src = ensure_dataset(1_000_000, seed)
    print(f"copying {src.relative_to(ROOT)} {k} times into {folder.relative_to(ROOT)} (once; cached) ...", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    for name, cols in (("users", ("user_id", "referred_by")), ("events", ("user_id",))):
        f, w = pq.ParquetFile(src / f"{name}.parquet"), None
        for r in range(k):
            for g in range(f.num_row_groups):
                tb = f.read_row_group(g)
                for c in cols:
                    i = tb.schema.get_field_index(c)
                    tb = tb.set_column(i, c, pc.binary_join_element_wise(pa.scalar(f"r{r}_"), tb.column(c), ""))
                w = w or pq.ParquetWriter(folder / f"{name}.parquet", tb.schema, compression="lz4")
                w.write_table(tb, row_group_size=1 << 20)
        w.close()
    shutil.copy(src / "dataset.yml", folder / "dataset.yml")
    return folder


def scaling(sizes: list[int], seed: int, repeat: int, replicate_above: int | None) -> int:
    """The workbench side at each size: seconds per user and their ratio to the smallest size."""
    import pyarrow.parquet as pq

    rows = []
    for n in sorted(sizes):
        copied = replicate_above is not None and n > replicate_above
        folder = replicated_dataset(n, seed) if copied else ensure_dataset(n, seed)
        events = pq.ParquetFile(folder / "events.parquet").metadata.num_rows
        with tempfile.TemporaryDirectory() as tmp:
            runs = [run_child(WORKBENCH, str(folder), tmp) for _ in range(repeat)]
        best = min(runs, key=lambda r: r["cpu_seconds"])
        rows.append({"users": n, "events": events, "seconds": min(r["seconds"] for r in runs), "cpu_seconds": best["cpu_seconds"],
                     "user": best["user_seconds"], "system": best["system_seconds"],
                     "peak_mb": best["peak_mb"], "source": "1M copied" if copied else "simulated"})
        print(f"  {n:,} users: CPU {best['cpu_seconds']:.2f} s, wall {rows[-1]['seconds']:.2f} s (best of {repeat})", flush=True)
    base = rows[0]
    print("\nsurvival + repeat_summary (workbench), per user, against the smallest size")
    print(f"{'users':>12}{'events':>14}{'source':>12}{'CPU (s)':>10}{'wall (s)':>10}{'peak (MB)':>11}{'CPU us/user':>13}{'ratio':>7}"
          f"{'wall us/user':>14}{'ratio':>7}")
    for r in rows:
        cpu_u, wall_u = 1e6 * r["cpu_seconds"] / r["users"], 1e6 * r["seconds"] / r["users"]
        print(f"{r['users']:>12,}{r['events']:>14,}{r['source']:>12}{r['cpu_seconds']:>10.2f}{r['seconds']:>10.2f}{r['peak_mb']:>11,.0f}"
              f"{cpu_u:>13.2f}{cpu_u / (1e6 * base['cpu_seconds'] / base['users']):>7.2f}"
              f"{wall_u:>14.2f}{wall_u / (1e6 * base['seconds'] / base['users']):>7.2f}")
    print("\nthe CPU time split (of the same runs): user (the engine and Python) and system (the kernel, mostly handing out memory)")
    print(f"{'users':>12}{'user (s)':>10}{'ratio':>7}{'system (s)':>12}{'ratio':>7}")
    for r in rows:
        print(f"{r['users']:>12,}{r['user']:>10.2f}{(r['user'] / r['users']) / (base['user'] / base['users']):>7.2f}"
              f"{r['system']:>12.2f}{(r['system'] / r['users']) / max(base['system'] / base['users'], 1e-12):>7.2f}")
    top = rows[-1]
    ratio = (top["cpu_seconds"] / top["users"]) / (base["cpu_seconds"] / base["users"])
    print(f"\nper-user CPU time at {top['users']:,} users: {ratio:.2f} x that at {base['users']:,} (target <= 1.3 at 10M vs 1M): "
          f"{'met' if ratio <= 1.3 else 'MISSED'}")
    return 0


def compare(a: Path, b: Path) -> list[str]:
    """Differences between the two sides' results (empty when equal)."""
    import pandas as pd

    problems = []
    for name, key in (("survival", "user_id"), ("repeat_summary", "user_id")):
        x = pd.read_parquet(a / f"{name}.parquet").sort_values(key).reset_index(drop=True)
        y = pd.read_parquet(b / f"{name}.parquet").sort_values(key).reset_index(drop=True)
        try:
            pd.testing.assert_frame_equal(x, y, check_dtype=False, check_exact=False, rtol=1e-9, atol=1e-9)
        except AssertionError as exc:
            problems.append(f"{name}: {str(exc).splitlines()[0:6]}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--users", type=int, default=1_000_000, help="simulated users (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    ap.add_argument("--dataset", type=Path, help="use this dataset folder (Parquet tables) instead of simulating")
    ap.add_argument("--repeat", type=int, default=1, help="runs per side; the fastest time and its memory are reported")
    ap.add_argument("--no-validated", action="store_true", help="skip the reference run with load_dataset's validation")
    ap.add_argument("--sizes", type=int, nargs="+", help="workbench only, at these sizes: seconds per user and their ratio")
    ap.add_argument("--replicate-above", type=int, default=None,
                    help="--sizes above this are copies of the 1M-user dataset, not simulated (default: every size simulated)")
    args = ap.parse_args()
    if args.sizes:
        return scaling(args.sizes, args.seed, args.repeat, args.replicate_above)

    folder = args.dataset.resolve() if args.dataset else ensure_dataset(args.users, args.seed)
    events_mb = (folder / "events.parquet").stat().st_size / 1e6
    print(f"dataset {folder}: events.parquet {events_mb:,.0f} MB; {os.cpu_count()} CPU(s)", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        wb_dir, pd_dir = Path(tmp, "workbench"), Path(tmp, "pandas")
        wb_dir.mkdir(), pd_dir.mkdir()
        wb_runs, pd_runs = [], []
        for i in range(args.repeat):  # alternate, so both sides see the same machine load
            wb_runs.append(run_child(WORKBENCH, str(folder), str(wb_dir)))
            print(f"  run {i + 1}: workbench {wb_runs[-1]['seconds']:.2f} s", flush=True)
            pd_runs.append(run_child(PANDAS, str(folder), str(pd_dir)))
            print(f"  run {i + 1}: pandas    {pd_runs[-1]['seconds']:.2f} s", flush=True)
        problems = compare(wb_dir, pd_dir)
    validated = None if args.no_validated else run_child(VALIDATED, str(folder))

    wb = min(wb_runs, key=lambda r: r["seconds"])
    pdr = min(pd_runs, key=lambda r: r["seconds"])
    speedup = pdr["seconds"] / wb["seconds"]
    memory = wb["peak_mb"] / pdr["peak_mb"]
    print()
    print("survival + repeat_summary, read Parquet -> pandas frames"
          f" ({wb['rows'][0]:,} users, {wb['rows'][1]:,} customers)")
    cpu_ratio = pdr["cpu_seconds"] / wb["cpu_seconds"]
    print(f"{'':<30}{'time (s)':>10}{'CPU (s)':>10}{'peak RSS (MB)':>15}")
    print(f"{'workbench (Ibis + DuckDB)':<30}{wb['seconds']:>10.2f}{wb['cpu_seconds']:>10.2f}{wb['peak_mb']:>15,.0f}")
    print(f"{'pandas groupby':<30}{pdr['seconds']:>10.2f}{pdr['cpu_seconds']:>10.2f}{pdr['peak_mb']:>15,.0f}")
    print(f"{'pandas / workbench':<30}{speedup:>9.1f}x{cpu_ratio:>9.1f}x{1 / memory:>14.1f}x")
    if validated:
        print(f"{'workbench incl. load_dataset':<30}{validated['seconds']:>10.2f}{'':>10}{validated['peak_mb']:>15,.0f}"
              f"  (contract validation: {validated['validate_seconds']:.2f} s of it)")
    print()
    ok_speed, ok_mem = speedup >= TARGET_SPEEDUP, memory <= TARGET_MEMORY
    print(f"target >= {TARGET_SPEEDUP:.0f}x faster: {'met' if ok_speed else 'MISSED'} ({speedup:.1f}x); "
          f"target <= {TARGET_MEMORY:.0%} of pandas' peak memory: {'met' if ok_mem else 'MISSED'} ({memory:.0%})")
    if not ok_speed and cpu_ratio >= TARGET_SPEEDUP:
        print(f"  (CPU time ratio {cpu_ratio:.1f}x: the machine was busy; DuckDB's threads got less than their cores)")
    if problems:
        print("RESULTS DIFFER between the workbench and pandas:\n  " + "\n  ".join(problems))
        return 1
    print("results equal: yes (every row and column of both tables)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the simulator: users per second and peak memory by size.

    .venv/bin/python benchmarks/bench_simulate.py                 # 100,000 and 1,000,000 users
    .venv/bin/python benchmarks/bench_simulate.py --sizes 20000 100000

Each size runs in a fresh child process (so peak RSS is its own): it simulates
in memory, then writes the dataset folder (Parquet + truth) to a temporary
folder. There is no peer library for this simulator; the table reports the
scaling ratio against the smallest size (time per user; 1.00 = linear) and the
1,000,000-user run against the target of "minutes, not hours" (a 5-minute budget).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_1M_SECONDS = 300.0

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from workbench.data.simulate import simulate, write
users, seed, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
t0 = time.perf_counter()
ds = simulate(users=users, seed=seed, progress=False)
t1 = time.perf_counter()
write(ds, out)
t2 = time.perf_counter()
size = sum(f.stat().st_size for f in out.iterdir())
print(json.dumps({
    "users": users, "events": len(ds.events), "generate_s": t1 - t0, "write_s": t2 - t1,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "disk_mb": size / 1e6,
}))
"""


def run(users: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ds"
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, str(users), str(seed), str(out)], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"simulate({users}) failed:\n{proc.stderr}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["wall_s"] = time.perf_counter() - started
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = [run(n, args.seed) for n in sorted(args.sizes)]
    base = (rows[0]["generate_s"] + rows[0]["write_s"]) / rows[0]["users"]
    head = f"{'users':>10} {'events':>11} {'ev/user':>7} {'gen s':>7} {'write s':>7} {'total s':>7} {'users/s':>9} {'peak RSS MB':>11} {'disk MB':>8} {'per-user time vs smallest':>26}"
    print(head)
    print("-" * len(head))
    for r in rows:
        total = r["generate_s"] + r["write_s"]
        print(
            f"{r['users']:>10,} {r['events']:>11,} {r['events'] / r['users']:>7.1f} {r['generate_s']:>7.1f} "
            f"{r['write_s']:>7.1f} {total:>7.1f} {r['users'] / total:>9,.0f} {r['peak_rss_mb']:>11,.0f} "
            f"{r['disk_mb']:>8.1f} {total / r['users'] / base:>26.2f}"
        )
    big = [r for r in rows if r["users"] == 1_000_000]
    if big:
        total = big[0]["generate_s"] + big[0]["write_s"]
        print(f"\n1,000,000 users: {total:.1f} s = {total / BUDGET_1M_SECONDS:.2f} x the {BUDGET_1M_SECONDS:.0f} s budget")


if __name__ == "__main__":
    main()

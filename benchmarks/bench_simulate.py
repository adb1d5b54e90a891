"""Benchmark the simulator: users per second, CPU time, peak memory and size on disk.

    .venv/bin/python benchmarks/bench_simulate.py                      # 100,000 and 1,000,000 users
    .venv/bin/python benchmarks/bench_simulate.py --sizes 10000000     # the 10M target (~3 GB of disk)
    .venv/bin/python benchmarks/bench_simulate.py --sizes 100000 400000 --chunk-users 20000

Each run is a fresh child process (so its peak RSS is its own) writing a
dataset folder under data/interim/ (git-ignored; removed after each run
unless --keep). Two modes, on equal terms (same seed, sizes, chunk size):

- ``streamed``: ``simulate(users, out=folder)``, users drawn a chunk at a time
  and written row group by row group (what ``workbench simulate`` does);
- ``in memory``: ``simulate(users)`` then ``.write(folder)``, every table held
  in memory first (what the simulator did before it streamed; sizes up to
  --max-in-memory only).

There is no peer library for this simulator; the targets are the
assignment's: peak memory at most about 2 GB at any size, and 10,000,000
users in at most 10 minutes on this 2-core machine. Wall time depends on
what else the machine runs, so CPU time (user + system) is printed too.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEMORY_TARGET_MB = 2048
TIME_TARGET_10M_S = 600.0

CHILD = r"""
import json, re, resource, sys, time
from pathlib import Path
from workbench.data.simulate import simulate
users, seed, chunk, mode, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], Path(sys.argv[5])
t0 = time.perf_counter()
if mode == "streamed":
    ds = simulate(users=users, seed=seed, out=out, progress=False, chunk_users=chunk)
else:
    ds = simulate(users=users, seed=seed, progress=False, chunk_users=chunk)
    ds.write(out)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "users": users, "mode": mode, "events": sum(ds.truth["counts"]["events"].values()), "wall_s": wall,
    "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
    # VmHWM: this process's own peak (ru_maxrss would also count the parent's memory at fork time)
    "peak_rss_mb": int(re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024,
    "disk_mb": sum(f.stat().st_size for f in out.iterdir()) / 1e6,
}))
"""


def run(users: int, seed: int, chunk: int, mode: str, folder: Path, keep: bool) -> dict:
    out = folder / f"bench-{mode.replace(' ', '-')}-{users}"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(users), str(seed), str(chunk), mode, str(out)],
                          capture_output=True, text=True)  # fmt: skip
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    if proc.returncode != 0:
        sys.exit(f"simulate({users}, {mode}) failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    from workbench.data.simulate import CHUNK_USERS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk-users", type=int, default=CHUNK_USERS)
    ap.add_argument("--max-in-memory", type=int, default=1_000_000, help="largest size also run in memory (default 1,000,000)")
    ap.add_argument("--dir", type=Path, default=ROOT / "data" / "interim", help="where the datasets are written (default data/interim)")
    ap.add_argument("--keep", action="store_true", help="keep the written datasets")
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sorted(args.sizes):
        for mode in ("streamed", "in memory"):
            if mode == "in memory" and n > args.max_in_memory:
                continue
            print(f"{n:,} users, {mode} ...", file=sys.stderr, flush=True)
            rows.append(run(n, args.seed, args.chunk_users, mode, args.dir, args.keep))
    head = (f"{'users':>11} {'mode':>9} {'events':>12} {'ev/user':>7} {'wall s':>7} {'CPU s':>7} {'(sys)':>6} "
            f"{'users/s':>8} {'peak RSS MB':>11} {'disk MB':>8}")  # fmt: skip
    print(f"chunk_users = {args.chunk_users:,}")
    print(head)
    print("-" * len(head))
    for r in rows:
        cpu = r["user_s"] + r["sys_s"]
        print(
            f"{r['users']:>11,} {r['mode']:>9} {r['events']:>12,} {r['events'] / r['users']:>7.1f} {r['wall_s']:>7.1f} "
            f"{cpu:>7.1f} {r['sys_s']:>6.1f} {r['users'] / r['wall_s']:>8,.0f} {r['peak_rss_mb']:>11,.0f} {r['disk_mb']:>8,.0f}"
        )
    streamed = [r for r in rows if r["mode"] == "streamed"]
    peak = max(r["peak_rss_mb"] for r in streamed)
    print(f"\nstreamed peak memory: {peak:,.0f} MB at most (target: about {MEMORY_TARGET_MB:,} MB at any size): "
          + ("met" if peak <= MEMORY_TARGET_MB else "NOT met"))  # fmt: skip
    big = [r for r in streamed if r["users"] >= 10_000_000]
    for r in big:
        per_10m = r["wall_s"] * 10_000_000 / r["users"]
        print(f"{r['users']:,} users streamed in {r['wall_s']:.0f} s ({per_10m:.0f} s per 10M; target {TIME_TARGET_10M_S:.0f} s): "
              + ("met" if per_10m <= TIME_TARGET_10M_S else "NOT met"))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark contract validation against building the analysis tables it
guards, on the same Parquet files of a 1,000,000-user simulated dataset.

    .venv/bin/python benchmarks/bench_validate.py                  # 1,000,000 users
    .venv/bin/python benchmarks/bench_validate.py --users 100000   # a quicker look
    .venv/bin/python benchmarks/bench_validate.py --baseline fc55ce9  # also time the validation of a past commit

Target (issue #10): validation costs at most half the time of building the
survival and repeat-purchase tables. Each side runs in a fresh child process
(imports excluded from the timed span, as in bench_tables.py), alternating,
``--repeat`` times; the fastest run of each is reported:

- validation: ``load_dataset(folder)``, every rule of the contract checked
  (files, dataset.yml, types, one aggregate query per table, the users join,
  uniqueness, examples for failing rules; the dataset is valid, so none);
- tables: ``load_dataset(folder, validate=False)`` then ``survival(
  churn_after_days=30)`` and ``repeat_summary(time_unit="week")`` as pandas
  frames (the workbench side of bench_tables.py);
- baseline (``--baseline REV``): ``data/dataset.py`` of that git revision,
  loaded beside today's package, validating the same folder.

The dataset is simulated once and cached under data/interim/sim-<N>.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tables import ROOT, ensure_dataset, run_child  # noqa: E402

TARGET = 0.5

VALIDATE = r"""
import json, sys, time
from pathlib import Path
folder = Path(sys.argv[1])
from workbench.data import load_dataset
import ibis.backends.duckdb, pyarrow.parquet  # imported lazily; imports are not timed on either side

t0, c0 = time.perf_counter(), time.process_time()
ds = load_dataset(folder)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "notices": len(ds.notices)}))
"""

TABLES = r"""
import json, sys, time
from pathlib import Path
folder = Path(sys.argv[1])
from workbench.data import load_dataset
from workbench import tables as wt
import ibis.backends.duckdb, pyarrow.parquet

t0, c0 = time.perf_counter(), time.process_time()
ds = load_dataset(folder, validate=False)
survival = wt.survival(ds, churn_after_days=30).to_pandas()
summary = wt.repeat_summary(ds, time_unit="week").to_pandas()
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rows": [len(survival), len(summary)]}))
"""

BASELINE = r"""
import importlib.util, json, sys, time
from pathlib import Path
folder, module = Path(sys.argv[1]), sys.argv[2]
spec = importlib.util.spec_from_file_location("baseline_dataset", module)
old = sys.modules["baseline_dataset"] = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)
import ibis.backends.duckdb, pyarrow.parquet

t0, c0 = time.perf_counter(), time.process_time()
ds = old.load_dataset(folder)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu}))
"""


def baseline_module(rev: str, tmp: Path) -> Path:
    """``src/workbench/data/dataset.py`` as it was at ``rev``, in ``tmp``."""
    text = subprocess.run(["git", "show", f"{rev}:src/workbench/data/dataset.py"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    path = tmp / "baseline_dataset.py"
    path.write_text(text)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--users", type=int, default=1_000_000, help="simulated users (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    ap.add_argument("--dataset", type=Path, help="use this dataset folder (Parquet tables) instead of simulating")
    ap.add_argument("--repeat", type=int, default=3, help="runs per side (default 3); the fastest is reported")
    ap.add_argument("--baseline", metavar="REV", help="also time load_dataset of this git revision (e.g. fc55ce9)")
    args = ap.parse_args()

    folder = args.dataset.resolve() if args.dataset else ensure_dataset(args.users, args.seed)
    events_mb = (folder / "events.parquet").stat().st_size / 1e6
    print(f"dataset {folder}: events.parquet {events_mb:,.0f} MB; {os.cpu_count()} CPU(s)", flush=True)
    runs: dict[str, list[dict]] = {"validation": [], "tables": [], "baseline": []}
    with tempfile.TemporaryDirectory() as tmp:
        old = baseline_module(args.baseline, Path(tmp)) if args.baseline else None
        for i in range(args.repeat):  # alternate, so every side sees the same machine load
            runs["validation"].append(run_child(VALIDATE, str(folder)))
            runs["tables"].append(run_child(TABLES, str(folder)))
            line = f"  run {i + 1}: validation {runs['validation'][-1]['seconds']:.2f} s, tables {runs['tables'][-1]['seconds']:.2f} s"
            if old:
                runs["baseline"].append(run_child(BASELINE, str(folder), str(old)))
                line += f", baseline {runs['baseline'][-1]['seconds']:.2f} s"
            print(line, flush=True)

    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items() if v}
    val, tab = best["validation"], best["tables"]
    print()
    print(f"contract validation vs the tables it guards ({tab['rows'][0]:,} users, {tab['rows'][1]:,} customers)")
    print(f"{'':<44}{'time (s)':>10}{'CPU (s)':>10}{'peak RSS (MB)':>15}")
    rows = [("validation: load_dataset(folder)", val), ("tables: survival + repeat_summary", tab)]
    if "baseline" in best:
        rows.append((f"validation at {args.baseline} (before)", best["baseline"]))
    for label, r in rows:
        print(f"{label:<44}{r['seconds']:>10.2f}{r['cpu_seconds']:>10.2f}{r['peak_mb']:>15,.0f}")
    ratio, cpu_ratio = val["seconds"] / tab["seconds"], val["cpu_seconds"] / tab["cpu_seconds"]
    print(f"{'validation / tables':<44}{ratio:>10.2f}{cpu_ratio:>10.2f}")
    print()
    print(f"target: validation <= {TARGET:.0%} of the tables' time: {'met' if ratio <= TARGET else 'MISSED'} ({ratio:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark fetching analysis tables into pandas on DuckDB: Ibis's own
conversion against the workbench's (``workbench.data.backends.duckdb_backend``),
on the same Arrow result, so only the conversion is timed (fastest of
``--repeat`` alternating runs per side: on a virtual machine, the first touch
of fresh memory costs much of a large conversion, whichever side meets it).

    .venv/bin/python benchmarks/bench_frames.py                          # 1,000,000 users
    .venv/bin/python benchmarks/bench_frames.py --users 10000000 --tables survival

Ibis turns every column that holds a null into a Python list before pandas
sees it, and builds the frame three times (once from Arrow, once per
conversion pass); the workbench converts plain types (numbers, booleans,
text, times, dates) straight from Arrow and builds the frame once. Each
table's query runs once; both conversions then read the same Arrow table,
and the frames must be equal (the benchmark fails otherwise). The dataset is
simulated once and cached under data/interim.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tables import ensure_dataset  # noqa: E402

DEFAULT_TABLES = ["survival", "episodes", "conversion", "referrals", "experiment_outcomes", "repeat_summary"]


class Fetched:
    """Stands in for the backend in either ``execute`` (Ibis's or the workbench's): its query gives ``table``, already fetched."""

    def __init__(self, table):
        self.table = table

    def _to_duckdb_relation(self, *args, **kwargs):
        return self

    def to_arrow_table(self):
        return self.table


def clock(f):
    r0, w = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    out = f()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return out, time.perf_counter() - w, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tables", nargs="+", default=DEFAULT_TABLES)
    ap.add_argument("--repeat", type=int, default=3, help="conversions per side, alternating; the fastest is reported (default 3)")
    args = ap.parse_args()

    import pandas as pd
    from ibis.backends.duckdb import Backend as IbisDuckDB

    from workbench import tables as wt
    from workbench.data import load_dataset

    folder = ensure_dataset(args.users, args.seed)
    ds = load_dataset(folder, validate=False)
    con = ds.con
    ours_way = type(con).execute
    print(f"{args.users:,} users ({folder}); seconds to reach pandas from the same Arrow result", flush=True)
    print(f"  {'table':<22}{'rows':>12}{'ibis (s)':>10}{'CPU':>8}{'workbench (s)':>15}{'CPU':>8}{'speed-up':>10}  columns with nulls")
    for name in args.tables:
        kw = {"experiment": "cocreation_invite"} if name == "experiment_outcomes" else {}
        expr = wt.TABLE_FUNCTIONS[name](ds, **kw)
        table = con._to_duckdb_relation(expr).to_arrow_table()
        runs = [(clock(partial(IbisDuckDB.execute, Fetched(table), expr)), clock(partial(ours_way, Fetched(table), expr)))
                for _ in range(args.repeat)]  # alternating, so both sides meet the same state of memory
        (a, ta, ca), (b, tb, cb) = min((r[0] for r in runs), key=lambda r: r[1]), min((r[1] for r in runs), key=lambda r: r[1])
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        nulls = ", ".join(n for n, c in zip(table.column_names, table.columns) if c.null_count) or "-"
        print(f"  {name:<22}{len(a):>12,}{ta:>10.2f}{ca:>8.2f}{tb:>15.2f}{cb:>8.2f}{ta / max(tb, 1e-9):>9.1f}x  {nulls}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

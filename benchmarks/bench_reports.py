"""Benchmark report runs: the overhead of one run, and the default batch on one
worker versus all cores.

    .venv/bin/python benchmarks/bench_reports.py                 # both parts
    .venv/bin/python benchmarks/bench_reports.py --skip-batch    # only the overhead of one run
    .venv/bin/python benchmarks/bench_reports.py --repeat 5 --json bench-reports.json

Part 1, overhead: a minimal report notebook (one parameter, one recorded
metric, one small figure) is run ``--repeat`` times through the same runner
as ``workbench run``; the table gives the median of each step the manifest
times: parameter check, kernel start (until the kernel answers), executing
the cells (kernel start excluded), rendering report.html, and the whole run.
It also times, in this process, checking the data_overview parameters alone
and rendering the HTML of a real data_overview run (seven figures).

It also times what a batch adds per job: each job runs in a fresh worker
process, so that a worker that dies fails only its own job. Workers are forked
from a fork server that imports the runner once per batch: the table gives
the first job's start (fork server and imports) and the median start of the
jobs after it.

Part 2, batch: the jobs of batches/default.yml whose notebooks exist (missing
ones are listed and skipped), run once with one worker and once with one per
core. It needs data/sample, which it builds like ``make run`` does
(``workbench simulate --users 20000 --seed 1``) when it is missing. Runs go
to a temporary folder, never to reports/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from workbench.reports.batch import default_workers, run_batch  # noqa: E402
from workbench.reports.html import render_report  # noqa: E402
from workbench.reports.parameters import bind, declared_parameters  # noqa: E402
from workbench.reports.runner import run_notebook  # noqa: E402

from conftest import write_notebook  # noqa: E402  (the notebook writer the tests use)

MINIMAL_CELLS = [
    "import matplotlib.pyplot as plt\nfrom workbench.reports import record",
    "record('bench.n', n)\nplt.plot(range(n)); plt.show()",
]
STEPS = [("parameter check", "parameter_check_s"), ("kernel start", "kernel_start_s"), ("cells", "cells_s"),
         ("render report.html", "render_s"), ("whole run", "duration_s")]


def overhead(tmp: Path, repeat: int) -> dict:
    nb = write_notebook(tmp / "proj" / "notebooks" / "minimal.ipynb", "n: int = 5  # points", MINIMAL_CELLS, title="Minimal")
    samples = []
    for i in range(repeat):
        r = run_notebook(nb, {"n": 5 + i}, reports_dir=tmp / "reports", progress=False, update_index=False)
        if not r.ok:
            raise SystemExit(f"the minimal notebook failed: {r.error}")
        t = dict(r.manifest["timings"])
        t["cells_s"] = t["execute_s"] - (t["kernel_start_s"] or 0.0)
        t["duration_s"] = r.manifest["duration_s"]
        samples.append(t)
    return {key: statistics.median(s[key] for s in samples) for _, key in STEPS} | {"repeat": repeat}


def in_process(tmp: Path) -> dict:
    out = {}
    nb = ROOT / "notebooks" / "data_overview.ipynb"
    declared = declared_parameters(nb)
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        bind(declared_parameters(nb), {"dataset": "sample", "max_cohorts": 6}, {"period": "week"}, notebook="data_overview")
    out["parameter_check_ms"] = 1000 * (time.perf_counter() - t0) / n
    from workbench.data.simulate import simulate

    data = tmp / "tiny"
    simulate(users=2000, seed=1, out=data, progress=False)
    run = run_notebook(nb, {"dataset": str(data)}, reports_dir=tmp / "reports-overview", progress=False, update_index=False)
    if not run.ok:
        raise SystemExit(f"data_overview failed: {run.error}")
    import nbformat

    executed = nbformat.read(run.executed_notebook, as_version=4)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        html = render_report(executed, run.manifest, run.metrics, declared)
        times.append(time.perf_counter() - t0)
    out["render_overview_s"] = statistics.median(times)
    out["overview_html_kb"] = len(html.encode()) / 1024
    out["overview_figures"] = html.count('class="wb-figure"')
    return out


def _import_runner(task, report):
    import workbench.reports.runner  # noqa: F401 - what every batch worker imports before its run

    return time.perf_counter()


def worker_start(repeat: int) -> tuple[float, float]:
    """Seconds from starting a supervised worker process (as a batch does) to
    its entry having the runner imported: the first one, and the median of
    ``repeat`` more."""
    from workbench.reports.workers import supervise

    times = []
    for _ in range(repeat + 1):
        ended = []
        t0 = time.perf_counter()
        supervise([0], 1, _import_runner, ended.append, preload=("workbench.reports.batch",))
        times.append(ended[0].result - t0)
    return times[0], statistics.median(times[1:])


def batch_config(tmp: Path) -> tuple[Path, list[str]]:
    """batches/default.yml without the jobs whose notebook does not exist yet."""
    config = yaml.safe_load((ROOT / "batches" / "default.yml").read_text())
    kept, skipped = [], []
    for job in config["jobs"]:
        exists = (ROOT / "notebooks" / f"{job['notebook']}.ipynb").is_file()
        (kept if exists else skipped).append(job if exists else job["notebook"])
    config["jobs"] = kept
    path = tmp / "bench-default.yml"
    path.write_text(yaml.safe_dump(config))
    return path, skipped


def batch(tmp: Path) -> dict:
    if not (ROOT / "data" / "sample" / "users.parquet").exists():
        from workbench.data.simulate import simulate

        print("data/sample is missing: building it like `make run` (20,000 users, seed 1) ...", file=sys.stderr)
        simulate(users=20_000, seed=1, out=ROOT / "data" / "sample", progress=True)
    config, skipped = batch_config(tmp)
    results = {}
    for workers in (1, default_workers()):
        t0 = time.perf_counter()
        res = run_batch(config, workers=workers, root=ROOT, reports_dir=tmp / f"reports-{workers}", progress=False)
        wall = time.perf_counter() - t0
        results[workers] = {"wall_s": wall, "ok": res.ok, "jobs": len(res.outcomes),
                            "runs": {o.job.label: (o.result.duration_s if o.result else None) for o in res.outcomes},
                            "failed": [o.job.label for o in res.failed]}
    return {"skipped": skipped, "by_workers": results}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs of the minimal notebook (default 3)")
    ap.add_argument("--skip-batch", action="store_true", help="only the overhead of one run")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as d:
        tmp = Path(d)
        out = {"overhead": overhead(tmp, args.repeat), "in_process": in_process(tmp), "worker_start_s": worker_start(max(3, args.repeat))}
        o = out["overhead"]
        print(f"\none report run of a minimal notebook (median of {o['repeat']}):")
        for label, key in STEPS:
            print(f"  {label:<20} {o[key]:7.2f} s")
        p = out["in_process"]
        print(f"  checking data_overview parameters alone: {p['parameter_check_ms']:.1f} ms")
        print(f"  rendering report.html of a data_overview run ({p['overview_figures']} figures, "
              f"{p['overview_html_kb']:.0f} KB): {p['render_overview_s']:.2f} s")
        first, then = out["worker_start_s"]
        print(f"  starting a batch job's worker process: first job {first:.2f} s (fork server, imports), each further job {then:.3f} s")
        if not args.skip_batch:
            b = out["batch"] = batch(tmp)
            if b["skipped"]:
                print(f"\nskipped (notebook not there yet): {', '.join(b['skipped'])}")
            print("\ndefault batch, wall time:")
            base = None
            for workers, r in b["by_workers"].items():
                base = base or r["wall_s"]
                status = "all succeeded" if r["ok"] else f"FAILED: {', '.join(r['failed'])}"
                print(f"  {workers} worker(s): {r['wall_s']:7.1f} s for {r['jobs']} run(s)  (x{base / r['wall_s']:.2f})  {status}")
            for label, secs in next(iter(b["by_workers"].values()))["runs"].items():
                print(f"    {label}: {secs:.1f} s" if secs is not None else f"    {label}: no run")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

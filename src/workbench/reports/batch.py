"""Batches: many report runs from one config file, in parallel worker processes.

A batch config (``batches/default.yml``) lists jobs; each names a notebook and
its parameters, and may expand a parameter grid (one run per combination)::

    name: default
    description: every report on the sample data
    jobs:
      - notebook: data_overview
        parameters: {dataset: sample}
      - notebook: data_overview
        grid:
          dataset: [sample, cdnow-sample]

Every job's notebook and parameters are checked before anything runs (a
typo fails the whole batch at once, naming the job). A relative ``dataset``
path in a config is relative to the project folder (where ``notebooks/`` is).
Jobs then run in supervised worker processes, one fresh process per job
(default: one per core at a time, see :mod:`workbench.reports.workers`): a job
that fails, or whose worker dies, fails alone; an interrupted batch stops its
workers and kernels at once. At the end, interrupted or not, a summary table
is printed, the run index rebuilt, and the batch fails if any job failed.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from workbench.errors import ParameterError
from workbench.reports.errors import BatchConfigError, NotebookError, ReportError
from workbench.reports.files import read_text
from workbench.reports.html import format_duration
from workbench.reports.manifest import MANIFEST, ManifestError, read_manifest
from workbench.reports.notebooks import find_project_root, resolve_notebook
from workbench.reports.parameters import bind, declared_parameters, load_yaml
from workbench.reports.runner import DATASET_PARAMETER, RunResult, abandon_run, dataset_argument, run_notebook, write_json

DEFAULT_CONFIG = Path("batches") / "default.yml"
_TOP_KEYS = {"name", "description", "jobs"}
_JOB_KEYS = {"notebook", "name", "parameters", "grid"}


@dataclass(frozen=True)
class Job:
    """One run of a batch: a notebook and the parameters given to it."""

    number: int
    notebook: Path
    parameters: dict
    label: str
    where: str

    @property
    def name(self) -> str:
        return self.notebook.stem

    def describe_parameters(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.parameters.items()) or "defaults"


@dataclass(frozen=True)
class Batch:
    """A checked batch config."""

    name: str
    path: Path
    root: Path
    jobs: list[Job]
    description: str = ""


@dataclass
class JobOutcome:
    """How one job ended. ``state`` overrides the run's status when the job
    has none: ``error`` (it could not run or its worker died), ``interrupted``
    or ``not started``."""

    job: Job
    result: RunResult | None = None
    problem: str | None = None  # why the job has no finished run, or why its run failed
    duration_s: float = 0.0
    state: str | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok

    @property
    def status(self) -> str:
        if self.state:
            return self.state
        return self.result.status if self.result is not None else "error"


@dataclass
class BatchResult:
    batch: Batch
    outcomes: list[JobOutcome] = field(default_factory=list)
    workers: int = 1
    duration_s: float = 0.0
    index: Path | None = None
    interrupted: str | None = None  # the signal that stopped the batch
    index_problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.interrupted is None and all(o.ok for o in self.outcomes)

    @property
    def failed(self) -> list[JobOutcome]:
        return [o for o in self.outcomes if not o.ok and o.status not in ("interrupted", "not started")]

    def summary(self) -> str:
        """The table printed at the end of a batch (also when it was interrupted)."""
        n_ok = sum(o.ok for o in self.outcomes)
        counts = f"{len(self.outcomes)} run(s), {n_ok} succeeded, {len(self.failed)} failed"
        stopped = [o for o in self.outcomes if o.status in ("interrupted", "not started")]
        if self.interrupted:
            n_int = sum(o.status == "interrupted" for o in stopped)
            counts += f", {n_int} interrupted, {len(stopped) - n_int} not started"
        head = (
            f"batch {self.batch.name}{' INTERRUPTED (' + self.interrupted + ')' if self.interrupted else ''}: {counts} "
            f"in {format_duration(self.duration_s)} with {self.workers} worker(s)"
        )
        rows = [("#", "notebook", "parameters", "status", "took", "report")]
        for o in sorted(self.outcomes, key=lambda o: o.job.number):
            report = _short(o.result.report) if o.result is not None else "-"
            took = format_duration(o.result.duration_s if o.result is not None else o.duration_s)
            rows.append((str(o.job.number), o.job.name, _clip(o.job.describe_parameters(), 48), o.status.upper() if not o.ok else o.status, took, report))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [head, ""]
        for r in rows:
            lines.append("  ".join(r[i].rjust(widths[i]) if i in (0, 4) else r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5])
        if self.failed:
            lines += ["", "failures:"]
            for o in sorted(self.failed, key=lambda o: o.job.number):
                why = o.problem or (o.result.error if o.result is not None else "unknown")
                lines.append(f"  {o.job.number}. {o.job.label}: {why}")
        if stopped:
            lines += ["", "stopped:"]
            for o in sorted(stopped, key=lambda o: o.job.number):
                lines.append(f"  {o.job.number}. {o.job.label}: {o.problem or o.status}")
        if self.index is not None:
            lines += ["", f"run index: {_short(self.index)}"]
        if self.index_problem:
            lines += ["", f"run index not rebuilt: {self.index_problem}"]
        return "\n".join(lines)


def _short(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# --------------------------------------------------------------------- config
def _config_path(config, root: Path) -> Path:
    if config is None:
        if (root / DEFAULT_CONFIG).is_file():
            return root / DEFAULT_CONFIG
        raise BatchConfigError(f"no batch config given and no {DEFAULT_CONFIG} in {root}: run from the project folder or name a config file")
    path = Path(config).expanduser()
    if path.is_file():
        return path
    named = root / "batches" / (path.name if path.suffix in (".yml", ".yaml") else f"{path.name}.yml")
    if len(path.parts) == 1 and named.is_file():
        return named
    available = ", ".join(sorted(p.stem for p in (root / "batches").glob("*.y*ml"))) or "none"
    raise BatchConfigError(f"batch config {config} not found (batches in {root / 'batches'}: {available})")


def load_batch(config=None, root=None) -> Batch:
    """Read and check a batch config: every job's notebook exists and its
    parameters fit the notebook's declared ones. All problems are reported
    at once as a :class:`BatchConfigError`."""
    base = find_project_root(root)
    path = _config_path(config, base)
    project = find_project_root(root or path.resolve().parent)
    text = read_text(path, "batch config", BatchConfigError)
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise BatchConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise BatchConfigError(f"{path}: a batch config is a mapping with a `jobs:` list (see docs/reports.md)")
    problems = []
    unknown = set(data) - _TOP_KEYS
    if unknown:
        problems.append(f"unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(_TOP_KEYS))})")
    jobs: list[Job] = []
    declared_cache: dict[Path, list] = {}
    for i, entry in enumerate(data["jobs"], start=1):
        where = f"job {i}"
        if not isinstance(entry, dict) or "notebook" not in entry:
            problems.append(f"{where}: must be a mapping with at least `notebook:`")
            continue
        where = f"job {i} ({entry['notebook']})"
        bad = set(entry) - _JOB_KEYS
        if bad:
            problems.append(f"{where}: unknown key(s) {', '.join(sorted(bad))} (allowed: {', '.join(sorted(_JOB_KEYS))})")
            continue
        params = entry.get("parameters") or {}
        grid = entry.get("grid") or {}
        if not isinstance(params, dict):
            problems.append(f"{where}: `parameters` must be a mapping of NAME: VALUE")
            continue
        if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
            problems.append(f"{where}: `grid` must map each parameter name to a non-empty list of values")
            continue
        both = set(params) & set(grid)
        if both:
            problems.append(f"{where}: {', '.join(sorted(both))} given both in `parameters` and in `grid`; keep one")
            continue
        try:
            ref = Path(str(entry["notebook"]))
            nb = resolve_notebook(ref if len(ref.parts) == 1 or ref.is_absolute() else project / ref, project)
            declared = declared_cache.setdefault(nb, declared_parameters(nb))
        except NotebookError as exc:
            problems.append(f"{where}: {exc}")
            continue
        names = list(grid)
        for combo in itertools.product(*(grid[n] for n in names)) if names else [()]:
            given = {**params, **dict(zip(names, combo))}
            label_bits = ", ".join(f"{k}={v}" for k, v in given.items())
            label = entry.get("name") or f"{nb.stem} [{label_bits or 'defaults'}]"
            try:
                bind(declared, given, notebook=f"{path.name} {where}")
            except ParameterError as exc:
                problems.append(str(exc))
                continue
            if DATASET_PARAMETER in given:
                given[DATASET_PARAMETER] = dataset_argument(given[DATASET_PARAMETER], project)
            jobs.append(Job(len(jobs) + 1, nb, given, str(label), where))
    if problems:
        raise BatchConfigError(f"batch config {path} has {len(problems)} problem(s); nothing was run:\n" + "\n".join(f"  - {p}" for p in problems))
    if not jobs:
        raise BatchConfigError(f"batch config {path} lists no jobs")
    return Batch(str(data.get("name") or path.stem), path, project, jobs, str(data.get("description") or ""))


# --------------------------------------------------------------------- running
def _run_job(job: Job, report, root: str, reports_dir: str | None, batch_name: str, cell_timeout) -> JobOutcome:
    """Worker-process entry point: one job; a refused or unwritable run is an outcome, not an exception."""
    t0 = time.perf_counter()
    try:
        result = run_notebook(job.notebook, job.parameters, root=root, reports_dir=reports_dir, progress=False,
                              update_index=False, batch=batch_name, cell_timeout=cell_timeout, on_event=report)
        return JobOutcome(job, result, None, time.perf_counter() - t0)
    except Exception as exc:  # isolate: report and let the other jobs go on
        return JobOutcome(job, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0, state="error")


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _outcome(ending) -> JobOutcome:
    """A job's outcome from how its worker ended; a worker that died leaves a failed run."""
    job = ending.task
    took = ending.seconds
    if isinstance(ending.result, JobOutcome):
        return ending.result
    why = ending.problem or "the worker ended without a result"
    result = None
    if ending.run_dir is not None and ending.run_dir.is_dir():
        final = abandon_run(ending.run_dir, f"{why}; the cells after the one running then did not run")
        if final is not None:
            m = json.loads((final / MANIFEST).read_text(encoding="utf-8"))
            result = RunResult(m["notebook"], m["run_id"], "failed", final, m.get("parameters", {}), took, f"WorkerDied: {why}")
    return JobOutcome(job, result, why, took, state=None if result is not None else "error")


def _mark_interrupted(run_dir: Path | None, signame: str) -> None:
    """Record in a stopped run's hidden folder that it was interrupted (it stays unlisted)."""
    if run_dir is None or not run_dir.is_dir():
        return
    try:
        manifest = read_manifest(run_dir)
    except ManifestError:
        return
    manifest.update(status="interrupted", error={"ename": "Interrupted", "evalue": f"the batch was stopped by {signame}", "where": ""})
    try:
        write_json(run_dir / MANIFEST, manifest)
    except ReportError:
        pass


def run_batch(config=None, *, workers: int | None = None, reports_dir=None, root=None, progress: bool = True,
              only: list[str] | None = None, cell_timeout: float | None = None) -> BatchResult:
    """Run every job of a batch config (default ``batches/default.yml``).

    ``workers`` defaults to the number of cores (never more than the jobs);
    ``only`` keeps the jobs of the named notebooks. Returns a
    :class:`BatchResult` (also when SIGINT, SIGTERM or SIGHUP interrupted it:
    ``.interrupted`` names the signal); check ``.ok``.
    """
    from tqdm import tqdm

    from workbench.reports.index import build_index
    from workbench.reports.workers import supervise

    batch = load_batch(config, root)
    jobs = batch.jobs
    if only:
        unknown = set(only) - {j.name for j in jobs}
        if unknown:
            raise BatchConfigError(f"--only {', '.join(sorted(unknown))}: not in {batch.path} (its notebooks: {', '.join(sorted({j.name for j in jobs}))})")
        jobs = [j for j in jobs if j.name in only]
    if workers is not None and workers < 1:
        raise ParameterError(f"workers must be at least 1, got {workers}")
    if cell_timeout is not None and not cell_timeout > 0:
        raise ParameterError(f"cell_timeout must be a positive number of seconds, got {cell_timeout!r}")
    n_workers = min(workers or default_workers(), len(jobs))
    reports = str(Path(reports_dir).resolve()) if reports_dir else str(batch.root / "reports")
    result = BatchResult(batch, workers=n_workers)
    t0 = time.perf_counter()
    say = (lambda text: tqdm.write(text, file=sys.stderr)) if progress else (lambda text: None)
    say(f"batch {batch.name}: {len(jobs)} run(s) from {_short(batch.path)} on {n_workers} worker(s)")
    bar = tqdm(total=len(jobs), desc=f"batch {batch.name}", unit="run", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    def finished(ending) -> None:
        outcome = _outcome(ending)
        result.outcomes.append(outcome)
        took = format_duration(outcome.result.duration_s if outcome.result else outcome.duration_s)
        detail = _short(outcome.result.report) if outcome.result else outcome.problem
        if outcome.result is not None and not outcome.ok and outcome.problem:
            detail = f"{detail} ({outcome.problem})"
        say(f"  {'ok    ' if outcome.ok else 'FAILED'} {outcome.job.label}  ({took})  {detail}")
        bar.update(1)

    entry = functools.partial(_run_job, root=str(batch.root), reports_dir=reports, batch_name=batch.name, cell_timeout=cell_timeout)
    try:
        stopped = supervise(jobs, n_workers, entry, finished, preload=("workbench.reports.batch",))
    finally:
        bar.close()
    if stopped is not None:
        signame = stopped.signal
        result.interrupted = signame
        for ending in stopped.running:
            _mark_interrupted(ending.run_dir, signame)
            where = f"; partial run left in {_short(ending.run_dir)} (`workbench index --prune` removes it)" if ending.run_dir else ""
            result.outcomes.append(JobOutcome(ending.task, None, f"interrupted while running{where}", ending.seconds, state="interrupted"))
        for job in stopped.queued:
            result.outcomes.append(JobOutcome(job, None, "not started: the batch was interrupted", 0.0, state="not started"))
    result.duration_s = time.perf_counter() - t0
    try:
        result.index = build_index(reports)
    except ReportError as exc:
        result.index_problem = str(exc)
    return result


__all__ = ["Batch", "BatchResult", "Job", "JobOutcome", "default_workers", "load_batch", "run_batch"]

"""One report run: check parameters, execute with papermill, render, record.

:func:`run_notebook` checks the given parameters against the notebook's
declared ones (types and rules) before any kernel starts, executes the
notebook with papermill (cwd = the project root, the kernel = this Python)
into a hidden working folder ``reports/<notebook>/.tmp-<run-id>/``, renders
``report.html``, writes ``metrics.json`` and ``manifest.json``, and only then
renames the folder to ``reports/<notebook>/<run-id>/``.

The working folder appears with its manifest already in it (it is set up as
``.new-<pid>-...`` and renamed), so ``workbench index --prune`` never mistakes
a run that is starting for a dead one. A run killed on the way leaves only the
hidden folder, which nothing treats as a run. A notebook that raises, a cell
that times out or a kernel that dies still gives a complete run folder whose
manifest says ``failed`` and names the cell. A file that cannot be written (a
full disk) ends the run with one clear error and removes its working folder.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import logging
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from workbench.errors import ParameterError
from workbench.reports.errors import ReportError
from workbench.reports.files import write_text
from workbench.reports.html import format_duration, render_report, strip_ansi, title_of
from workbench.reports.kernel import KernelWatch, execution_error, kernel_manager_class
from workbench.reports.manifest import (
    KERNEL_LOG,
    MANIFEST,
    MANIFEST_VERSION,
    METRICS,
    REPORT,
    STAGING_PREFIX,
    TMP_PREFIX,
    metrics_problems,
)
from workbench.reports.metrics import ENV_VAR as METRICS_ENV
from workbench.reports.metrics import clean_value, dumps
from workbench.reports.notebooks import notebook_root, resolve_notebook
from workbench.reports.parameters import bind, declared_parameters, load_parameters_file

#: the parameter that names a dataset (a relative path in it is made absolute)
DATASET_PARAMETER = "dataset"


@dataclass(frozen=True)
class RunResult:
    """What a run produced. ``status`` is ``succeeded`` or ``failed``."""

    notebook: str
    run_id: str
    status: str
    run_dir: Path
    parameters: dict = field(default_factory=dict)
    duration_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def report(self) -> Path:
        return self.run_dir / REPORT

    @property
    def executed_notebook(self) -> Path:
        return self.run_dir / f"{self.notebook}.ipynb"

    @property
    def manifest(self) -> dict:
        return json.loads((self.run_dir / MANIFEST).read_text(encoding="utf-8"))

    @property
    def metrics(self) -> dict:
        return json.loads((self.run_dir / METRICS).read_text(encoding="utf-8"))


# --------------------------------------------------------------------- helpers
def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def params_hash(notebook: str, values: dict) -> str:
    """A short, stable hash of a notebook name and its parameter values."""
    text = json.dumps({"notebook": notebook, "parameters": values}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def make_run_id(notebook: str, values: dict, when: _dt.datetime | None = None) -> str:
    """``20261122T101500Z-<hash of parameters>``: sorts by time, groups equal parameters."""
    when = when or _utcnow()
    return f"{when.strftime('%Y%m%dT%H%M%SZ')}-{params_hash(notebook, values)}"


def dataset_argument(value, base) -> object:
    """A ``dataset`` value as the kernel must see it: a relative folder or file
    path is made absolute against ``base`` (the caller's working folder), so
    ``workbench run`` means what ``workbench validate`` means. Built-in names
    (``sample``, unless ``base`` holds a folder of that name, as
    :func:`workbench.data.resolve_dataset` decides) and URLs stay as given."""
    from workbench.data.paths import BUILTIN

    if not isinstance(value, str) or not value or "://" in value:
        return value
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    if value in BUILTIN and not (Path(base) / value).is_dir():
        return value
    return os.path.normpath(Path(base).resolve() / path)


def git_info(root: Path) -> dict:
    """The commit checked out at ``root`` and whether there are uncommitted changes."""

    def git(*args):
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        return out.stdout.strip() if out.returncode == 0 else None

    try:
        commit = git("rev-parse", "HEAD")
        if not commit:
            return {"commit": None, "commit_short": None, "dirty": None}
        status = git("status", "--porcelain", "--untracked-files=no")
        return {"commit": commit, "commit_short": commit[:10], "dirty": bool(status)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "commit_short": None, "dirty": None}


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _reserve(notebook_dir: Path, base_id: str, manifest: dict | None = None) -> tuple[str, Path]:
    """A run id not used by any run, and its hidden working folder holding
    ``manifest`` (with ``run_id`` filled in) from the moment it is visible.

    The folder is set up as ``.new-<pid>-<random>`` and renamed to
    ``.tmp-<run-id>``; the rename fails if another run holds that name, so
    parallel runs never share a folder."""
    notebook_dir.mkdir(parents=True, exist_ok=True)
    staging = notebook_dir / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        for k in range(1, 1000):
            run_id = base_id if k == 1 else f"{base_id}-{k}"
            tmp = notebook_dir / f"{TMP_PREFIX}{run_id}"
            if (notebook_dir / run_id).exists() or tmp.exists():
                continue
            write_json(staging / MANIFEST, {**(manifest or {}), "run_id": run_id})
            try:
                os.rename(staging, tmp)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue
                raise
            return run_id, tmp
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    raise ReportError(f"cannot find a free run id for {base_id} in {notebook_dir}")  # pragma: no cover


def _read_metrics(path: Path) -> tuple[dict, str | None]:
    """The recorded metrics (cleaned as record() does), and a problem if the file is not a flat mapping."""
    if not path.exists():
        return {}, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return {}, f"metrics.json is not valid JSON: {exc}"
    problems = metrics_problems(data)
    if not isinstance(data, dict):
        return {}, f"metrics.json {problems[0]}"
    if problems:
        return {k: clean_value(k, v) for k, v in data.items() if not isinstance(v, (bool, list, dict))}, f"metrics.json: {problems[0]}"
    try:
        return {k: clean_value(k, v) for k, v in data.items()}, None
    except (TypeError, ValueError) as exc:
        return {}, f"metrics.json: {exc}"


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _quiet_logs(quiet: bool):
    """Silence papermill's and nbclient's log lines (e.g. "Kernel died ...") in a quiet run."""
    if not quiet:
        yield
        return
    loggers = [logging.getLogger(n) for n in ("papermill", "NotebookClient", "traitlets")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


# --------------------------------------------------------------------- the run
def run_notebook(
    notebook,
    parameters: dict | None = None,
    *,
    texts: dict | None = None,
    params_file=None,
    reports_dir=None,
    root=None,
    progress: bool = True,
    update_index: bool = True,
    cell_timeout: float | None = None,
    batch: str | None = None,
    on_event=None,
) -> RunResult:
    """Run a report notebook into ``reports/<notebook>/<run-id>/``.

    Parameters
    ----------
    notebook : a path to an ``.ipynb`` file or a notebook name in ``notebooks/``.
    parameters : typed values (as from Python or a YAML file).
    texts : values as typed on a command line (strings, converted to the declared types).
    params_file : a YAML file of ``name: value`` lines (``parameters`` and ``texts`` override it).
    reports_dir : where runs go; default ``<project root>/reports``.
    root : the project root (the notebook runs with this as its working folder);
        default: the folder holding the notebook's ``notebooks/`` folder.
    progress : show what is happening and a per-cell progress bar on stderr.
    update_index : rebuild ``reports/index.html`` afterwards.
    cell_timeout : seconds a single cell may run before the run fails (default: no limit).
    batch : name of the batch this run belongs to (recorded in the manifest).
    on_event : called as ``on_event("run_dir", path)`` once the working folder
        exists and ``on_event("kernel", pid)`` once the kernel has started (for
        a supervisor that may have to stop them).

    A relative path in the ``dataset`` parameter is made absolute against the
    current working folder before the kernel starts (built-in names stay names).

    Raises :class:`~workbench.errors.ParameterError` (nothing is run, no
    folder is made) for an unknown parameter or a value that breaks its type or
    rule, and :class:`~workbench.reports.errors.ReportError` if the run's files
    cannot be written (its working folder is removed). A notebook that raises
    does not raise here: the result's ``status`` is ``failed``.
    """
    t0 = time.perf_counter()
    started = _utcnow()
    if cell_timeout is not None and not cell_timeout > 0:
        raise ParameterError(f"cell_timeout must be a positive number of seconds, got {cell_timeout!r}")
    nb_path = resolve_notebook(notebook, root)
    project = Path(root).resolve() if root else notebook_root(nb_path)
    name = nb_path.stem
    rel = os.path.relpath(nb_path, project) if nb_path.is_relative_to(project) else str(nb_path)

    # 1. parameters, before any kernel starts
    declared = declared_parameters(nb_path)
    given = dict(load_parameters_file(params_file)) if params_file else {}
    given.update(parameters or {})
    values = bind(declared, given, texts, notebook=rel)
    if DATASET_PARAMETER in values:
        values[DATASET_PARAMETER] = dataset_argument(values[DATASET_PARAMETER], Path.cwd())
    t_check = time.perf_counter() - t0

    # 2. a hidden working folder, visible only with its manifest in it
    reports = Path(reports_dir).resolve() if reports_dir else project / "reports"
    source_nb = nbformat.read(nb_path, as_version=4)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "notebook": name,
        "notebook_file": f"{name}.ipynb",
        "notebook_path": rel,
        "title": title_of(source_nb) or name,
        "run_id": None,
        "batch": batch,
        "status": "running",
        "parameters": values,
        "parameters_given": {**given, **(texts or {})},
        "defaults": {p.name: p.default for p in declared},
        "dataset": values.get(DATASET_PARAMETER),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": None,
        "duration_s": None,
        "timings": {"parameter_check_s": round(t_check, 4)},
        "workbench_version": _version(),
        "python": platform.python_version(),
        "git": git_info(project),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "error": None,
    }
    run_id, tmp = _reserve(reports / name, make_run_id(name, values, started), manifest)
    manifest["run_id"] = run_id
    if on_event is not None:
        on_event("run_dir", tmp)
    try:
        return _execute(nb_path, name, project, reports, run_id, tmp, manifest, source_nb, declared, values,
                        t0=t0, progress=progress, update_index=update_index, cell_timeout=cell_timeout, on_event=on_event)
    except ReportError as exc:  # a file could not be written: keep nothing half-written
        shutil.rmtree(tmp, ignore_errors=True)
        raise ReportError(f"{exc} (run {name}/{run_id} not kept)") from None


def _execute(nb_path, name, project, reports, run_id, tmp, manifest, source_nb, declared, values, *,
             t0, progress, update_index, cell_timeout, on_event) -> RunResult:
    final = reports / name / run_id
    executed = tmp / f"{name}.ipynb"
    metrics_path = tmp / METRICS
    _say(progress, f"run {name} [{', '.join(f'{k}={v!r}' for k, v in values.items())}]")
    _say(progress, f"  into {final}")

    # 3. execute
    marks: dict[str, float] = {}
    watch = KernelWatch(on_event)
    env = {METRICS_ENV: str(metrics_path), "WORKBENCH_ROOT": str(project), "WORKBENCH_RUN_ID": run_id, "PYTHONHASHSEED": "0"}
    error = None
    kernel_log = open(tmp / KERNEL_LOG, "wb")  # noqa: SIM115 - closed below, after the kernel has ended
    t_exec = time.perf_counter()
    try:
        import papermill as pm
        from papermill.exceptions import PapermillExecutionError

        def cell_started(cell, cell_index, **_):
            watch.cell_index = cell_index

        try:
            with _quiet_logs(not progress):
                pm.execute_notebook(
                    str(nb_path),
                    str(executed),
                    parameters=values,
                    kernel_name="python3",
                    language="python",
                    progress_bar=progress,
                    cwd=str(project),
                    kernel_manager_class=kernel_manager_class(env, kernel_log, watch),
                    on_notebook_start=lambda **_: marks.setdefault("kernel_ready", time.perf_counter()),
                    on_cell_execute=cell_started,
                    execution_timeout=cell_timeout,
                    start_timeout=300,
                )
        except PapermillExecutionError as exc:
            where = f"In [{exc.exec_count}]" if exc.exec_count is not None else f"cell {exc.cell_index + 1}"
            error = {"ename": exc.ename, "evalue": strip_ansi(exc.evalue), "cell_index": exc.cell_index, "execution_count": exc.exec_count,
                     "where": f"the notebook raised in {where}", "detail": strip_ansi("\n".join(exc.traceback or []))}
    except KeyboardInterrupt:
        manifest.update(status="interrupted", finished_at=_utcnow().isoformat(timespec="seconds"))
        with contextlib.suppress(ReportError):
            write_json(tmp / MANIFEST, manifest)
        _say(progress, f"interrupted: the partial run is left in {tmp} and is not listed as a run")
        raise
    except Exception as exc:  # the kernel died, a cell timed out, the kernel did not start...
        error = execution_error(exc, watch, executed, cell_timeout)
    finally:
        kernel_log.close()
        if (tmp / KERNEL_LOG).stat().st_size == 0:
            (tmp / KERNEL_LOG).unlink()
    t_done = time.perf_counter()
    kernel_ready = marks.get("kernel_ready")
    manifest["timings"].update(
        kernel_start_s=round(kernel_ready - t_exec, 4) if kernel_ready else None,
        execute_s=round(t_done - t_exec, 4),
    )

    # 4. metrics
    metrics, problem = _read_metrics(metrics_path)
    if problem and error is None:
        error = {"ename": "MetricsError", "evalue": problem, "where": problem}
    write_text(metrics_path, dumps(metrics))

    # 5. HTML (also for a failed run: the page shows the error prominently)
    manifest.update(
        status="failed" if error else "succeeded",
        error=error,
        finished_at=_utcnow().isoformat(timespec="seconds"),
        duration_s=round(time.perf_counter() - t0, 3),
    )
    t_render = time.perf_counter()
    nb_for_page = nbformat.read(executed, as_version=4) if executed.exists() else source_nb
    try:
        html = render_report(nb_for_page, manifest, metrics, declared)
    except Exception as exc:  # never lose the run because the page could not be drawn
        manifest["status"] = "failed"
        manifest["error"] = manifest["error"] or {"ename": type(exc).__name__, "evalue": str(exc), "where": "rendering report.html failed"}
        html = _fallback_page(manifest, exc)
    write_text(tmp / REPORT, html)
    manifest["timings"]["render_s"] = round(time.perf_counter() - t_render, 4)
    manifest["duration_s"] = round(time.perf_counter() - t0, 3)
    manifest["finished_at"] = _utcnow().isoformat(timespec="seconds")
    write_json(tmp / MANIFEST, manifest)

    # 6. into place, all at once
    final = _into_place(tmp, final, manifest)
    run_id = manifest["run_id"]
    result = RunResult(name, run_id, manifest["status"], final, values, manifest["duration_s"],
                       None if not manifest["error"] else f"{manifest['error']['ename']}: {manifest['error'].get('evalue', '')}")
    if update_index:
        from workbench.reports.index import build_index

        try:
            build_index(reports)
        except ReportError as exc:
            raise ReportError(f"{exc}; the run itself is complete in {final}") from None
    if result.ok:
        _say(progress, f"succeeded in {format_duration(result.duration_s)}: {result.report}")
    else:
        _say(progress, f"FAILED after {format_duration(result.duration_s)} ({result.error}); see {result.report}")
    return result


def _into_place(tmp: Path, final: Path, manifest: dict) -> Path:
    """Rename the working folder to its run folder; if another run took that
    name meanwhile, to the next free ``<run-id>-k``."""
    base = manifest["run_id"]
    for k in range(1, 1000):
        target = final if k == 1 else final.with_name(f"{base}-{k}")
        if k > 1:
            manifest["run_id"] = target.name
            write_json(tmp / MANIFEST, manifest)
        try:
            os.rename(tmp, target)
            return target
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise ReportError(f"cannot move the finished run {tmp} to {target}: {exc.strerror}") from None
    raise ReportError(f"cannot find a free run folder for {final}")  # pragma: no cover


def abandon_run(tmp, why: str) -> Path | None:
    """Turn the working folder of a run whose process died into a failed run
    (its partial notebook kept, a page stating ``why``); returns the run folder,
    or None if there is nothing to keep."""
    tmp = Path(tmp)
    try:
        manifest = json.loads((tmp / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not manifest.get("run_id") or manifest.get("status") != "running":
        return None
    error = {"ename": "WorkerDied", "evalue": why, "where": why, "detail": ""}
    metrics, _ = _read_metrics(tmp / METRICS)
    manifest.update(status="failed", error=error, finished_at=_utcnow().isoformat(timespec="seconds"))
    try:
        executed = tmp / manifest.get("notebook_file", "")
        nb = nbformat.read(executed, as_version=4) if executed.is_file() else nbformat.v4.new_notebook()
        try:
            html = render_report(nb, manifest, metrics, None)
        except Exception as exc:  # noqa: BLE001 - never lose the run because the page could not be drawn
            html = _fallback_page(manifest, exc)
        write_text(tmp / METRICS, dumps(metrics))
        write_text(tmp / REPORT, html)
        write_json(tmp / MANIFEST, manifest)
        return _into_place(tmp, tmp.parent / manifest["run_id"], manifest)
    except ReportError:
        return None


def _version() -> str:
    from workbench import __version__

    return __version__


def _fallback_page(manifest: dict, exc: Exception) -> str:
    import html

    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>report rendering failed</title></head><body>"
        f"<h1>{html.escape(manifest.get('notebook', ''))}: the report page could not be rendered</h1>"
        f"<p>{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</p>"
        "<p>The executed notebook and metrics.json in this folder are complete.</p></body></html>"
    )


__all__ = ["DATASET_PARAMETER", "RunResult", "abandon_run", "dataset_argument", "make_run_id", "params_hash", "run_notebook"]

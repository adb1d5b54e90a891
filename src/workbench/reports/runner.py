"""One report run: check parameters, execute with papermill, render, record.

:func:`run_notebook` checks the given parameters against the notebook's
declared ones before any kernel starts, executes the notebook with papermill
(cwd = the project root, the kernel = this Python) into a hidden temporary
folder ``reports/<notebook>/.tmp-<run-id>/``, renders ``report.html``, writes
``metrics.json`` and ``manifest.json``, and only then renames the folder to
``reports/<notebook>/<run-id>/``. A run killed on the way leaves only the
hidden folder, which nothing treats as a run. A notebook that raises still
gives a complete run folder whose manifest says ``failed``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from workbench.data.credentials import redact, redact_all
from workbench.data.config import dataset_secrets
from workbench.reports.errors import ReportError
from workbench.reports.html import format_duration, render_report, strip_ansi, title_of
from workbench.reports.metrics import ENV_VAR as METRICS_ENV
from workbench.reports.notebooks import notebook_root, resolve_notebook
from workbench.reports.parameters import bind, declared_parameters, load_parameters_file

MANIFEST = "manifest.json"
METRICS = "metrics.json"
REPORT = "report.html"
KERNEL_LOG = "kernel.log"
TMP_PREFIX = ".tmp-"
MANIFEST_VERSION = 1


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
        return json.loads((self.run_dir / MANIFEST).read_text())

    @property
    def metrics(self) -> dict:
        return json.loads((self.run_dir / METRICS).read_text())


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


def _reserve(notebook_dir: Path, base_id: str) -> tuple[str, Path]:
    """A run id not used by a finished run, and its hidden working folder
    (created atomically, so parallel runs never share one)."""
    notebook_dir.mkdir(parents=True, exist_ok=True)
    for k in range(1, 1000):
        run_id = base_id if k == 1 else f"{base_id}-{k}"
        if (notebook_dir / run_id).exists():
            continue
        tmp = notebook_dir / f"{TMP_PREFIX}{run_id}"
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        return run_id, tmp
    raise ReportError(f"cannot find a free run id for {base_id} in {notebook_dir}")  # pragma: no cover


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


def _kernel_manager_class(extra_env: dict, log=None):
    """A kernel manager that starts an IPython kernel on *this* Python (whatever
    kernelspecs are installed) with ``extra_env`` added to its environment,
    the kernel process's own messages going to the open file ``log``, and the
    connection encrypted where ZeroMQ supports it."""
    import zmq
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict, make_ipkernel_cmd
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class WorkbenchKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            if zmq.has("curve"):
                self.transport_encryption = "auto"
        @property
        def kernel_spec(self):
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(
                    argv=make_ipkernel_cmd(executable=sys.executable),
                    display_name="Python 3 (ipykernel)",
                    language="python",
                    resource_dir=RESOURCES,
                    metadata=dict(get_kernel_dict()["metadata"]),
                )
            return self._kernel_spec

        async def _async_pre_start_kernel(self, **kw):
            env = dict(kw.pop("env", None) or os.environ)
            env.update(extra_env)
            kw["env"] = env
            if log is not None:
                kw.setdefault("stdout", log)
                kw.setdefault("stderr", log)
            return await super()._async_pre_start_kernel(**kw)

    return WorkbenchKernelManager


def _read_metrics(path: Path) -> tuple[dict, str | None]:
    """The recorded metrics, and a problem if the file is not a flat mapping."""
    if not path.exists():
        return {}, None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return {}, f"metrics.json is not valid JSON: {exc}"
    if not isinstance(data, dict):
        return {}, "metrics.json is not a mapping"
    bad = [k for k, v in data.items() if not isinstance(v, (int, float, str)) or isinstance(v, bool)]
    if bad:
        return {k: v for k, v in data.items() if k not in bad}, f"metrics.json values must be numbers or strings: {', '.join(bad)}"
    return data, None


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


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

    Raises :class:`~workbench.errors.ParameterError` (nothing is run) for an
    unknown parameter or a value that does not fit its type. A notebook that
    raises does not raise here: the result's ``status`` is ``failed``.
    """
    t0 = time.perf_counter()
    started = _utcnow()
    nb_path = resolve_notebook(notebook, root)
    project = Path(root).resolve() if root else notebook_root(nb_path)
    name = nb_path.stem
    rel = os.path.relpath(nb_path, project) if nb_path.is_relative_to(project) else str(nb_path)

    # 1. parameters, before any kernel starts
    declared = declared_parameters(nb_path)
    given = dict(load_parameters_file(params_file)) if params_file else {}
    given.update(parameters or {})
    values = bind(declared, given, texts, notebook=rel)
    # credentials the dataset uses (from the environment) never reach a file this run writes
    secrets = dataset_secrets(values["dataset"]) if isinstance(values.get("dataset"), str) else []
    t_check = time.perf_counter() - t0

    # 2. a hidden working folder
    reports = Path(reports_dir).resolve() if reports_dir else project / "reports"
    run_id, tmp = _reserve(reports / name, make_run_id(name, values, started))
    final = reports / name / run_id
    executed = tmp / f"{name}.ipynb"
    metrics_path = tmp / METRICS
    source_nb = nbformat.read(nb_path, as_version=4)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "notebook": name,
        "notebook_file": executed.name,
        "notebook_path": rel,
        "title": title_of(source_nb) or name,
        "key_metrics": list(source_nb.metadata.get("workbench", {}).get("key_metrics", [])),
        "run_id": run_id,
        "batch": batch,
        "status": "running",
        "parameters": values,
        "parameters_given": {**given, **(texts or {})},
        "defaults": {p.name: p.default for p in declared},
        "dataset": values.get("dataset"),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": None,
        "duration_s": None,
        "timings": {"parameter_check_s": round(t_check, 4)},
        "workbench_version": _version(),
        "python": platform.python_version(),
        "git": git_info(project),
        "pid": os.getpid(),
        "error": None,
    }
    _write_json(tmp / MANIFEST, redact_all(manifest, secrets))
    _say(progress, redact(f"run {name} [{', '.join(f'{k}={v!r}' for k, v in values.items())}]", secrets))
    _say(progress, f"  into {final}")

    # 3. execute
    marks: dict[str, float] = {}
    env = {METRICS_ENV: str(metrics_path), "WORKBENCH_ROOT": str(project), "WORKBENCH_RUN_ID": run_id, "PYTHONHASHSEED": "0"}
    error = None
    kernel_log = open(tmp / KERNEL_LOG, "wb")  # noqa: SIM115 - closed below, after the kernel has ended
    t_exec = time.perf_counter()
    try:
        import papermill as pm
        from papermill.exceptions import PapermillExecutionError

        try:
            pm.execute_notebook(
                str(nb_path),
                str(executed),
                parameters=values,
                kernel_name="python3",
                language="python",
                progress_bar=progress,
                cwd=str(project),
                kernel_manager_class=_kernel_manager_class(env, kernel_log),
                on_notebook_start=lambda **_: marks.setdefault("kernel_ready", time.perf_counter()),
                execution_timeout=cell_timeout,
                start_timeout=300,
            )
        except PapermillExecutionError as exc:
            where = f"In [{exc.exec_count}]" if exc.exec_count is not None else f"cell {exc.cell_index + 1}"
            error = {"ename": exc.ename, "evalue": strip_ansi(exc.evalue), "cell_index": exc.cell_index, "execution_count": exc.exec_count,
                     "where": f"the notebook raised in {where}", "detail": strip_ansi("\n".join(exc.traceback or []))}
    except KeyboardInterrupt:
        manifest.update(status="interrupted", finished_at=_utcnow().isoformat(timespec="seconds"))
        _write_json(tmp / MANIFEST, redact_all(manifest, secrets))
        _say(progress, f"interrupted: the partial run is left in {tmp} and is not listed as a run")
        raise
    except Exception as exc:  # the kernel died, a cell timed out, the kernel did not start...
        error = {"ename": type(exc).__name__, "evalue": str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                 "where": "the notebook did not finish: " + (str(exc).strip() or type(exc).__name__),
                 "detail": traceback.format_exc(limit=3)}
    finally:
        kernel_log.close()
        if (tmp / KERNEL_LOG).stat().st_size == 0:
            (tmp / KERNEL_LOG).unlink()
        _scrub(tmp, executed, secrets)
    error = redact_all(error, secrets)
    t_done = time.perf_counter()
    kernel_ready = marks.get("kernel_ready")
    manifest["timings"].update(
        kernel_start_s=round(kernel_ready - t_exec, 4) if kernel_ready else None,
        execute_s=round(t_done - t_exec, 4),
    )

    # 4. metrics
    metrics, problem = _read_metrics(metrics_path)
    metrics = redact_all(metrics, secrets)
    if problem and error is None:
        error = {"ename": "MetricsError", "evalue": redact(problem, secrets), "where": redact(problem, secrets)}
    _write_json(metrics_path, metrics)

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
        html = render_report(nb_for_page, redact_all(manifest, secrets), metrics, declared)
    except Exception as exc:  # never lose the run because the page could not be drawn
        manifest["status"] = "failed"
        manifest["error"] = manifest["error"] or {"ename": type(exc).__name__, "evalue": redact(str(exc), secrets), "where": "rendering report.html failed"}
        html = _fallback_page(redact_all(manifest, secrets), exc)
    (tmp / REPORT).write_text(redact(html, secrets), encoding="utf-8")
    manifest["timings"]["render_s"] = round(time.perf_counter() - t_render, 4)
    manifest["duration_s"] = round(time.perf_counter() - t0, 3)
    manifest["finished_at"] = _utcnow().isoformat(timespec="seconds")
    manifest.pop("pid", None)
    _write_json(tmp / MANIFEST, redact_all(manifest, secrets))

    # 6. into place, all at once
    os.rename(tmp, final)
    if update_index:
        from workbench.reports.index import build_index

        build_index(reports)
    result = RunResult(name, run_id, manifest["status"], final, values, manifest["duration_s"],
                       None if not manifest["error"] else f"{manifest['error']['ename']}: {manifest['error'].get('evalue', '')}")
    if result.ok:
        _say(progress, f"succeeded in {format_duration(result.duration_s)}: {result.report}")
    else:
        _say(progress, f"FAILED after {format_duration(result.duration_s)} ({result.error}); see {result.report}")
    return result


def _scrub(tmp: Path, executed: Path, secrets) -> None:
    """Credentials out of the executed notebook and the kernel log (a cell may
    have printed a connection, an error may have echoed a URL)."""
    if executed.exists():
        data = json.loads(executed.read_text(encoding="utf-8"))
        clean = redact_all(data, secrets)
        if clean != data:
            nbformat.write(nbformat.from_dict(clean), executed)
    log = tmp / KERNEL_LOG
    if log.exists():
        text = log.read_text(encoding="utf-8", errors="replace")
        clean = redact(text, secrets)
        if clean != text:
            log.write_text(clean, encoding="utf-8")


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


__all__ = ["RunResult", "make_run_id", "params_hash", "run_notebook"]

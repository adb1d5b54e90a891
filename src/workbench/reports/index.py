"""The run index: every finished run, found from its manifest.

``reports/index.html`` is rebuilt from ``reports/<notebook>/<run-id>/manifest.json``
by :func:`build_index` (after every run and batch, and by ``workbench index``);
it is never edited by hand. Hidden ``.tmp-*`` folders (runs still going or
killed on the way) are never listed. :func:`find_run` turns what a user types
(a run folder, a run id or its prefix, ``NOTEBOOK`` for the latest run,
``NOTEBOOK~1`` for the one before) into a run.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from workbench.data.credentials import redact
from workbench.reports.errors import RunNotFoundError
from workbench.reports.html import CSP, css, format_duration, format_literal, format_value, format_when, template
from workbench.reports.notebooks import find_project_root
from workbench.reports.runner import MANIFEST, METRICS, REPORT, TMP_PREFIX

INDEX = "index.html"
KEY_METRICS = 4


@dataclass(frozen=True)
class Run:
    """A finished run folder with its manifest and metrics."""

    run_dir: Path
    manifest: dict
    metrics: dict

    @property
    def notebook(self) -> str:
        return self.manifest.get("notebook", self.run_dir.parent.name)

    @property
    def run_id(self) -> str:
        return self.manifest.get("run_id", self.run_dir.name)

    @property
    def status(self) -> str:
        return self.manifest.get("status", "unknown")

    @property
    def ref(self) -> str:
        return f"{self.notebook}/{self.run_id}"

    @property
    def parameters(self) -> dict:
        return self.manifest.get("parameters", {})


def default_reports_dir() -> Path:
    return find_project_root() / "reports"


def _load(run_dir: Path) -> Run | None:
    try:
        manifest = json.loads((run_dir / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    try:
        metrics = json.loads((run_dir / METRICS).read_text())
    except (OSError, json.JSONDecodeError):
        metrics = {}
    return Run(run_dir, manifest, metrics if isinstance(metrics, dict) else {})


def list_runs(reports_dir=None) -> list[Run]:
    """Every finished run under ``reports_dir``, newest first."""
    reports = Path(reports_dir) if reports_dir else default_reports_dir()
    runs = []
    if not reports.is_dir():
        return runs
    for nb_dir in reports.iterdir():
        if not nb_dir.is_dir() or nb_dir.name.startswith("."):
            continue
        for run_dir in nb_dir.iterdir():
            if run_dir.is_dir() and not run_dir.name.startswith(".") and (run_dir / MANIFEST).is_file():
                run = _load(run_dir)
                if run is not None:
                    runs.append(run)
    runs.sort(key=lambda r: (r.manifest.get("started_at") or "", r.run_id), reverse=True)
    return runs


def incomplete_runs(reports_dir=None) -> list[Path]:
    """Hidden working folders of runs that are still going or were killed."""
    reports = Path(reports_dir) if reports_dir else default_reports_dir()
    if not reports.is_dir():
        return []
    return sorted(p for nb in reports.iterdir() if nb.is_dir() and not nb.name.startswith(".") for p in nb.glob(f"{TMP_PREFIX}*") if p.is_dir())


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def prune_incomplete(reports_dir=None) -> list[Path]:
    """Delete the working folders of killed runs (their process is gone); returns them."""
    removed = []
    for tmp in incomplete_runs(reports_dir):
        try:
            pid = json.loads((tmp / MANIFEST).read_text()).get("pid")
        except (OSError, json.JSONDecodeError):
            pid = None
        if pid is None or not _alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def _row(run: Run, reports: Path) -> dict:
    m = run.manifest
    defaults = m.get("defaults", {})
    params = [(k, redact(format_literal(v)), k not in defaults or defaults[k] != v) for k, v in run.parameters.items() if k != "dataset"]
    keys = [k for k in m.get("key_metrics", []) if k in run.metrics] or list(run.metrics)[:KEY_METRICS]
    all_metrics = [(k, format_value(v)) for k, v in sorted(run.metrics.items())]
    rel = run.run_dir.relative_to(reports).as_posix()
    err = m.get("error") or {}
    status = run.status
    return {
        "run_id": run.run_id,
        "status": status,
        "status_class": status if status in ("succeeded", "failed") else "other",
        "when": format_when(m.get("started_at")),
        "dataset": redact(m.get("dataset")),  # manifests written before redaction may hold a URL's password
        "params": params,
        "took": format_duration(m.get("duration_s")),
        "key_metrics": [(k, format_value(run.metrics[k])) for k in keys],
        "all_metrics": all_metrics,
        "n_metrics": len(all_metrics),
        "more_metrics": len(all_metrics) > len(keys),
        "error": redact(f"{err.get('ename', 'Error')}: {err.get('evalue', '')}")[:200] if err else None,
        "href": f"{rel}/{REPORT}",
        "dir": rel,
        "notebook_file": m.get("notebook_file", f"{run.notebook}.ipynb"),
    }


def render_index(reports_dir=None) -> str:
    """The HTML of the run index."""
    from workbench import __version__

    reports = Path(reports_dir) if reports_dir else default_reports_dir()
    runs = list_runs(reports)
    groups: dict[str, dict] = {}
    for run in runs:  # newest first, so a group's title is from its latest run
        g = groups.setdefault(run.notebook, {"name": run.notebook, "title": run.manifest.get("title") or run.notebook, "runs": []})
        g["runs"].append(_row(run, reports))
    ordered = sorted(groups.values(), key=lambda g: g["name"])
    return template("index.html.j2").render(
        csp=CSP,
        css=css(),
        version=__version__,
        runs=runs,
        groups=ordered,
        failed=sum(r.status != "succeeded" for r in runs),
        latest=format_when(runs[0].manifest.get("started_at")) if runs else "-",
        incomplete=len(incomplete_runs(reports)),
    )


def build_index(reports_dir=None) -> Path:
    """Rebuild ``reports/index.html`` from the manifests (written atomically)."""
    reports = Path(reports_dir) if reports_dir else default_reports_dir()
    reports.mkdir(parents=True, exist_ok=True)
    html = render_index(reports)
    target = reports / INDEX
    tmp = reports / f".{INDEX}.{os.getpid()}.part"
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)
    return target


def find_run(ref, reports_dir=None) -> Run:
    """A finished run from a run folder, ``NOTEBOOK/RUN_ID``, a run id (or a
    unique prefix of one), ``NOTEBOOK`` (its latest run) or ``NOTEBOOK~N``
    (the N-th run before its latest)."""
    text = str(ref)
    path = Path(text).expanduser()
    if path.is_dir() and (path / MANIFEST).is_file():
        run = _load(path)
        if run is not None:
            return run
    reports = Path(reports_dir) if reports_dir else default_reports_dir()
    runs = list_runs(reports)
    nb, _, back = text.partition("~")
    by_nb = [r for r in runs if r.notebook == nb]
    if by_nb and "/" not in text:
        try:
            n = int(back) if back else 0
        except ValueError:
            raise RunNotFoundError(f"{text!r}: after `~` give a number of runs back, e.g. {nb}~1") from None
        if n >= len(by_nb):
            raise RunNotFoundError(f"{text!r}: {nb} has only {len(by_nb)} run(s) in {reports}")
        return by_nb[n]
    if "/" in text:
        nb_name, _, rid = text.rpartition("/")
        nb_name = Path(nb_name).name
        matches = [r for r in runs if r.notebook == nb_name and r.run_id.startswith(rid)]
    else:
        matches = [r for r in runs if r.run_id.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1 and all(m.run_dir == matches[0].run_dir for m in matches):
        return matches[0]
    if matches:
        shown = ", ".join(m.ref for m in matches[:5])
        raise RunNotFoundError(f"{text!r} matches {len(matches)} runs ({shown}); give more of the run id or NOTEBOOK/RUN_ID")
    notebooks = sorted({r.notebook for r in runs})
    hint = f"notebooks with runs: {', '.join(notebooks)}" if notebooks else "there are no runs yet"
    raise RunNotFoundError(
        f"no finished run matches {text!r} in {reports} ({hint}). Give a run folder, NOTEBOOK/RUN_ID, a run id, "
        "NOTEBOOK for its latest run or NOTEBOOK~1 for the one before."
    )


__all__ = ["Run", "build_index", "find_run", "incomplete_runs", "list_runs", "prune_incomplete", "render_index"]

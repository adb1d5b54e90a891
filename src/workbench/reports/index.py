"""The run index: every finished run, found from its manifest.

``reports/index.html`` is rebuilt from ``reports/<notebook>/<run-id>/manifest.json``
by :func:`build_index` (after every run and batch, and by ``workbench index``);
it is never edited by hand. Hidden ``.tmp-*`` folders (runs still going or
killed on the way) are never listed. A run folder whose manifest or metrics
are not what a run writes is skipped and named (with the reason) on the page
and by ``workbench index``; it never stops the index, a comparison or a run.
Each run shows its headline: the ``report.headline`` sentence and the metrics
named in ``report.headline_metrics``. :func:`find_run` turns what a user types
(a run folder, a run id or its prefix, ``NOTEBOOK`` for the latest run,
``NOTEBOOK~1`` for the one before) into a run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from workbench.reports.errors import RunNotFoundError
from workbench.reports.files import write_text
from workbench.reports.html import CSP, css, format_duration, format_literal, format_value, format_when, relative_href, template
from workbench.reports.manifest import MANIFEST, METRICS, REPORT, STAGING_PREFIX, TMP_PREFIX, ManifestError, read_run
from workbench.reports.metrics import HEADLINE, HEADLINE_METRICS
from workbench.reports.notebooks import find_project_root

INDEX = "index.html"
_STAGING_PID = re.compile(re.escape(STAGING_PREFIX) + r"(\d+)-")


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


def load_run(run_dir) -> Run:
    """The run in ``run_dir``; :class:`~workbench.reports.manifest.ManifestError` if its files are of the wrong shape."""
    manifest, metrics = read_run(run_dir)
    return Run(Path(run_dir), manifest, metrics)


def scan_runs(reports_dir=None) -> tuple[list[Run], list[tuple[Path, str]]]:
    """Every finished run under ``reports_dir`` (newest first), and every run
    folder skipped because its manifest or metrics are broken, with the reason."""
    reports = Path(reports_dir) if reports_dir else default_reports_dir()
    runs, skipped = [], []
    if not reports.is_dir():
        return runs, skipped
    for nb_dir in sorted(reports.iterdir()):
        if not nb_dir.is_dir() or nb_dir.name.startswith("."):
            continue
        for run_dir in sorted(nb_dir.iterdir()):
            if run_dir.is_dir() and not run_dir.name.startswith(".") and (run_dir / MANIFEST).exists():
                try:
                    runs.append(load_run(run_dir))
                except ManifestError as exc:
                    skipped.append((run_dir, str(exc)))
    runs.sort(key=lambda r: (r.manifest["started_at"], r.run_id), reverse=True)
    return runs, skipped


def list_runs(reports_dir=None) -> list[Run]:
    """Every finished run under ``reports_dir``, newest first (broken run folders are left out)."""
    return scan_runs(reports_dir)[0]


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


def _owner(tmp: Path) -> tuple[int | None, str | None]:
    """The process id and host recorded in a working folder's manifest."""
    try:
        data = json.loads((tmp / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    pid, host = data.get("pid"), data.get("host")
    return (pid if isinstance(pid, int) and not isinstance(pid, bool) else None), (host if isinstance(host, str) else None)


def prune_incomplete(reports_dir=None) -> list[Path]:
    """Delete the working folders of killed runs (their process has ended); returns them.

    A working folder is only ever visible with its manifest in it, so one
    without a readable manifest, or whose process has ended, is a leftover. A
    folder whose process runs on another host is left alone."""
    removed = []
    reports = Path(reports_dir) if reports_dir else default_reports_dir()
    here = socket.gethostname()
    for tmp in incomplete_runs(reports):
        pid, host = _owner(tmp)
        if host not in (None, here):
            continue
        if pid is None or not _alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    if reports.is_dir():  # folders being set up whose process died before renaming them
        for nb in reports.iterdir():
            if not nb.is_dir() or nb.name.startswith("."):
                continue
            for staging in nb.glob(f"{STAGING_PREFIX}*"):
                m = _STAGING_PID.match(staging.name)
                if staging.is_dir() and m and not _alive(int(m.group(1))):
                    shutil.rmtree(staging, ignore_errors=True)
                    removed.append(staging)
    return removed


def _headline(metrics: dict) -> tuple[str | None, list[tuple[str, str]]]:
    """A run's headline sentence and its headline metrics, formatted."""
    text = metrics.get(HEADLINE)
    names = metrics.get(HEADLINE_METRICS)
    text = text.strip() if isinstance(text, str) and text.strip() else None
    listed = [n.strip() for n in names.split(",") if n.strip()] if isinstance(names, str) else []
    return text, [(n, format_value(metrics[n]) if n in metrics else "not recorded") for n in listed]


def _row(run: Run, reports: Path) -> dict:
    m = run.manifest
    defaults = m.get("defaults", {})
    # the dataset has a column of its own; parameters at their defaults are collapsed
    params = [(k, format_literal(v), k not in defaults or defaults[k] != v) for k, v in run.parameters.items() if k != "dataset"]
    headline, headline_metrics = _headline(run.metrics)
    rel = run.run_dir.relative_to(reports).as_posix()
    err = m.get("error") or {}
    status = run.status
    return {
        "run_id": run.run_id,
        "status": status,
        "status_class": status if status in ("succeeded", "failed") else "other",
        "when": format_when(m.get("started_at")),
        "dataset": m.get("dataset"),
        "changed": [(k, v) for k, v, changed in params if changed],
        "defaults": [(k, v) for k, v, changed in params if not changed],
        "took": format_duration(m.get("duration_s")),
        "headline": headline,
        "headline_metrics": headline_metrics,
        "n_metrics": len(run.metrics),
        "error": f"{err.get('ename', 'Error')}: {err.get('evalue', '')}"[:200] if err else None,
        "href": relative_href(rel, REPORT),
        "notebook_href": relative_href(rel, m.get("notebook_file", f"{run.notebook}.ipynb")),
        "metrics_href": relative_href(rel, METRICS),
    }


def render_index(reports_dir=None) -> str:
    """The HTML of the run index."""
    from workbench import __version__

    reports = Path(reports_dir) if reports_dir else default_reports_dir()
    runs, skipped = scan_runs(reports)
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
        skipped=[(p.relative_to(reports).as_posix(), why) for p, why in skipped],
    )


def build_index(reports_dir=None) -> Path:
    """Rebuild ``reports/index.html`` from the manifests (written atomically)."""
    reports = Path(reports_dir) if reports_dir else default_reports_dir()
    reports.mkdir(parents=True, exist_ok=True)
    return write_text(reports / INDEX, render_index(reports))


def find_run(ref, reports_dir=None) -> Run:
    """A finished run from a run folder, ``NOTEBOOK/RUN_ID``, a run id (or a
    unique prefix of one), ``NOTEBOOK`` (its latest run) or ``NOTEBOOK~N``
    (the N-th run before its latest)."""
    text = str(ref)
    path = Path(text).expanduser()
    if path.is_dir() and (path / MANIFEST).is_file():
        try:
            return load_run(path)
        except ManifestError as exc:
            raise RunNotFoundError(f"{text!r} is not a usable run: {exc}") from None
    reports = Path(reports_dir) if reports_dir else default_reports_dir()
    runs, skipped = scan_runs(reports)
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
    if skipped:
        hint += f"; {len(skipped)} run folder(s) skipped for a broken manifest (see `workbench index`)"
    raise RunNotFoundError(
        f"no finished run matches {text!r} in {reports} ({hint}). Give a run folder, NOTEBOOK/RUN_ID, a run id, "
        "NOTEBOOK for its latest run or NOTEBOOK~1 for the one before."
    )


__all__ = ["Run", "build_index", "find_run", "incomplete_runs", "list_runs", "load_run", "prune_incomplete", "render_index", "scan_runs"]

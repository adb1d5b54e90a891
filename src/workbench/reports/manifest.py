"""A run folder's files and the one shape check of its manifest and metrics.

Every reader of run folders (the index, ``workbench compare``, pruning) goes
through :func:`read_run`, which raises :class:`ManifestError` naming the folder
and what is wrong when ``manifest.json`` or ``metrics.json`` is not what a run
writes. Callers report such a folder and skip it; it never stops them.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from workbench.reports.errors import ReportError

MANIFEST = "manifest.json"
METRICS = "metrics.json"
REPORT = "report.html"
KERNEL_LOG = "kernel.log"
#: a run being written (or killed on the way): ``.tmp-<run-id>``; never listed
TMP_PREFIX = ".tmp-"
#: a run folder being set up, before its manifest exists: ``.new-<pid>-<run-id>``
STAGING_PREFIX = ".new-"
MANIFEST_VERSION = 2

_NUMBER = (int, float)
#: name -> (allowed types, required)
_FIELDS: dict[str, tuple[tuple, bool]] = {
    "notebook": ((str,), True),
    "run_id": ((str,), True),
    "status": ((str,), True),
    "started_at": ((str,), True),
    "parameters": ((dict,), True),
    "manifest_version": ((int,), False),
    "notebook_file": ((str,), False),
    "notebook_path": ((str,), False),
    "title": ((str,), False),
    "batch": ((str, type(None)), False),
    "parameters_given": ((dict,), False),
    "defaults": ((dict,), False),
    "dataset": ((str, int, float, type(None)), False),
    "finished_at": ((str, type(None)), False),
    "duration_s": ((int, float, type(None)), False),
    "timings": ((dict,), False),
    "workbench_version": ((str,), False),
    "python": ((str,), False),
    "git": ((dict,), False),
    "pid": ((int, type(None)), False),
    "host": ((str, type(None)), False),
    "error": ((dict, type(None)), False),
}


class ManifestError(ReportError):
    """A run folder's manifest.json or metrics.json is missing, unreadable or of the wrong shape."""


def _type_names(types: tuple) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", dict: "a mapping", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def manifest_problems(data) -> list[str]:
    """Every way ``data`` (a parsed manifest.json) differs from what a run writes."""
    if not isinstance(data, dict):
        return [f"is {type(data).__name__} (a JSON {'list' if isinstance(data, list) else 'value'}), not a mapping"]
    problems = []
    for name, (types, required) in _FIELDS.items():
        if name not in data:
            if required:
                problems.append(f"has no `{name}`")
            continue
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, types):
            problems.append(f"`{name}` is {json.dumps(value)[:40]}, not {_type_names(types)}")
    started = data.get("started_at")
    if isinstance(started, str):
        try:
            _dt.datetime.fromisoformat(started)
        except ValueError:
            problems.append(f"`started_at` is {started[:40]!r}, not an ISO date and time")
    error = data.get("error")
    if isinstance(error, dict) and not all(isinstance(error.get(k, ""), str) for k in ("ename", "evalue", "where")):
        problems.append("`error` holds a non-text ename, evalue or where")
    return problems


def metrics_problems(data) -> list[str]:
    """Every way ``data`` (a parsed metrics.json) is not a flat mapping of names to numbers, strings or null."""
    if not isinstance(data, dict):
        return [f"is {type(data).__name__}, not a mapping of names to values"]
    bad = [k for k, v in data.items() if isinstance(v, bool) or not isinstance(v, (int, float, str, type(None)))]
    if bad:
        return [f"values must be numbers, strings or null: {', '.join(sorted(bad)[:5])}{' ...' if len(bad) > 5 else ''}"]
    return []


def _load_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no {what}") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: {what} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: {what} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except OSError as exc:
        raise ManifestError(f"{path}: {what} cannot be read ({exc.strerror})") from None


def read_manifest(run_dir) -> dict:
    """A run folder's manifest, checked; :class:`ManifestError` if it is missing or of the wrong shape."""
    path = Path(run_dir) / MANIFEST
    data = _load_json(path, MANIFEST)
    problems = manifest_problems(data)
    if problems:
        raise ManifestError(f"{path}: not a run manifest: it {'; it '.join(problems)}")
    return data


def read_run(run_dir) -> tuple[dict, dict]:
    """A run folder's manifest and metrics, both checked (a missing metrics.json is empty)."""
    manifest = read_manifest(run_dir)
    path = Path(run_dir) / METRICS
    if not path.exists():
        return manifest, {}
    metrics = _load_json(path, METRICS)
    problems = metrics_problems(metrics)
    if problems:
        raise ManifestError(f"{path}: not a run's metrics: it {'; '.join(problems)}")
    return manifest, metrics


__all__ = [
    "KERNEL_LOG", "MANIFEST", "MANIFEST_VERSION", "METRICS", "REPORT", "STAGING_PREFIX", "TMP_PREFIX",
    "ManifestError", "manifest_problems", "metrics_problems", "read_manifest", "read_run",
]

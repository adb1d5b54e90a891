"""Recording metrics from inside a report notebook.

``record("bass.p", 0.031)`` or ``record({"bass.p": 0.031, ...})`` adds flat,
dotted names to the run's ``metrics.json``. The runner tells the kernel where
that file is through the ``WORKBENCH_METRICS_PATH`` environment variable; in an
interactive session (no runner) the values are kept in memory and returned by
:func:`recorded`.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path

ENV_VAR = "WORKBENCH_METRICS_PATH"
_session: dict[str, float | int | str] = {}


def _clean(name: str, value) -> float | int | str:
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"metric name {name!r} must be a non-empty dotted name without spaces")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    if isinstance(value, str):
        return value
    raise TypeError(f"metric {name!r}: value {value!r} is not a number or a string")


def record(name_or_mapping, value=None) -> None:
    """Record one metric (``name, value``) or a mapping of them.

    Returns nothing, so a ``record(...)`` at the end of a cell adds no output
    to the report; :func:`recorded` gives everything recorded so far.
    """
    items = name_or_mapping.items() if isinstance(name_or_mapping, dict) else [(name_or_mapping, value)]
    cleaned = {n: _clean(n, v) for n, v in items}
    path = os.environ.get(ENV_VAR)
    if path:
        p = Path(path)
        current = json.loads(p.read_text()) if p.exists() else {}
        current.update(cleaned)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, indent=2, sort_keys=True))
        tmp.replace(p)
        return None
    _session.update(cleaned)
    return None


def recorded() -> dict:
    """Metrics recorded so far in this process (interactive use)."""
    path = os.environ.get(ENV_VAR)
    if path and Path(path).exists():
        return json.loads(Path(path).read_text())
    return dict(_session)


_files: dict = {}


def attach(name: str, frame) -> None:
    """Write a table beside the run's ``metrics.json`` (``name`` ends in
    ``.parquet`` or ``.csv``), atomically; in an interactive session (no
    runner) keep it in memory (:func:`attached`)."""
    from workbench.tables.export import write_table

    if not isinstance(name, str) or "/" in name or name.startswith(".") or not name.endswith((".parquet", ".csv")):
        raise ValueError(f"attach(): {name!r} must be a plain file name ending in .parquet or .csv")
    path = os.environ.get(ENV_VAR)
    if path:
        write_table(frame, Path(path).parent / name)
        return None
    _files[name] = frame
    return None


def attached() -> dict:
    """Tables attached in this process (interactive use)."""
    return dict(_files)

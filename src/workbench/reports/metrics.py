"""Recording metrics from inside a report notebook.

``record("bass.p", 0.031)`` or ``record({"bass.p": 0.031, ...})`` adds flat,
dotted names to the run's ``metrics.json``. The runner tells the kernel where
that file is through the ``WORKBENCH_METRICS_PATH`` environment variable; in an
interactive session (no runner) the values are kept in memory and returned by
:func:`recorded`.

What is recorded, so that two runs on the same data give byte-identical
``metrics.json``:

- a float is rounded to :data:`DIGITS` (6) significant digits, as ``%g``
  prints it (``-0.0`` becomes ``0.0``); noise in the last bits of a result
  (parallel sums in the engine, an optimizer's last step) stays below that;
- NaN and infinities are recorded as ``null`` (JSON has no number for them),
  shown as ``n/a`` by the run index, the report page and ``workbench compare``;
- integers and strings are recorded as they are; a bool as 0 or 1.

Two special names are the report's headline (see docs/reports.md):
``report.headline`` (one sentence) and ``report.headline_metrics``
(comma-separated names of the metrics that answer the question).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path

ENV_VAR = "WORKBENCH_METRICS_PATH"
#: significant digits kept of a float metric
DIGITS = 6
HEADLINE = "report.headline"
HEADLINE_METRICS = "report.headline_metrics"
_session: dict[str, float | int | str | None] = {}


def clean_value(name: str, value) -> float | int | str | None:
    """A metric value as it is recorded (see the module docstring); TypeError
    or ValueError naming the metric for anything else."""
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"metric name {name!r} must be a non-empty dotted name without spaces")
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v):
            return None
        return float(f"{v:.{DIGITS}g}") + 0.0  # + 0.0 turns -0.0 into 0.0
    if isinstance(value, str):
        # the answer's sentence must say something; its metrics may be none
        # (a report that had to skip its analysis answers in words only)
        if name == HEADLINE and not value.strip():
            raise ValueError(f"metric {name!r} must not be empty")
        return value
    raise TypeError(f"metric {name!r}: value {value!r} ({type(value).__name__}) is not a number or a string")


def record(name_or_mapping, value=None) -> None:
    """Record one metric (``name, value``) or a mapping of them.

    Returns nothing, so a ``record(...)`` at the end of a cell adds no output
    to the report; :func:`recorded` gives everything recorded so far.
    """
    items = name_or_mapping.items() if isinstance(name_or_mapping, dict) else [(name_or_mapping, value)]
    cleaned = {n: clean_value(n, v) for n, v in items}
    path = os.environ.get(ENV_VAR)
    if path:
        p = Path(path)
        current = json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}
        current.update(cleaned)
        tmp = p.with_name(p.name + ".part")
        tmp.write_text(dumps(current), encoding="utf-8")
        tmp.replace(p)
        return None
    _session.update(cleaned)
    return None


def dumps(metrics: dict) -> str:
    """``metrics.json``'s text: sorted keys, two-space indent, standard JSON only."""
    return json.dumps(metrics, indent=2, sort_keys=True, allow_nan=False) + "\n"


def recorded() -> dict:
    """Metrics recorded so far in this process (interactive use)."""
    path = os.environ.get(ENV_VAR)
    if path and Path(path).exists():
        return json.loads(Path(path).read_text(encoding="utf-8"))
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

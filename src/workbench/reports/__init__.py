"""Reports: papermill runs, batches, HTML rendering, recorded metrics, run index.

Inside a notebook: ``from workbench.reports import show`` and
``show(study.answer())``: displays an analysis step and records its metrics
(see :mod:`workbench.analyses`); ``record("users.total", n)`` records one
value (:mod:`workbench.reports.metrics`).

From Python: :func:`run_notebook`, :func:`run_batch`, :func:`build_index`,
:func:`compare_runs`; the command line offers the same as ``workbench run``,
``batch``, ``index`` and ``compare``. Heavier modules are imported on first use,
so ``import workbench.reports`` in a kernel stays cheap.
"""

from __future__ import annotations

from workbench.reports.markdown import escape, money, note
from workbench.reports.metrics import record, recorded
from workbench.reports.show import show

_LAZY = {
    "run_notebook": "workbench.reports.runner",
    "RunResult": "workbench.reports.runner",
    "run_batch": "workbench.reports.batch",
    "load_batch": "workbench.reports.batch",
    "build_index": "workbench.reports.index",
    "list_runs": "workbench.reports.index",
    "find_run": "workbench.reports.index",
    "compare_runs": "workbench.reports.compare",
    "declared_parameters": "workbench.reports.parameters",
    "check_notebook": "workbench.reports.notebooks",
    "render_report": "workbench.reports.html",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench.reports' has no attribute {name!r}")


__all__ = ["escape", "money", "note", "record", "recorded", "show", *_LAZY]

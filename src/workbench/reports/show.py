"""Showing an analysis step in a report: one call displays it and records
its metrics (``show(study.answer())``, ``show(study.retention())``)."""

from __future__ import annotations

from workbench.reports.metrics import attach, record


def show(item) -> None:
    """Display ``item`` (a :class:`~workbench.analyses.Section`, an
    :class:`~workbench.analyses.Answer` or any object with a rich repr),
    record what its ``to_metrics()`` gives, and write its ``files`` (tables
    such as ``customers.parquet``) into the run folder. Returns nothing, so
    the cell shows the item once."""
    from IPython.display import display

    display(item)
    metrics = item.to_metrics() if hasattr(item, "to_metrics") else {}
    if metrics:
        record(metrics)
    for name, frame in getattr(item, "files", {}).items():
        attach(name, frame)

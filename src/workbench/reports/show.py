"""Showing an analysis step in a report: one call displays it and records
its metrics (``show(study.answer())``, ``show(study.retention())``)."""

from __future__ import annotations

from workbench.reports.metrics import record


def show(item) -> None:
    """Display ``item`` (a :class:`~workbench.analyses.Section`, an
    :class:`~workbench.analyses.Answer` or any object with a rich repr) and
    record what its ``to_metrics()`` gives, if anything. Returns nothing, so
    the cell shows the item once."""
    from IPython.display import display

    display(item)
    metrics = item.to_metrics() if hasattr(item, "to_metrics") else {}
    if metrics:
        record(metrics)

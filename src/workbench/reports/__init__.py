"""Reports: papermill runs, batches, HTML rendering, recorded metrics, run index."""

from workbench.reports.metrics import record

__all__ = ["record"]

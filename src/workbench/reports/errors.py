"""Errors raised by the reports layer. All subclass
:class:`~workbench.errors.WorkbenchError`; parameter problems raise
:class:`~workbench.errors.ParameterError`."""

from __future__ import annotations

from workbench.errors import ParameterError, WorkbenchError


class ReportError(WorkbenchError):
    """Something about a report run, a batch or the run index is wrong."""


class NotebookError(ReportError):
    """A notebook breaks the report-notebook rules or cannot be found."""


class BatchConfigError(ReportError):
    """A batch config file is malformed or names something that does not exist."""


class RunNotFoundError(ReportError):
    """A run reference (path, run id, notebook name) matches no finished run."""


__all__ = ["BatchConfigError", "NotebookError", "ParameterError", "ReportError", "RunNotFoundError"]

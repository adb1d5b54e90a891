"""The workbench's exceptions and warnings: one base error, messages that say
what was wrong, where, and what to do."""

from __future__ import annotations

from dataclasses import dataclass, field


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class WorkbenchWarning(RuntimeWarning):
    """Base class of the workbench's warnings."""


class DataWarning(WorkbenchWarning):
    """A dataset is valid, but part of it is left out of the analyses (events
    after ``observation_end``) or not read at all (files the contract does not
    name). Carried on the dataset as ``notices`` too."""


class ModelError(WorkbenchError):
    """A model cannot be fitted on the data given (too little data, no
    convergence, an analysis the dataset cannot support)."""


class ParameterError(WorkbenchError):
    """A report parameter or function argument is unknown or of the wrong type."""


@dataclass(frozen=True)
class Violation:
    """One broken rule of the dataset contract. ``rows`` is 0 for a problem
    with a file or folder rather than with rows (then it is not printed)."""

    table: str
    column: str | None
    rule: str
    rows: int
    examples: list = field(default_factory=list)

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        text = f"{where}: {self.rule}"
        if self.rows:
            text += f" ({self.rows:,} row{'s' if self.rows != 1 else ''})"
        if self.examples:
            shown = "; ".join(str(e) for e in self.examples[:3])
            text += f"\n      e.g. {shown}"
        return text


class DataError(WorkbenchError):
    """A dataset breaks its contract. Carries every violation found at once,
    and ``notes``: what else the check noticed (files it did not read, ...).
    A single problem that is not about rows and not about a dataset folder
    (e.g. no such folder) is stated as it is."""

    def __init__(self, violations: list[Violation], path: str | None = None, notes=()):
        self.violations = list(violations)
        self.path = path
        self.notes = list(notes)
        if path is None and len(self.violations) == 1 and not self.violations[0].rows and not self.notes:
            super().__init__(str(self.violations[0]))
            return
        n = len(self.violations)
        where = f" {path}" if path else ""
        lines = [f"dataset{where} breaks the contract in {n} way{'s' if n != 1 else ''}:"]
        lines += [f"  - {v}" for v in self.violations]
        if self.notes:
            lines.append("Notes:")
            lines += [f"  - {note}" for note in self.notes]
        named = "the rows and files named above" if any(v.rows for v in self.violations) else "what is named above"
        lines.append(f"Fix {named} (see the dataset contract in docs/dataset-contract.md) and try again.")
        super().__init__("\n".join(lines))

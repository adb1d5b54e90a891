"""The workbench's exceptions and warnings: one base error, messages that say
what was wrong, where, and what to do."""

from __future__ import annotations

from dataclasses import dataclass, field


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class WorkbenchWarning(RuntimeWarning):
    """Base class of the workbench's warnings."""


class ModelError(WorkbenchError):
    """A model cannot be fitted on the data given (too little data, no
    convergence, an analysis the dataset cannot support)."""


class ParameterError(WorkbenchError):
    """A report parameter or function argument is unknown or of the wrong type."""


@dataclass(frozen=True)
class Violation:
    """One broken rule of the dataset contract."""

    table: str
    column: str | None
    rule: str
    rows: int
    examples: list = field(default_factory=list)

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        text = f"{where}: {self.rule} ({self.rows:,} row{'s' if self.rows != 1 else ''})"
        if self.examples:
            shown = "; ".join(str(e) for e in self.examples[:3])
            text += f"\n      e.g. {shown}"
        return text


class DataError(WorkbenchError):
    """A dataset breaks its contract. Carries every violation found at once."""

    def __init__(self, violations: list[Violation], path: str | None = None):
        self.violations = list(violations)
        self.path = path
        where = f" in {path}" if path else ""
        lines = [f"dataset{where} breaks the contract in {len(self.violations)} way(s):"]
        lines += [f"  - {v}" for v in self.violations]
        lines.append("Fix the rows named above (see the dataset contract in docs/dataset-contract.md) and try again.")
        super().__init__("\n".join(lines))

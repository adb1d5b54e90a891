"""How the recorded metrics changed between two runs (``workbench compare A B``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from workbench.reports.html import format_value
from workbench.reports.index import Run, find_run


@dataclass(frozen=True)
class Comparison:
    """Two runs side by side.

    ``table`` has one row per metric (index ``metric``) with columns ``a``,
    ``b``, ``change`` (b - a, numbers only), ``pct_change`` (relative to |a|)
    and ``status`` (``changed``, ``same``, ``added``, ``removed``). A metric
    recorded as null (not a number) shows as ``n/a``; one a run lacks as ``-``.
    ``parameters`` does the same for the parameters that differ.
    """

    a: Run
    b: Run
    table: pd.DataFrame
    parameters: pd.DataFrame

    @property
    def changed(self) -> pd.DataFrame:
        return self.table[self.table.status != "same"]

    def to_text(self, *, all_rows: bool = False) -> str:
        lines = [f"A  {self.a.ref}  ({self.a.status}, {self.a.manifest.get('started_at', '?')})",
                 f"B  {self.b.ref}  ({self.b.status}, {self.b.manifest.get('started_at', '?')})", ""]
        if len(self.parameters):
            lines.append("parameters that differ:")
            for name, row in self.parameters.iterrows():
                a = "(not set)" if row["status"] == "added" else repr(row["a"])
                b = "(not set)" if row["status"] == "removed" else repr(row["b"])
                lines.append(f"  {name}: {a} -> {b}")
        else:
            lines.append("parameters: the same")
        lines.append("")
        rows = self.table if all_rows else self.changed
        same = int((self.table.status == "same").sum())
        if not len(self.table):
            lines.append("neither run recorded metrics")
            return "\n".join(lines)
        if not len(rows):
            lines.append(f"all {same} metrics are identical")
            return "\n".join(lines)
        cells = [("metric", "A", "B", "change", "%", "")]
        for name, r in rows.iterrows():
            a, b, change, pct, status = r["a"], r["b"], r["change"], r["pct_change"], r["status"]
            cells.append((
                str(name),
                "-" if status == "added" else format_value(a),
                "-" if status == "removed" else format_value(b),
                "" if _missing(change) else _signed(change),
                "" if _missing(pct) else f"{pct:+.1f}%",
                "" if status in ("changed", "same") else status,
            ))
        widths = [max(len(c[i]) for c in cells) for i in range(6)]
        for c in cells:
            lines.append("  ".join([c[0].ljust(widths[0])] + [c[i].rjust(widths[i]) for i in range(1, 5)] + [c[5]]).rstrip())
        if not all_rows and same:
            lines.append(f"({same} unchanged metric(s) not shown; --all shows them)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _signed(v) -> str:
    text = format_value(v)
    return text if text.startswith("-") else f"+{text}"


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _diff(a: dict, b: dict) -> pd.DataFrame:
    rows = []
    for name in sorted(set(a) | set(b)):
        va, vb = a.get(name), b.get(name)
        if name not in a:
            status = "added"
        elif name not in b:
            status = "removed"
        else:
            status = "same" if va == vb else "changed"
        change = pct = None
        if status == "changed" and _number(va) and _number(vb):
            change = vb - va
            pct = 100.0 * change / abs(va) if va else None
        rows.append({"metric": name, "a": va, "b": vb, "change": change, "pct_change": pct, "status": status})
    df = pd.DataFrame(rows, columns=["metric", "a", "b", "change", "pct_change", "status"], dtype=object)  # keep ints as ints
    df["change"] = pd.to_numeric(df["change"], errors="coerce")
    df["pct_change"] = pd.to_numeric(df["pct_change"], errors="coerce")
    return df.set_index("metric")


def compare_runs(a, b, reports_dir=None) -> Comparison:
    """Compare the metrics (and parameters) of two runs, each given as
    :func:`~workbench.reports.index.find_run` accepts."""
    run_a = a if isinstance(a, Run) else find_run(a, reports_dir)
    run_b = b if isinstance(b, Run) else find_run(b, reports_dir)
    params = _diff(run_a.parameters, run_b.parameters)
    params = params[params.status != "same"][["a", "b", "status"]]
    return Comparison(run_a, run_b, _diff(run_a.metrics, run_b.metrics), params)


__all__ = ["Comparison", "compare_runs"]

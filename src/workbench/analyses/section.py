"""What an analysis step returns: a :class:`Section` (figures, display
tables, finding sentences, notes, recorded metrics and the result objects
behind them) and, once per report, an :class:`Answer` (the conclusion in
three to five sentences, shown first).

Both render themselves as one HTML block (``_repr_html_``) in JupyterLab and
in the HTML report: figures as embedded PNG, text escaped (a dataset's names
show as written, never as markup). ``to_metrics()`` gives what a report
records; :func:`workbench.reports.show` displays and records in one call.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field

import pandas as pd

#: inline styles, so a section reads the same in JupyterLab (no report CSS) and in report.html
_ANSWER_STYLE = "border:1px solid #b9d3e6;border-left:6px solid #1f5f8b;background:#f3f8fc;border-radius:6px;padding:12px 18px;margin:8px 0 18px"
_NOTE_STYLE = "border-left:4px solid #d9a400;background:#fff8e1;padding:6px 12px;margin:8px 0;font-size:0.95em"
_FINDING_STYLE = "margin:10px 0"
_TABLE_STYLE = "border-collapse:collapse;margin:6px 0 12px"


def figure_png(fig, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is left open)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _img(fig) -> str:
    data = base64.b64encode(figure_png(fig)).decode("ascii")
    alt = html.escape(_figure_title(fig) or "figure", quote=True)
    return f'<img class="wb-figure" alt="{alt}" style="max-width:100%;height:auto" src="data:image/png;base64,{data}"/>'


def _figure_title(fig) -> str:
    if getattr(fig, "_suptitle", None) is not None and fig._suptitle.get_text():
        return fig._suptitle.get_text()
    for ax in fig.axes:
        for loc in ("left", "center", "right"):
            if ax.get_title(loc=loc):
                return ax.get_title(loc=loc)
    return ""


def _table_html(frame: pd.DataFrame, title: str | None) -> str:
    head = f'<p class="wb-table-title"><strong>{html.escape(title)}</strong></p>' if title else ""
    body = frame.to_html(index=False, escape=True, border=0, classes="wb-display-table", na_rep="n/a")
    body = body.replace('<table border="0" class="dataframe wb-display-table">', f'<table class="wb-display-table" style="{_TABLE_STYLE}">')
    return head + body


@dataclass
class Section:
    """One step of a report: blocks shown in order (figures, tables,
    findings, notes), plus ``metrics`` to record, ``results`` (the model
    results behind it, by name) for an analyst who wants to go deeper, and
    ``files`` (tables for the people who act on them, e.g.
    ``customers.parquet``), which a report run writes into its folder."""

    title: str
    blocks: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # name -> DataFrame, written beside a report run by workbench.reports.show

    # ------------------------------------------------------------- building
    def figure(self, fig) -> Section:
        """Add a matplotlib figure (closed in pyplot, so it is shown once, here)."""
        import matplotlib.pyplot as plt

        plt.close(fig)
        self.blocks.append(("figure", fig))
        return self

    def table(self, frame: pd.DataFrame, title: str | None = None) -> Section:
        """Add a display table (already formatted for people: see :func:`~workbench.analyses.format.display_table`)."""
        self.blocks.append(("table", (frame, title)))
        return self

    def finding(self, text: str) -> Section:
        self.blocks.append(("finding", text))
        return self

    def note(self, text: str, metric: str | None = None) -> Section:
        """Why part of the section is skipped or what to keep in mind;
        ``metric``: also record the text under that name."""
        self.blocks.append(("note", text))
        if metric:
            self.metrics[metric] = text
        return self

    def record(self, metrics: dict) -> Section:
        self.metrics.update(metrics)
        return self

    # ------------------------------------------------------------- reading
    @property
    def findings(self) -> list[str]:
        return [b for kind, b in self.blocks if kind == "finding"]

    @property
    def notes(self) -> list[str]:
        return [b for kind, b in self.blocks if kind == "note"]

    @property
    def figures(self) -> list:
        return [b for kind, b in self.blocks if kind == "figure"]

    @property
    def tables(self) -> list[pd.DataFrame]:
        return [b[0] for kind, b in self.blocks if kind == "table"]

    def to_metrics(self) -> dict:
        return dict(self.metrics)

    def _repr_html_(self) -> str:
        parts = []
        for kind, block in self.blocks:
            if kind == "figure":
                parts.append(_img(block))
            elif kind == "table":
                parts.append(_table_html(*block))
            elif kind == "finding":
                parts.append(f'<p class="wb-finding" style="{_FINDING_STYLE}"><strong>Finding.</strong> {html.escape(block)}</p>')
            else:
                parts.append(f'<div class="wb-step-note" style="{_NOTE_STYLE}"><strong>Note.</strong> {html.escape(block)}</div>')
        return f'<div class="wb-step" data-section="{html.escape(self.title, quote=True)}">' + "".join(parts) + "</div>"

    def __repr__(self) -> str:
        lines = [f"Section: {self.title}"]
        for kind, block in self.blocks:
            if kind in ("finding", "note"):
                lines.append(f"  {kind.capitalize()}. {block}")
            elif kind == "table":
                lines.append(f"  [table{': ' + block[1] if block[1] else ''}, {len(block[0])} rows]")
            else:
                lines.append(f"  [figure: {_figure_title(block) or 'untitled'}]")
        return "\n".join(lines)


@dataclass
class Answer:
    """A report's conclusion, shown first: the ``question``, three to five
    ``sentences`` (the first is the headline the run index shows), and the
    ``metrics`` that carry the answer (recorded, and named as the run's
    headline metrics in that order)."""

    question: str
    sentences: list[str]
    metrics: dict = field(default_factory=dict)

    @property
    def headline(self) -> str:
        return self.sentences[0] if self.sentences else ""

    def to_metrics(self) -> dict:
        out = dict(self.metrics)
        if self.headline.strip():
            out["report.headline"] = self.headline
        if self.metrics:  # an answer without numbers (e.g. nothing to fit) names none
            out["report.headline_metrics"] = ",".join(self.metrics)
        return out

    def _repr_html_(self) -> str:
        body = " ".join(html.escape(s) for s in self.sentences)
        return (
            f'<div class="wb-answer" style="{_ANSWER_STYLE}">'
            f'<p class="wb-answer-question" style="margin:0 0 6px;font-weight:600">{html.escape(self.question)}</p>'
            f'<p class="wb-answer-text" style="margin:0">{body}</p></div>'
        )

    def __repr__(self) -> str:
        return f"Answer: {self.question}\n  " + "\n  ".join(self.sentences)


__all__ = ["Answer", "Section", "figure_png"]

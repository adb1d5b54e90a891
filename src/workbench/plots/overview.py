"""Figures for the data overview report: KPI trends, cohort retention,
distributions of activity and purchases, users by category.

Every function takes a small, already aggregated pandas table (from
``workbench.tables`` or an Ibis aggregation) and returns a matplotlib
``Figure``; nothing here computes statistics beyond arranging the table for
the plot. Text that comes from a dataset (segment names, channels) is
shown literally: ``$`` never switches matplotlib into math mode.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from workbench.plots import style
from workbench.plots.style import literal

KPI_LABELS = {
    "active_users": "Active users",
    "new_users": "New users (signups)",
    "customers": "Paying customers",
    "first_time_customers": "First-time customers",
    "revenue": "Revenue",
    "purchases": "Purchases",
}


def kpi_trends(table: pd.DataFrame, *, period: str = "month", columns=("active_users", "new_users", "customers", "revenue"),
               currency: str | None = None) -> Figure:
    """Small multiples: one line per KPI over ``table.period``. With a
    ``complete`` column (``workbench.tables.kpis``), periods cut short by the
    observation end are drawn dashed with hollow markers, so their drop is not
    read as a decline."""
    cols = [c for c in columns if c in table.columns]
    if not cols:
        raise ValueError(f"kpi_trends: none of {list(columns)} in the table (columns: {list(table.columns)})")
    df = table.copy()
    df["period"] = pd.to_datetime(df["period"])
    df = df.sort_values("period")
    style.apply()
    partial = ~df["complete"].astype(bool) if "complete" in df.columns else pd.Series(False, index=df.index)
    ncols = 2 if len(cols) > 1 else 1
    nrows = int(np.ceil(len(cols) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(10, 2.9 * nrows), sharex=True, squeeze=False)
    colors = style.PALETTE[: len(cols)]
    marker = "o" if len(df) <= 40 else None
    for i, (ax, col, color) in enumerate(zip(axes.flat, cols, colors)):
        sns.lineplot(data=df[~partial], x="period", y=col, ax=ax, color=color, linewidth=2, marker=marker, markersize=4)
        if partial.any():
            # from the last complete period on, dashed, hollow markers
            start = max(int(np.flatnonzero(partial.to_numpy())[0]) - 1, 0)
            tail = df.iloc[start:]
            ax.plot(tail["period"], tail[col], color=color, linewidth=1.5, linestyle="--")
            ax.plot(df.loc[partial, "period"], df.loc[partial, col], linestyle="none", marker="o", markersize=5,
                    markerfacecolor="white", markeredgecolor=color, label="cut short by the observation end")
            if i == 0:
                ax.legend(loc="best", fontsize=8, frameon=False)
        label = KPI_LABELS.get(col, col.replace("_", " ").capitalize())
        if col == "revenue" and currency:
            label = f"{label} ({literal(currency)})"
        ax.set_title(f"{label} per {period}")
        ax.set_xlabel("")
        ax.set_ylabel("")
        style.count_axis(ax, integer=col != "revenue")
        ax.set_ylim(bottom=0)
    for ax in list(axes.flat)[len(cols):]:
        ax.set_visible(False)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def retention_heatmap(table: pd.DataFrame, *, period: str = "month", max_cohorts: int = 12, max_periods: int = 12) -> Figure:
    """Heatmap of ``share`` by signup ``cohort`` (rows, the latest
    ``max_cohorts``) and ``period_index`` (columns, up to ``max_periods``)."""
    style.apply()
    grid = table.pivot(index="cohort", columns="period_index", values="share").sort_index()
    grid = grid.iloc[-max_cohorts:, : max_periods + 1]
    sizes = table.drop_duplicates("cohort").set_index("cohort")["cohort_size"].reindex(grid.index)
    fmt = {"day": "%Y-%m-%d", "week": "%Y-%m-%d", "month": "%Y-%m"}.get(period, "%Y-%m-%d")
    labels = [f"{pd.Timestamp(c).strftime(fmt)}  (n={int(n):,})" for c, n in zip(grid.index, sizes)]
    height = max(3.0, 0.36 * len(grid) + 1.4)
    fig, ax = plt.subplots(figsize=(10, height))
    annotate = grid.shape[1] <= 16 and len(grid) <= 24
    sns.heatmap(grid * 100, ax=ax, cmap="YlGnBu", vmin=0, vmax=100, annot=annotate, fmt=".0f",
                annot_kws={"fontsize": 8}, cbar_kws={"label": "% of cohort active", "format": PercentFormatter(decimals=0)},
                linewidths=0.5, linecolor="white", mask=grid.isna())
    ax.set_yticks(np.arange(len(grid)) + 0.5, labels, rotation=0)
    ax.set_xlabel(f"{period}s since signup ({period} 0 = the signup {period})")
    ax.set_ylabel("signup cohort")
    ax.set_title(f"Share of each signup cohort active, by {period}s since signup")
    fig.tight_layout()
    return fig


def count_distribution(table: pd.DataFrame, *, value: str, weight: str, xlabel: str, title: str, color_index: int = 0) -> Figure:
    """A histogram of a per-user count from a counts-of-counts table
    (``value`` = the count, ``weight`` = how many users have it): one bar per
    count up to 30, else log-spaced bins on a log axis."""
    style.apply()
    df = table[table[value] > 0]
    fig, ax = plt.subplots()
    color = style.PALETTE[color_index]
    if df.empty:
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    top = float(df[value].max())
    if top <= 30:  # one bar per count
        ax.bar(df[value], df[weight], width=0.8, color=color)
        ax.set_xticks(np.arange(1, int(top) + 1, max(1, int(np.ceil(top / 15)))))
    else:  # log-spaced bins whose edges fall between whole numbers
        edges = np.unique(np.round(np.geomspace(1, top + 1, 32))) - 0.5
        ax.hist(df[value], bins=edges, weights=df[weight], color=color, edgecolor="white", linewidth=0.6)
        ax.set_xscale("log")
        style.count_axis(ax, "x", integer=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("users")
    style.count_axis(ax)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def binned_distribution(table: pd.DataFrame, *, low: str, high: str, weight: str, xlabel: str, title: str,
                                            ylabel: str | None = None, log: bool = True, color_index: int = 2) -> Figure:
    """A histogram from pre-binned counts: bins ``[low, high)`` with ``weight`` rows each."""
    style.apply()
    df = table.sort_values(low)
    fig, ax = plt.subplots()
    color = style.PALETTE[color_index]
    if df.empty:
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    ax.bar(df[low], df[weight], width=(df[high] - df[low]), align="edge", color=color, edgecolor="white", linewidth=0.6)
    if log:
        ax.set_xscale("log")
        style.count_axis(ax, "x", integer=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or weight.replace("_", " "))
    style.count_axis(ax)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def category_bars(table: pd.DataFrame, *, category: str, count: str = "users", title: str, by: str | None = None) -> Figure:
    """Horizontal bars of ``count`` per ``category`` (optionally split by ``by``),
    with the labels shown literally."""
    style.apply()
    df = table.copy()
    df[category] = df[category].fillna("(none)").map(literal)
    if by is not None:
        df[by] = df[by].fillna("(none)").map(literal)
    order = df.groupby(category)[count].sum().sort_values(ascending=False).index
    fig, ax = plt.subplots(figsize=(9.5, max(2.4, 0.45 * len(order) + 1.2)))
    hues = sorted(df[by].unique()) if by is not None else None
    sns.barplot(data=df, y=category, x=count, hue=by, order=order, ax=ax, orient="h", hue_order=hues,
                palette=style.colors(hues) if by is not None else None,
                color=None if by else style.color(None))
    ax.set_ylabel("")
    ax.set_xlabel(count)
    style.count_axis(ax, "x")
    ax.set_title(title)
    if by is not None:
        ax.legend(title=literal(by), frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig




def reported_kpis(table: pd.DataFrame, *, columns=("users", "customers", "revenue"), currency: str | None = None) -> Figure:
    """Reported KPI series (the dataset's ``kpis`` table): one panel per
    column, one line per ``unit`` when there is a unit column."""
    cols = [c for c in columns if c in table.columns and table[c].notna().any()]
    if not cols:
        raise ValueError(f"reported_kpis: none of {list(columns)} in the table (columns: {list(table.columns)})")
    style.apply()
    df = table.copy()
    df["period"] = pd.to_datetime(df["period"])
    hue = "unit" if "unit" in df.columns and df["unit"].notna().any() else None
    if hue:
        df["unit"] = df["unit"].fillna("(none)").map(literal)
    fig, axes = plt.subplots(1, len(cols), figsize=(min(5.0 * len(cols), 15), 3.6), squeeze=False)
    for i, (ax, col) in enumerate(zip(axes.flat, cols)):
        sns.lineplot(data=df, x="period", y=col, hue=hue, ax=ax, linewidth=1.8, legend=(i == len(cols) - 1) and bool(hue))
        label = col.replace("_", " ").capitalize()
        if col == "revenue" and currency:
            label = f"{label} ({literal(currency)})"
        ax.set_title(label)
        ax.set_xlabel("")
        ax.set_ylabel("")
        style.count_axis(ax, integer=False)
        ax.set_ylim(bottom=0)
        ax.tick_params(axis="x", labelrotation=30)
    if hue:
        axes.flat[len(cols) - 1].legend(title=None, frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


__all__ = ["binned_distribution", "category_bars", "count_distribution", "kpi_trends", "reported_kpis", "retention_heatmap"]

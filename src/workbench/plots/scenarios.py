"""Figures for the scenario planner: strategies' revenue with bands and the crossover."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.models.scenarios import ComparisonResult, ScenarioResult
from workbench.plots import style
from workbench.plots.growth import date_axis


def plot_scenarios(result, *, cumulative: bool = False, ax=None, title: str | None = None, currency: str | None = None):
    """Revenue per period (or cumulative) of each strategy with its parameter
    band; the start of the forecast and the crossover(s) of the first two
    strategies are marked. Accepts a ComparisonResult or one ScenarioResult.
    Returns the Axes."""
    if isinstance(result, ScenarioResult):
        scenarios, crossings = {result.name: result}, ()
    elif isinstance(result, ComparisonResult):
        scenarios = result.scenarios
        crossings = result.cumulative_crossovers if cumulative else result.crossovers
    else:
        raise ParameterError(f"plot_scenarios: give a ComparisonResult or ScenarioResult, got {type(result).__name__}")
    style.apply()
    if ax is None:
        _, ax = plt.subplots(figsize=(9.5, 4.5))
    col = "cumulative_revenue" if cumulative else "revenue"
    pal = style.colors(scenarios)
    table = None
    for color, (name, sc) in zip(pal, scenarios.items()):
        table = sc.table
        x = table["period"]
        ax.plot(x, table[col], color=color, lw=2, label=name)
        ax.fill_between(x, table[f"{col}_low"], table[f"{col}_high"], color=color, alpha=0.2, lw=0)
    fut = table["forecast"].to_numpy()
    if fut.any() and not fut.all():
        ax.axvline(table["period"].iloc[int(np.argmax(fut))], color="0.6", ls=":", lw=1)
        ax.annotate(
            "forecast",
            xy=(table["period"].iloc[int(np.argmax(fut))], ax.get_ylim()[1]),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=10,
            color=style.MUTED,
        )
    for t in crossings:
        row = table.loc[table["t"] == t].iloc[0]
        ax.axvline(row["period"], color="black", lw=1, ls="--")
        when = f"{row['period']:%d %b %Y}" if isinstance(row["period"], pd.Timestamp) else f"period {t}"
        ax.annotate(f"crossover: {when}", xy=(row["period"], row[col]), xytext=(6, 10), textcoords="offset points", fontsize=10)
    if isinstance(result, ComparisonResult) and not crossings:
        ax.annotate(
            f"no crossover: {result.cumulative_leader_at_end if cumulative else result.leader_at_end} leads throughout",
            xy=(0.02, 0.95),
            xycoords="axes fraction",
            fontsize=10,
            va="top",
        )
    ax.set_ylabel("cumulative revenue" if cumulative else "revenue per period")
    style.money_axis(ax, currency)
    if pd.api.types.is_datetime64_any_dtype(table["period"]):
        date_axis(ax)
        ax.set_xlabel("date")
    else:
        ax.set_xlabel("period")
    ax.set_ylim(bottom=0)
    ax.set_title(title or ("Cumulative revenue by strategy" if cumulative else "Revenue per period by strategy"))
    ax.legend(loc="upper left" if cumulative else "upper right")
    return ax


__all__ = ["plot_scenarios"]

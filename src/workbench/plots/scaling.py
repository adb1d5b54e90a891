"""Figures for scaling laws: revenue against users on log-log axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import LogLocator, NullFormatter

from workbench.errors import ParameterError
from workbench.models.scaling import LAW_LABELS, ScalingResult
from workbench.plots import style

#: each law keeps its colour in every figure (plots.style roles)
LAW_COLORS = {"linear": "linear", "odlyzko": "n log n", "metcalfe": "Metcalfe", "power": "power law"}


def plot_scaling(result: ScalingResult, *, ax=None, laws=None, title: str | None = None):
    """Revenue against users on log-log axes with each law's fitted line.

    With several units the points are shifted to the average unit (by the
    power law's unit effects) so that one line per law fits them all; the
    y axis says so. Held-out periods are hollow markers. The best law is drawn
    thickest. Returns the Axes."""
    if not isinstance(result, ScalingResult):
        raise ParameterError(f"plot_scaling: give a ScalingResult (from fit_scaling), got {type(result).__name__}")
    laws = list(result.laws.index if laws is None else laws)
    style.apply()
    if ax is None:
        _, ax = plt.subplots(figsize=(9.5, 5.5))
    d = result.data
    y = d["revenue"].to_numpy(dtype=float)
    panel = result.n_units > 1
    if panel and "power" in result.unit_effects.columns:
        fe = result.unit_effects["power"]
        y = y * np.exp(fe.mean() - d["unit"].map(fe).to_numpy(dtype=float))
    units = sorted(d["unit"].unique())
    pal = [style.MUTED] if len(units) <= 1 else style.colors(units)
    for i, u in enumerate(units):
        m = (d["unit"] == u).to_numpy()
        hold = d["holdout"].to_numpy(dtype=bool) & m
        fit = m & ~hold
        lab = style.literal(u) if panel else "observed"
        ax.scatter(d["users"].to_numpy()[fit], y[fit], s=14, color=pal[i], alpha=0.8, label=lab)
        if hold.any():
            ax.scatter(d["users"].to_numpy()[hold], y[hold], s=18, facecolors="none", edgecolors=pal[i], label=None if panel else "held out")
    grid = np.geomspace(d["users"].min(), d["users"].max(), 100)
    line_colors = [style.color(LAW_COLORS.get(law, law), i) for i, law in enumerate(laws)]
    for c, law in zip(line_colors, laws):
        best = law == result.best_law
        ax.plot(
            grid,
            result.predict(grid, law=law),
            color=c,
            lw=2.6 if best else 1.2,
            ls="-" if best else "--",
            label=LAW_LABELS.get(law, law) + (" (best)" if best else ""),
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("users")
    ax.set_ylabel("revenue, adjusted to the average unit" if panel else "revenue")
    for axis in (ax.xaxis, ax.yaxis):  # a few plain labels, never overlapping 10^n
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=8))
        axis.set_minor_formatter(NullFormatter())
    style.count_axis(ax, "x", integer=False)
    style.count_axis(ax, "y", integer=False)
    ax.tick_params(axis="x", labelrotation=0)
    lo, hi = result.exponent_ci
    ax.set_title(
        title
        or f"Revenue against users, log scales: β = {result.exponent:.2f} ({lo:.2f} to {hi:.2f}); best: {LAW_LABELS.get(result.best_law, result.best_law)}"
    )
    ax.legend(ncol=2, loc="upper left")
    return ax


__all__ = ["plot_scaling"]

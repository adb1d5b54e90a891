"""Figures for scaling laws: revenue against users on log-log axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from workbench.errors import ParameterError
from workbench.models.scaling import LAW_LABELS, ScalingResult


def plot_scaling(result: ScalingResult, *, ax=None, laws=None, title: str | None = None):
    """Revenue against users on log-log axes with each law's fitted line.

    With several units the points are shifted to the average unit (by the
    power law's unit effects) so that one line per law fits them all; the
    y axis says so. Held-out periods are hollow markers. The best law is drawn
    thickest. Returns the Axes."""
    if not isinstance(result, ScalingResult):
        raise ParameterError(f"plot_scaling: give a ScalingResult (from fit_scaling), got {type(result).__name__}")
    laws = list(result.laws.index if laws is None else laws)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 5))
    d = result.data
    y = d["revenue"].to_numpy(dtype=float)
    panel = result.n_units > 1
    if panel and "power" in result.unit_effects.columns:
        fe = result.unit_effects["power"]
        y = y * np.exp(fe.mean() - d["unit"].map(fe).to_numpy(dtype=float))
    units = sorted(d["unit"].unique())
    pal = sns.color_palette("muted", max(len(units), 1))
    for i, u in enumerate(units):
        m = (d["unit"] == u).to_numpy()
        hold = d["holdout"].to_numpy(dtype=bool) & m
        fit = m & ~hold
        lab = u if panel else "observed"
        ax.scatter(d["users"].to_numpy()[fit], y[fit], s=14, color=pal[i], alpha=0.8, label=lab)
        if hold.any():
            ax.scatter(d["users"].to_numpy()[hold], y[hold], s=18, facecolors="none", edgecolors=pal[i], label=None if panel else "held out")
    grid = np.geomspace(d["users"].min(), d["users"].max(), 100)
    line_colors = sns.color_palette("dark", len(laws))
    for c, law in zip(line_colors, laws):
        best = law == result.best_law
        ax.plot(grid, result.predict(grid, law=law), color=c, lw=2.6 if best else 1.2, ls="-" if best else "--", label=LAW_LABELS.get(law, law) + (" (best)" if best else ""))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("users")
    ax.set_ylabel("revenue, adjusted to the average unit" if panel else "revenue")
    lo, hi = result.exponent_ci
    ax.set_title(title or f"Revenue ~ users^β: β = {result.exponent:.2f} ({lo:.2f}-{hi:.2f}); best: {result.best_law}")
    ax.legend(fontsize=8, frameon=False, ncol=2)
    return ax


__all__ = ["plot_scaling"]

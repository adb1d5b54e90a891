"""Figures for customer lifetime value: holdout validation, cumulative
tracking, frequency/recency heatmaps, the CLV distribution, covariate rate
ratios and sBG retention curves. Each function takes results or tables, draws on ``ax`` (a new figure
when None) and returns the Axes (or Figure for several panels); none fits.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from workbench.errors import ParameterError
from workbench.plots import style

_UNIT_LABEL = {"week": "weeks", "day": "days", None: "time units"}


def _axes(ax, figsize=(9.5, 4.2)):
    style.apply()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_holdout(comparisons, *, ax=None):
    """Actual versus expected holdout purchases per customer, by calibration frequency.

    ``comparisons``: one :class:`~workbench.models.clv.HoldoutComparison` or a list of them
    (one per model); the actual values are taken from the first."""
    if not isinstance(comparisons, (list, tuple)):
        comparisons = [comparisons]
    if not comparisons:
        raise ParameterError("plot_holdout: give at least one HoldoutComparison")
    ax = _axes(ax)
    first = comparisons[0].table
    x = np.arange(len(first))
    ax.plot(x, first["actual"], marker="o", color=style.color("actual"), lw=2, label="actual")
    for i, comp in enumerate(comparisons):
        ax.plot(x, comp.table["expected"].to_numpy(), marker="s", ls="--", color=style.color(comp.model, i), label=f"{comp.model} expected")
    ax.set_xticks(x, first.index)
    ax.set_xlabel("repeat purchases in calibration")
    unit = _UNIT_LABEL.get(comparisons[0].time_unit, comparisons[0].time_unit)
    ax.set_ylabel(f"purchases per customer in the {comparisons[0].duration:g}-{unit.rstrip('s')} holdout")
    ax.set_title("Holdout: actual vs expected purchases by calibration frequency")
    ax.set_ylim(bottom=0)
    ax.legend()
    return ax


def plot_tracking(tracking: pd.DataFrame, *, calibration_end: float | None = None, time_unit: str | None = "week", cumulative: bool = True, ax=None):
    """Cumulative (or per-period) repeat purchases over calendar time, actual and expected.

    ``tracking``: columns ``time``, ``actual`` and one or more ``expected_<model>`` columns
    (per-period counts; cumulated here when ``cumulative``). ``calibration_end`` (same clock as
    ``time``) draws the line between calibration and holdout."""
    if "time" not in tracking.columns or "actual" not in tracking.columns:
        raise ParameterError("plot_tracking: the table needs columns time, actual and expected_<model>")
    ax = _axes(ax)
    t = tracking["time"].to_numpy()
    series = {"actual": tracking["actual"].to_numpy(dtype=float)}
    series.update({c.removeprefix("expected_"): tracking[c].to_numpy(dtype=float) for c in tracking.columns if c.startswith("expected_")})
    for i, (name, y) in enumerate(series.items()):
        y = np.cumsum(y) if cumulative else y
        if name == "actual":
            ax.plot(t, y, color=style.color("actual"), lw=2, label="actual")
        else:
            ax.plot(t, y, ls="--", color=style.color(name, i), lw=1.6, label=f"{name} expected")
    if calibration_end is not None:
        ax.axvline(calibration_end, color=style.MUTED, ls=":", lw=1)
        ax.annotate("end of calibration", (calibration_end, ax.get_ylim()[1]), ha="right", va="top", fontsize=10, color=style.MUTED, rotation=90)
    ax.set_xlabel(f"{_UNIT_LABEL.get(time_unit, time_unit)} since the first acquisition")
    ax.set_ylabel("cumulative repeat purchases" if cumulative else "repeat purchases per period")
    ax.set_title("Tracking: " + ("cumulative " if cumulative else "") + "repeat purchases, actual vs expected")
    style.count_axis(ax)
    ax.legend()
    return ax


def plot_heatmap(grid: pd.DataFrame, *, value: str = "expected_purchases", ax=None, title: str | None = None):
    """A frequency x recency heatmap of ``value`` (``expected_purchases`` or ``probability_alive``)
    from a result's ``expected_purchases_grid(...)`` table."""
    if value not in grid.columns:
        raise ParameterError(f"plot_heatmap: value {value!r} is not a column of the grid ({', '.join(grid.columns)})")
    ax = _axes(ax, figsize=(7, 5))
    pivot = grid.pivot_table(index="frequency", columns="recency", values=value).sort_index(ascending=False)
    cmap = "viridis" if value == "expected_purchases" else "magma"
    sns.heatmap(pivot, ax=ax, cmap=cmap, vmin=0, vmax=1 if value == "probability_alive" else None, cbar_kws={"label": value.replace("_", " ")})
    step = max(1, pivot.shape[1] // 8)
    ax.set_xticks(np.arange(0, pivot.shape[1], step) + 0.5, [f"{c:.0f}" for c in pivot.columns[::step]], rotation=0)
    ax.set_xlabel("recency (time of last repeat purchase)")
    ax.set_ylabel("frequency (repeat purchases)")
    ax.set_title(title or value.replace("_", " ").capitalize())
    return ax


def plot_clv_distribution(clv, *, ax=None, clip_quantile: float = 0.99, currency: str | None = None):
    """Histogram of customer lifetime values (weighted by customer counts), with the mean marked."""
    ax = _axes(ax)
    c = clv.customers
    order = np.argsort(c["clv"].to_numpy())
    cum = np.cumsum(c["n"].to_numpy()[order])
    hi = float(c["clv"].to_numpy()[order][np.searchsorted(cum, clip_quantile * cum[-1])]) if len(c) else 1.0
    values = c["clv"].clip(upper=hi)
    sns.histplot(x=values, weights=c["n"], bins=40, ax=ax, color=style.color(clv.model))
    ax.axvline(clv.mean_clv, color=style.INK, ls="--", lw=1)
    ax.annotate(f"mean {clv.mean_clv:,.2f}", (clv.mean_clv, ax.get_ylim()[1] * 0.95), ha="left", fontsize=10)
    ax.set_xlabel(f"CLV over {clv.horizon:g} {clv.time_unit}s (top {1 - clip_quantile:.0%} clipped)")
    style.money_axis(ax, currency, axis="x")
    ax.set_ylabel("customers")
    style.count_axis(ax)
    ax.set_title(f"Customer lifetime value ({clv.model} with Gamma-Gamma)")
    return ax


def plot_retention(sbg, *, periods: int | None = None, axes=None):
    """sBG fit: survival and retention per period, observed (dots) and fitted/projected (lines)."""
    periods = periods or max(len(c) for c in sbg.cohorts) - 1 + 8
    proj = sbg.projection(periods=periods)
    style.apply()
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    else:
        fig = axes[0].figure
    last_obs = max(len(c) for c in sbg.cohorts) - 1
    for ax, fitted, observed, label in (
        (axes[0], "survival", "observed_survival", "share still subscribed"),
        (axes[1], "retention", "observed_retention", "renewal rate among survivors"),
    ):
        ax.plot(proj["period"], proj[fitted], color=style.color("sBG"), label="sBG fit / projection")
        ax.scatter(proj["period"], proj[observed], color=style.color("observed"), zorder=3, s=18, label="observed")
        ax.axvline(last_obs, color=style.MUTED, ls=":", lw=1)
        ax.set_xlabel("period since acquisition")
        ax.set_ylabel(label)
        style.percent_axis(ax)
        ax.set_ylim(0, 1.02)
        ax.legend()
    axes[0].set_title("Survival")
    axes[1].set_title("Retention")
    return fig


def plot_rate_ratios(result, *, ax=None):
    """Covariate effects of a purchase model fitted with covariates: each ratio ``exp(gamma)`` with
    its interval, on a log axis with the no-effect line at 1 (one row per parameter and term)."""
    coef = getattr(result, "coefficients", None)
    if coef is None:
        raise ParameterError("plot_rate_ratios: the model was fitted without covariates; fit it with covariates=(...)")
    ax = _axes(ax, figsize=(9.5, 0.5 * len(coef) + 1.8))
    names = {"alpha": "purchase rate", "beta": "drop-out rate", "a": "drop-out a", "b": "drop-out b"}
    labels = [style.literal(f"{'co-creators' if term == 'exposed=1' else term}: {names.get(param, param)}") for param, term in coef.index]
    y = np.arange(len(coef))[::-1]
    ratio = coef["ratio"].to_numpy()
    err = np.vstack([ratio - coef["ratio_ci_low"].to_numpy(), coef["ratio_ci_high"].to_numpy() - ratio])
    ax.errorbar(ratio, y, xerr=err, fmt="o", color=style.color(result.LABEL), capsize=3)
    style.ratio_axis(ax, "x")
    ax.set_yticks(y, labels)
    ax.set_xlabel(f"ratio to the reference level ({result.level:.0%} interval)")
    ref = ", ".join(f"{k} = {v}" for k, v in result.covariates.reference.items())
    ax.set_title(f"{result.LABEL}: covariate effects (reference {style.literal(ref)})")
    return ax

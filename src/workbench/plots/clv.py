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

_UNIT_LABEL = {"week": "weeks", "day": "days", None: "time units"}


def _axes(ax, figsize=(7, 4)):
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
    ax.plot(x, first["actual"], marker="o", color="black", lw=2, label="actual")
    palette = sns.color_palette("deep", len(comparisons))
    for comp, color in zip(comparisons, palette):
        ax.plot(x, comp.table["expected"].to_numpy(), marker="s", ls="--", color=color, label=f"{comp.model} expected")
    ax.set_xticks(x, first.index)
    ax.set_xlabel("repeat purchases in calibration")
    unit = _UNIT_LABEL.get(comparisons[0].time_unit, comparisons[0].time_unit)
    ax.set_ylabel(f"purchases per customer in the {comparisons[0].duration:g}-{unit.rstrip('s')} holdout")
    ax.set_title("Holdout: actual vs expected purchases by calibration frequency")
    ax.legend(frameon=False)
    sns.despine(ax=ax)
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
    palette = sns.color_palette("deep", len(series))
    for (name, y), color in zip(series.items(), palette):
        y = np.cumsum(y) if cumulative else y
        if name == "actual":
            ax.plot(t, y, color="black", lw=2, label="actual")
        else:
            ax.plot(t, y, ls="--", color=color, lw=1.5, label=f"{name} expected")
    if calibration_end is not None:
        ax.axvline(calibration_end, color="grey", ls=":", lw=1)
        ax.annotate("end of calibration", (calibration_end, ax.get_ylim()[1]), ha="right", va="top", fontsize=8, color="grey", rotation=90)
    ax.set_xlabel(f"{_UNIT_LABEL.get(time_unit, time_unit)} since the first acquisition")
    ax.set_ylabel("cumulative repeat purchases" if cumulative else "repeat purchases per period")
    ax.set_title("Tracking: " + ("cumulative " if cumulative else "") + "repeat purchases, actual vs expected")
    ax.legend(frameon=False)
    sns.despine(ax=ax)
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


def plot_clv_distribution(clv, *, ax=None, clip_quantile: float = 0.99):
    """Histogram of customer lifetime values (weighted by customer counts), with the mean marked."""
    ax = _axes(ax)
    c = clv.customers
    order = np.argsort(c["clv"].to_numpy())
    cum = np.cumsum(c["n"].to_numpy()[order])
    hi = float(c["clv"].to_numpy()[order][np.searchsorted(cum, clip_quantile * cum[-1])]) if len(c) else 1.0
    values = c["clv"].clip(upper=hi)
    sns.histplot(x=values, weights=c["n"], bins=40, ax=ax, color=sns.color_palette("deep")[0])
    ax.axvline(clv.mean_clv, color="black", ls="--", lw=1)
    ax.annotate(f"mean {clv.mean_clv:,.2f}", (clv.mean_clv, ax.get_ylim()[1] * 0.95), ha="left", fontsize=9)
    ax.set_xlabel(f"CLV over {clv.horizon:g} {clv.time_unit}s (top {1 - clip_quantile:.0%} clipped)")
    ax.set_ylabel("customers")
    ax.set_title("Customer lifetime value")
    sns.despine(ax=ax)
    return ax


def plot_retention(sbg, *, periods: int | None = None, axes=None):
    """sBG fit: survival and retention per period, observed (dots) and fitted/projected (lines)."""
    periods = periods or max(len(c) for c in sbg.cohorts) - 1 + 8
    proj = sbg.projection(periods=periods)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    else:
        fig = axes[0].figure
    last_obs = max(len(c) for c in sbg.cohorts) - 1
    for ax, fitted, observed, label in ((axes[0], "survival", "observed_survival", "share still subscribed"), (axes[1], "retention", "observed_retention", "renewal rate among survivors")):
        ax.plot(proj["period"], proj[fitted], color=sns.color_palette("deep")[0], label="sBG fit / projection")
        ax.scatter(proj["period"], proj[observed], color="black", zorder=3, s=18, label="observed")
        ax.axvline(last_obs, color="grey", ls=":", lw=1)
        ax.set_xlabel("period since acquisition")
        ax.set_ylabel(label)
        ax.legend(frameon=False)
        sns.despine(ax=ax)
    axes[0].set_title("Survival")
    axes[1].set_title("Retention")
    return fig


def plot_rate_ratios(result, *, ax=None):
    """Covariate effects of a purchase model fitted with covariates: each ratio ``exp(gamma)`` with
    its interval, on a log axis with the no-effect line at 1 (one row per parameter and term)."""
    coef = getattr(result, "coefficients", None)
    if coef is None:
        raise ParameterError("plot_rate_ratios: the model was fitted without covariates; fit it with covariates=(...)")
    ax = _axes(ax, figsize=(7, 0.5 * len(coef) + 1.5))
    labels = [f"{term}: {param}" for param, term in coef.index]
    y = np.arange(len(coef))[::-1]
    ratio = coef["ratio"].to_numpy()
    err = np.vstack([ratio - coef["ratio_ci_low"].to_numpy(), coef["ratio_ci_high"].to_numpy() - ratio])
    ax.errorbar(ratio, y, xerr=err, fmt="o", color=sns.color_palette("deep")[0], capsize=3)
    ax.axvline(1.0, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, labels)
    ax.set_xlabel(f"ratio to the reference level ({result.level:.0%} interval)")
    ref = ", ".join(f"{k} = {v}" for k, v in result.covariates.reference.items())
    ax.set_title(f"{result.LABEL}: covariate effects (reference {ref})")
    sns.despine(ax=ax)
    return ax

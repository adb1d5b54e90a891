"""Figures for conversion: cumulative conversion curves, hazard ratios, ARPU/ARPPU."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from workbench.errors import ParameterError
from workbench.models.conversion import ConversionCurveResult, ConversionHazardResult, MonetizationResult
from workbench.plots import style


def plot_conversion_curve(result: ConversionCurveResult, *, ax=None, groups=None, title: str | None = None):
    """Share of users converted by each day since signup (Kaplan-Meier, with
    pointwise bands), overall and per group; the horizon is marked. Returns the Axes."""
    if not isinstance(result, ConversionCurveResult):
        raise ParameterError(f"plot_conversion_curve: give a ConversionCurveResult, got {type(result).__name__}")
    style.apply()
    if ax is None:
        _, ax = plt.subplots(figsize=(9.5, 4.5))
    c = result.curve
    names = list(result.shares.index) if groups is None else ["all", *groups]
    for color, g in zip(style.colors(names), names):
        d = c[c["group"] == g]
        if d.empty:
            continue
        label = "all users" if g == "all" else f"{result.by} = {style.literal(g)}"
        ax.step(d["day"], d["share"], where="post", color="black" if g == "all" else color, lw=2 if g == "all" else 1.3, label=label)
        ax.fill_between(d["day"], d["ci_low"], d["ci_high"], step="post", color="black" if g == "all" else color, alpha=0.15, lw=0)
    h = result.horizon_days
    ax.axvline(h, color="0.5", ls=":", lw=1)
    ax.annotate(f"{result.share:.1%} by day {h:g}", xy=(h, result.share), xytext=(-8, 8), textcoords="offset points", ha="right", fontsize=10)
    ax.set_xlabel("days since signup")
    ax.set_ylabel("share converted to customer")
    style.percent_axis(ax)
    ax.set_ylim(bottom=0)
    ax.set_title(title or "Users who have become customers (Kaplan-Meier, censoring handled)")
    ax.legend(loc="lower right")
    return ax


def plot_hazard_ratios(result: ConversionHazardResult, *, ax=None, title: str | None = None):
    """Forest plot of conversion hazard ratios with intervals (log scale). Returns the Axes."""
    if not isinstance(result, ConversionHazardResult):
        raise ParameterError(f"plot_hazard_ratios: give a ConversionHazardResult, got {type(result).__name__}")
    style.apply()
    s = result.summary()
    if ax is None:
        _, ax = plt.subplots(figsize=(9.5, 0.6 * len(s) + 1.8))
    y = np.arange(len(s))[::-1]
    ax.errorbar(s["estimate"], y, xerr=[s["estimate"] - s["ci_low"], s["ci_high"] - s["estimate"]], fmt="o", color=style.INK, capsize=3)
    ax.axvline(1.0, color=style.MUTED, ls="--", lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels([style.literal(style.term_label(t)) for t in s.index])
    ax.set_xscale("log")
    lo, hi = float(min(s["ci_low"].min(), 1.0)), float(max(s["ci_high"].max(), 1.0))
    ticks = [v for v in (0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 10, 20) if lo / 1.3 <= v <= hi * 1.3]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("hazard ratio of conversion (95% CI)" if abs(result.alpha - 0.05) < 1e-9 else "hazard ratio of conversion")
    ref = ", ".join(f"{k} = {v}" for k, v in result.reference.items())
    ax.set_title(title or ("Conversion hazard ratios" + (f"\n(reference: {ref})" if ref else "")))
    return ax


def plot_monetization(result: MonetizationResult, *, title: str | None = None, currency: str | None = None):
    """ARPU and ARPPU per period (left) and the customer share (right). Returns the Figure."""
    if not isinstance(result, MonetizationResult):
        raise ParameterError(f"plot_monetization: give a MonetizationResult, got {type(result).__name__}")
    style.apply()
    t = result.table
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.plot(t["period"], t["arppu"], color=style.PALETTE[1], label="ARPPU (per paying customer)")
    a1.plot(t["period"], t["arpu"], color=style.PALETTE[0], label="ARPU (per active user)")
    a1.set_ylabel("revenue per head per period")
    style.money_axis(a1, currency)
    a1.set_ylim(bottom=0)
    a1.legend()
    a2.plot(t["period"], t["customer_share"], color=style.PALETTE[2])
    style.percent_axis(a2)
    a2.set_ylim(bottom=0)
    a2.set_ylabel("paying customers / active users")
    for a in (a1, a2):
        a.tick_params(axis="x", labelrotation=30)
    fig.suptitle(title or "Monetization per period")
    fig.tight_layout()
    return fig


__all__ = ["plot_conversion_curve", "plot_hazard_ratios", "plot_monetization"]

"""Figures for invitation experiments and referrals: retention by arm, the
effect estimates side by side (intent-to-treat, CUPED, complier effect), the
power curve of a planned design, and referral rates of co-creators versus
others. Each function takes results from :mod:`workbench.models.experiments`
or :mod:`workbench.models.referrals` and returns a ``Figure``; none fits.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from workbench.errors import ParameterError


def _safe(text) -> str:
    return str(text).replace("$", r"\$")


def plot_experiment(itt, *, cace=None, cuped=None, truth: dict | None = None, figsize=(11, 4)) -> Figure:
    """Left: retention at the horizon by arm with 95% intervals. Right: the
    intent-to-treat difference, its CUPED version and the complier effect,
    with intervals; ``truth`` (``{"itt": ..., "cace": ...}``) adds planted
    values as crosses."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [1, 1.4]})
    r = itt.rates
    rate = r["rate"].to_numpy()
    se = np.sqrt(rate * (1 - rate) / r["users"].to_numpy())
    x = np.arange(len(r))
    ax1.bar(x, rate, color=["C0", "C1"][: len(r)], alpha=0.8)
    ax1.errorbar(x, rate, yerr=1.96 * se, fmt="none", color="black", capsize=5)
    ax1.set_xticks(x)
    ax1.set_xticklabels([f"{_safe(a)}\n(n = {n:,})" for a, n in zip(r.index, r["users"])])
    lo = max(0.0, float(rate.min() - 0.15))
    ax1.set_ylim(lo, min(1.0, float(rate.max() + 0.08)))
    ax1.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax1.set_ylabel("retained at the horizon")
    ax1.set_title("Retention by arm")
    rows = [("intent-to-treat", itt.difference, itt.ci_low, itt.ci_high, "itt")]
    if cuped is not None:
        rows.append(("ITT, CUPED", cuped.estimate, cuped.ci_low, cuped.ci_high, "itt"))
    if cace is not None:
        rows.append(("complier effect (CACE)", cace.estimate, cace.ci_low, cace.ci_high, "cace"))
    y = np.arange(len(rows))[::-1]
    for yi, (name, est, lo_, hi_, key) in zip(y, rows):
        ax2.plot([lo_, hi_], [yi, yi], color="C0", lw=2)
        ax2.plot(est, yi, "o", color="C0")
        ax2.text(est, yi + 0.15, f"{est:+.1%} ({lo_:+.1%} to {hi_:+.1%})", fontsize=9, va="bottom", ha="center")
        if truth and key in truth and truth[key] is not None:
            ax2.plot(truth[key], yi, "x", color="C2", ms=9, mew=2, label="planted truth" if yi == y[0] or key == "cace" else None)
    ax2.axvline(0, color="black", lw=0.8)
    ax2.set_yticks(y)
    ax2.set_yticklabels([r_[0] for r_ in rows])
    ax2.set_ylim(-0.6, len(rows) - 0.3)
    xs = [v for r_ in rows for v in r_[2:4]] + [0.0] + [v for v in (truth or {}).values() if v is not None]
    span = max(xs) - min(xs)
    ax2.set_xlim(min(xs) - 0.15 * span, max(xs) + 0.15 * span)
    ax2.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax2.set_xlabel(f"difference in retention ({_safe(itt.treatment_arm)} - control), percentage points")
    ax2.set_title("Effect of the invitation")
    if truth:
        handles, labels = ax2.get_legend_handles_labels()
        if handles:
            ax2.legend(handles[:1], labels[:1], fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_power(power, *, observed: float | None = None, figsize=(7, 4)) -> Figure:
    """Minimum detectable difference in retention against users per arm for
    the planned design, the planned size marked; ``observed`` adds the
    estimated effect as a horizontal line."""
    fig, ax = plt.subplots(figsize=figsize)
    c = power.curve
    ax.plot(c["n_per_arm"], c["mde"], color="C0", lw=2)
    ax.plot(power.n_per_arm, power.mde, "o", color="C3", ms=8,
            label=f"planned: {power.n_per_arm:,} per arm, MDE {power.mde:+.1%}")
    if observed is not None:
        ax.axhline(abs(observed), color="C2", ls="--", lw=1.2, label=f"observed effect {observed:+.1%}")
    ax.set_xscale("log")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("users per arm")
    ax.set_ylabel("minimum detectable difference")
    ax.set_title(f"Power {power.power:.0%}, alpha {power.alpha:g}, baseline retention {power.baseline_rate:.1%}")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def plot_referral_rates(result, *, truth: float | None = None, figsize=(9, 4)) -> Figure:
    """Referrals per 1,000 days alive, co-creators versus others (crude), and
    the model's rate ratio with its interval (``truth`` as a cross)."""
    if result.rates.empty:
        raise ParameterError("plot_referral_rates: the result holds no rates")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [1, 1]})
    r = result.rates
    ax1.bar(np.arange(len(r)), r["per_1000_days"], color=["C1", "C0"][: len(r)], alpha=0.85)
    ax1.set_xticks(np.arange(len(r)))
    ax1.set_xticklabels([f"{_safe(s)}\n({u:,} users)" for s, u in zip(r.index, r["users"])], fontsize=9)
    ax1.set_ylabel("referrals per 1,000 days alive (crude)")
    ax1.set_title("Crude referral rates")
    rr, lo, hi = result.rate_ratio()
    ax2.plot([lo, hi], [0, 0], color="C0", lw=3)
    ax2.plot(rr, 0, "o", color="C0", ms=9, label=f"rate ratio {rr:.2f} ({lo:.2f}-{hi:.2f})")
    if truth is not None:
        ax2.plot(truth, 0, "x", color="C2", ms=10, mew=2, label=f"planted truth {truth:g}")
    ax2.axvline(1, color="black", lw=0.8)
    ax2.set_xscale("log")
    ax2.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax2.xaxis.set_minor_formatter(plt.NullFormatter())
    ax2.set_yticks([])
    left, right = min(lo, truth or lo, 1) * 0.8, max(hi, truth or hi, 1) * 1.25
    ax2.set_xlim(left, right)
    ax2.set_xticks([v for v in (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 10) if left <= v <= right])
    ax2.set_title(_safe(result.label), fontsize=9)
    ax2.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


__all__ = ["plot_experiment", "plot_power", "plot_referral_rates"]

"""Figures for experiments and referrals: the readout's effects with raw,
multiplicity-adjusted and always-valid intervals, the estimate and its
always-valid interval by day since the start, Kaplan-Meier curves per arm;
for the invitation experiment, retention by arm and the effect estimates
side by side (intent-to-treat, CUPED, complier effect); the power curve of a
planned design; referral rates of co-creators versus others. Each function
takes results from :mod:`workbench.models.experiments` or
:mod:`workbench.models.referrals` and returns a ``Figure``; none fits.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from workbench.errors import ParameterError
from workbench.plots import style

#: metrics measured in money (their effect axes carry the currency) -> what the money is per
MONEY = {"revenue": "user", "revenue_per_purchase": "purchase", "revenue_per_active_day": "active day"}


def _points_axis(ax, axis: str = "x") -> None:
    """A difference of two shares in percentage points (0.023 shows as +2.3)."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{100 * v:+.3g}" if v else "0"))


def _effect_axis(ax, metric: str, kind: str, currency, axis: str = "x") -> str:
    """Format an axis of arm-minus-control effects in the metric's unit; returns the unit's words."""
    if kind == "binary":
        _points_axis(ax, axis)
        return "percentage points"
    if kind == "time_to_event":
        return "days of restricted mean time"
    if metric in MONEY:
        style.money_axis(ax, currency, axis=axis)
        return f"{style.literal(currency) if currency else 'money'} per {MONEY[metric]}"
    return {"purchases": "purchases per user", "active_days": "active days per user"}.get(metric, "per user")


def plot_experiment(itt, *, cace=None, cuped=None, truth: dict | None = None, figsize=(11, 4)) -> Figure:
    """Left: retention at the horizon by arm with 95% intervals (from 0).
    Right: the intent-to-treat difference, its CUPED version and the complier
    effect, with intervals; ``truth`` (``{"itt": ..., "cace": ...}``) adds
    planted values as crosses."""
    fig, (ax1, ax2) = style.new_figure(1, 2, width=figsize[0], height=figsize[1], gridspec_kw={"width_ratios": [1, 1.4]})
    r = itt.rates
    rate = r["rate"].to_numpy()
    se = np.sqrt(rate * (1 - rate) / r["users"].to_numpy())
    x = np.arange(len(r))
    ax1.bar(x, rate, color=style.colors(r.index), alpha=0.85)
    ax1.errorbar(x, rate, yerr=1.96 * se, fmt="none", color=style.INK, capsize=5)
    ax1.set_xticks(x)
    ax1.set_xticklabels([f"{style.literal(a)}\n(n = {n:,})" for a, n in zip(r.index, r["users"])])
    ax1.grid(axis="x", visible=False)
    style.percent_axis(ax1)
    ax1.set_ylim(0, min(1.0, float(np.max(rate + 1.96 * se)) * 1.1))
    ax1.set_ylabel("retained at the horizon")
    ax1.set_title("Retention by arm")
    rows = [("intent-to-treat", itt.difference, itt.ci_low, itt.ci_high, "itt")]
    if cuped is not None:
        rows.append(("ITT, CUPED", cuped.estimate, cuped.ci_low, cuped.ci_high, "itt"))
    if cace is not None:
        rows.append(("complier effect (CACE)", cace.estimate, cace.ci_low, cace.ci_high, "cace"))
    y = np.arange(len(rows))[::-1]
    ink = style.color(itt.treatment_arm, 1)
    for yi, (_name, est, lo_, hi_, key) in zip(y, rows):
        ax2.plot([lo_, hi_], [yi, yi], color=ink, lw=2.5)
        ax2.plot(est, yi, "o", color=ink)
        ax2.text(est, yi + 0.15, f"{100 * est:+.1f} ({100 * lo_:+.1f} to {100 * hi_:+.1f})", fontsize=9.5, va="bottom", ha="center")
        if truth and key in truth and truth[key] is not None:
            ax2.plot(truth[key], yi, "x", color=style.TRUTH, ms=9, mew=2, label="planted truth" if yi == y[0] or key == "cace" else None)
    ax2.axvline(0, color=style.INK, lw=0.8)
    ax2.set_yticks(y)
    ax2.set_yticklabels([r_[0] for r_ in rows])
    ax2.set_ylim(-0.6, len(rows) - 0.3)
    xs = [v for r_ in rows for v in r_[2:4]] + [0.0] + [v for v in (truth or {}).values() if v is not None]
    span = max(xs) - min(xs)
    ax2.set_xlim(min(xs) - 0.15 * span, max(xs) + 0.15 * span)
    _points_axis(ax2)
    ax2.set_xlabel(f"difference in retention ({style.literal(itt.treatment_arm)} - control), percentage points")
    ax2.set_title("Effect of the invitation")
    if truth:
        handles, labels = ax2.get_legend_handles_labels()
        if handles:
            ax2.legend(handles[:1], labels[:1], loc="lower right")
    fig.tight_layout()
    return fig


def plot_power(power, *, observed: float | None = None, figsize=(9.5, 4.2)) -> Figure:
    """Minimum detectable difference in retention (percentage points, from 0)
    against users per arm for the planned design, the planned size marked;
    ``observed`` adds the estimated effect as a horizontal line."""
    fig, ax = style.new_figure(width=figsize[0], height=figsize[1])
    c = power.curve
    ax.plot(c["n_per_arm"], c["mde"], color=style.PALETTE[0])
    ax.plot(power.n_per_arm, power.mde, "o", color=style.PALETTE[5], ms=8,
            label=f"planned: {power.n_per_arm:,} per arm, detects {100 * power.mde:.1f} points")
    if observed is not None:
        ax.axhline(abs(observed), color=style.PALETTE[2], ls="--", lw=1.2, label=f"observed effect {100 * observed:+.1f} points")
    ax.set_xscale("log")
    style.count_axis(ax, "x", integer=False)
    ax.set_ylim(0, max(float(c["mde"].max()), abs(observed or 0)) * 1.05)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{100 * v:.3g}"))
    ax.set_xlabel("users per arm")
    ax.set_ylabel("smallest detectable difference (points)")
    ax.set_title(f"Power {power.power:.0%}, alpha {power.alpha:g}, baseline retention {power.baseline_rate:.1%}")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_referral_rates(result, *, truth: float | None = None, figsize=(11, 4)) -> Figure:
    """Referrals per 1,000 days alive, co-creators versus others (crude, from
    0), and the model's rate ratio with its interval (``truth`` as a cross)."""
    if result.rates.empty:
        raise ParameterError("plot_referral_rates: the result holds no rates")
    fig, (ax1, ax2) = style.new_figure(1, 2, width=figsize[0], height=figsize[1], gridspec_kw={"width_ratios": [1, 1]})
    r = result.rates
    # rows are "co-creator" and "not (yet) co-creator": the report's roles "co-creators" and "others"
    roles = [style.color("others") if str(name).startswith("not") else style.color("co-creators") for name in r.index]
    ax1.bar(np.arange(len(r)), r["per_1000_days"], color=roles, alpha=0.85)
    ax1.set_xticks(np.arange(len(r)))
    ax1.set_xticklabels([f"{style.literal(s)}\n({u:,} users)" for s, u in zip(r.index, r["users"])])
    ax1.grid(axis="x", visible=False)
    style.from_zero(ax1)
    style.count_axis(ax1, integer=False)
    ax1.set_ylabel("referrals per 1,000 days alive")
    ax1.set_title("UNADJUSTED: crude rates pooled over all periods", fontsize=10)
    ax1.text(0.5, 0.97, "periods differ between the groups: read the adjusted\nratio (right), which compares within each period",
             transform=ax1.transAxes, ha="center", va="top", fontsize=8, color=style.MUTED)
    ax1.set_ylim(0, float(r["per_1000_days"].max()) * 1.35 if len(r) and r["per_1000_days"].max() > 0 else 1)
    rr, lo, hi = result.rate_ratio()
    style.ratio_axis(ax2, "x")
    ax2.plot([lo, hi], [0, 0], color=style.color("co-creators"), lw=3)
    ax2.plot(rr, 0, "o", color=style.color("co-creators"), ms=9, label=f"adjusted rate ratio {rr:.2f} (95% CI {lo:.2f}-{hi:.2f})")
    if truth is not None:
        ax2.plot(truth, 0, "x", color=style.TRUTH, ms=10, mew=2, label=f"planted truth {truth:g}")
    ax2.xaxis.set_minor_formatter(plt.NullFormatter())
    ax2.set_yticks([])
    left, right = min(lo, truth or lo, 1) * 0.8, max(hi, truth or hi, 1) * 1.25
    ax2.set_xlim(left, right)
    ax2.set_xticks([v for v in (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 10) if left <= v <= right])
    ax2.set_title("ADJUSTED: within the same period", fontsize=10)
    ax2.set_xlabel("referral rate ratio (log scale; > 1: co-creators refer more)")
    ax2.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------- the readout
def plot_effects(result, *, metrics=None, currency: str | None = None, ncols: int = 3, figsize=None) -> Figure:
    """One panel per metric (its own unit: points, money with ``currency``,
    days), one row per arm in the arm's colour: the effect against control with
    its 95% interval (thick), the interval adjusted for multiplicity (thin;
    the readout's ``correction``) and, in sequential mode, the always-valid
    interval (brackets)."""
    eff = result.effects
    names = [m for m in (metrics or result.metrics) if m in set(eff["metric"])]
    if not names:
        raise ParameterError(f"plot_effects: no estimated metric to plot (estimated: {', '.join(sorted(set(eff['metric']))) or 'none'})")
    ncols = max(1, min(ncols, len(names)))
    nrows = int(np.ceil(len(names) / ncols))
    arms = sorted(set(eff["arm"]))
    colors = dict(zip(arms, style.colors(arms)))
    w, h = figsize or (3.6 * ncols + 0.8, 0.9 + (0.45 * len(arms) + 1.2) * nrows)
    fig, axes = style.new_figure(nrows, ncols, width=w, height=h, squeeze=False)
    seq = "seq_ci_low" in eff.columns and eff["seq_ci_low"].notna().any()
    for ax, metric in zip(axes.flat, names):
        sub = eff[eff["metric"] == metric].set_index("arm")
        for i, arm in enumerate(arms):
            if arm not in sub.index:
                continue
            r = sub.loc[arm]
            y = len(arms) - 1 - i
            c = colors[arm]
            ax.plot([r["adj_ci_low"], r["adj_ci_high"]], [y, y], color=c, lw=1)
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=c, lw=5, alpha=0.8, solid_capstyle="butt")
            if seq and np.isfinite(r["seq_ci_low"]):
                ax.plot([r["seq_ci_low"], r["seq_ci_high"]], [y, y], ls="none", marker="|", ms=13, mew=1.6, color=style.INK)
            ax.plot(r["effect"], y, "o", color="white", mec=c, mew=1.8, ms=7)
        ax.axvline(0, color=style.INK, lw=0.8)
        ax.set_yticks(range(len(arms)))
        ax.set_yticklabels([style.literal(a) for a in arms[::-1]])
        ax.set_ylim(-0.6, len(arms) - 0.4)
        ax.grid(axis="y", visible=False)
        unit = _effect_axis(ax, metric, sub["kind"].iloc[0], currency)
        ax.set_title(f"{style.literal(metric)}\n({unit})", fontsize=10.5)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    label = {"holm": "Holm (Bonferroni level)", "bh": "Benjamini-Hochberg (FCR level)", "none": "no adjustment"}[result.correction]
    legend = f"Arm minus control: dot estimate, thick {1 - result.alpha:.0%} interval, thin adjusted for {label}"
    fig.suptitle(legend + ("; black brackets: always-valid interval" if seq else ""), x=0.01, ha="left", fontsize=10.5)
    fig.tight_layout()
    return fig


def plot_sequential(result, metric: str, *, arm: str | None = None, currency: str | None = None, figsize=(11, 4.8)) -> Figure:
    """The effect of ``arm`` (default: every arm) on ``metric`` by day since
    the experiment started: the estimate, the always-valid interval (valid
    whenever it is looked at) and the naive daily interval (valid for one
    look only), with the fixed-horizon interval at the last look on the right."""
    if result.sequential is None:
        raise ParameterError("plot_sequential: the readout has no sequential results; run readout(..., sequential=True)")
    seq = result.sequential[result.sequential["metric"] == metric]
    arms = sorted(set(seq["arm"])) if arm is None else [arm]
    if seq.empty or not set(arms) <= set(seq["arm"]):
        raise ParameterError(f"plot_sequential: no sequential estimate for metric {metric!r}"
                             + (f", arm {arm!r}" if arm else "") + f"; there are: {', '.join(sorted(set(result.sequential['metric'])))}")
    fig, ax = style.new_figure(width=figsize[0], height=figsize[1])
    last_day = float(seq["day"].max())
    everyone = sorted(set(result.sequential["arm"]))
    colors = dict(zip(everyone, style.colors(everyone)))
    for i, a in enumerate(arms):
        g = seq[seq["arm"] == a].sort_values("day")
        color = colors[a]
        name = style.literal(a)
        ax.fill_between(g["day"], g["seq_ci_low"], g["seq_ci_high"], color=color, alpha=0.18, lw=0,
                        label=f"{name}: always-valid interval")
        ax.plot(g["day"], g["ci_low"], color=color, ls=":", lw=1.2, label=f"{name}: naive daily interval")
        ax.plot(g["day"], g["ci_high"], color=color, ls=":", lw=1.2)
        ax.plot(g["day"], g["estimate"], color=color, lw=2, label=f"{name}: estimate")
        r = result.effect(metric, a)
        x = last_day * (1.03 + 0.03 * i)
        ax.errorbar([x], [r["effect"]], yerr=[[r["effect"] - r["ci_low"]], [r["ci_high"] - r["effect"]]], fmt="s", color=color,
                    capsize=4, ms=5, label=f"{name}: fixed-horizon interval")
    # the first looks have wide intervals: frame the looks whose interval is within 3 times the last one's width
    sel = seq[seq["arm"].isin(arms)]
    width = sel["seq_ci_high"] - sel["seq_ci_low"]
    last_width = sel.sort_values("day").groupby("arm").tail(1).eval("seq_ci_high - seq_ci_low").max()
    framed = sel[width <= 3 * last_width]
    if not framed.empty:
        lo, hi = min(framed["seq_ci_low"].min(), 0.0), max(framed["seq_ci_high"].max(), 0.0)
        pad = 0.08 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
    ax.axhline(0, color=style.INK, lw=0.8)
    ax.set_xlabel("days since the experiment started (users counted once their horizon is over)")
    ax.set_ylabel(f"{style.literal(metric)}: arm minus control")
    unit = _effect_axis(ax, metric, _kind(result, metric), currency, axis="y")
    ax.set_title(f"{style.literal(metric)}: the effect as it would have been read each day ({unit})")
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def _kind(result, metric: str) -> str:
    kinds = result.effects.loc[result.effects["metric"] == metric, "kind"]
    return str(kinds.iloc[0]) if len(kinds) else ""


def plot_arm_survival(result, metric: str, *, figsize=(9.5, 5.2)) -> Figure:
    """Kaplan-Meier curves per arm of a time-to-event metric (share from 0 to
    100%), each arm in its colour, with the horizon at which RMST is measured
    marked and each arm's RMST in the legend."""
    from workbench.plots.survival import plot_survival_curves

    if metric not in result.time_to_event:
        raise ParameterError(f"plot_arm_survival: no time-to-event result for {metric!r}; there are: "
                             f"{', '.join(result.time_to_event) or 'none'}")
    tte = result.time_to_event[metric]
    rm = tte.rmst.set_index("arm")["rmst"]
    labels = {a: f"{a}: {v:.1f} days" for a, v in rm.items() if np.isfinite(v)}
    word = {"time_to_churn": "still not churned", "time_to_purchase": "not yet purchased", "time_to_idea": "no idea yet"}.get(metric, "no event yet")
    title = f"{metric}: Kaplan-Meier by arm" + (f"\nlegend: restricted mean days up to {tte.horizon:g} (dashed line)" if labels else "")
    style.apply()
    groups = list(dict.fromkeys(tte.curves.curves["group"]))
    fig = plot_survival_curves(tte.curves, title=title, labels=labels, figsize=figsize, palette=style.colors(groups))
    ax = fig.axes[0]
    ax.axvline(tte.horizon, color=style.MUTED, ls="--", lw=1)
    ax.set_ylim(0, 1.02)
    style.percent_axis(ax)
    ax.set_ylabel(f"share {word}")
    return fig


__all__ = ["plot_arm_survival", "plot_effects", "plot_experiment", "plot_power", "plot_referral_rates", "plot_sequential"]

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
    for yi, (_name, est, lo_, hi_, key) in zip(y, rows):
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
    from workbench.plots import style

    style.apply()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [1, 1]})
    r = result.rates
    roles = ["co-creators" if "co-creator" in str(k) and not str(k).startswith("not") else "others" for k in r.index]
    ax1.bar(np.arange(len(r)), r["per_1000_days"], color=[style.color(k) for k in roles], alpha=0.85)
    ax1.set_xticks(np.arange(len(r)))
    ax1.set_xticklabels([f"{_safe(s)}\n({u:,} users)" for s, u in zip(r.index, r["users"])], fontsize=9)
    ax1.set_ylabel("referrals per 1,000 days alive")
    ax1.set_title("UNADJUSTED: crude rates pooled over all periods", fontsize=10)
    ax1.text(0.5, 0.97, "not comparable: co-creating time falls in later periods,\nwhen everyone refers less (see the adjusted ratio)",
             transform=ax1.transAxes, ha="center", va="top", fontsize=8, color=style.MUTED)
    ax1.set_ylim(0, float(r["per_1000_days"].max()) * 1.35 if len(r) and r["per_1000_days"].max() > 0 else 1)
    rr, lo, hi = result.rate_ratio()
    co = style.color("co-creators")
    ax2.plot([lo, hi], [0, 0], color=co, lw=3)
    ax2.plot(rr, 0, "o", color=co, ms=9, label=f"adjusted rate ratio {rr:.2f} (95% CI {lo:.2f}-{hi:.2f})")
    if truth is not None:
        ax2.plot(truth, 0, "x", color=style.TRUTH, ms=10, mew=2, label=f"planted truth {truth:g}")
    ax2.axvline(1, color="black", lw=0.8)
    ax2.set_xscale("log")
    ax2.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
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
def plot_effects(result, *, metrics=None, ncols: int = 3, figsize=None) -> Figure:
    """One panel per metric (its own units), one row per arm: the effect
    against control with its 95% interval (thick), the interval adjusted for
    multiplicity (thin; the readout's ``correction``) and, in sequential
    mode, the always-valid interval (open brackets)."""
    eff = result.effects
    names = [m for m in (metrics or result.metrics) if m in set(eff["metric"])]
    if not names:
        raise ParameterError(f"plot_effects: no estimated metric to plot (estimated: {', '.join(sorted(set(eff['metric']))) or 'none'})")
    ncols = max(1, min(ncols, len(names)))
    nrows = int(np.ceil(len(names) / ncols))
    arms = sorted(set(eff["arm"]))
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (4.2 * ncols, 0.6 + (0.45 * len(arms) + 0.9) * nrows), squeeze=False)
    seq = "seq_ci_low" in eff.columns and eff["seq_ci_low"].notna().any()
    for ax, metric in zip(axes.flat, names):
        sub = eff[eff["metric"] == metric].set_index("arm")
        for i, arm in enumerate(arms):
            if arm not in sub.index:
                continue
            r = sub.loc[arm]
            y = len(arms) - 1 - i
            ax.plot([r["adj_ci_low"], r["adj_ci_high"]], [y, y], color="C0", lw=1)
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color="C0", lw=4, alpha=0.8, solid_capstyle="butt")
            if seq and np.isfinite(r["seq_ci_low"]):
                ax.plot([r["seq_ci_low"], r["seq_ci_high"]], [y, y], ls="none", marker="|", ms=12, mew=1.5, color="C3")
            ax.plot(r["effect"], y, "o", color="white", mec="C0", mew=1.5, ms=6)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(arms)))
        ax.set_yticklabels([_safe(a) for a in arms[::-1]], fontsize=8)
        ax.set_ylim(-0.6, len(arms) - 0.4)
        unit = "days (RMST)" if sub["kind"].iloc[0] == "time_to_event" else "difference"
        ax.set_title(f"{_safe(metric)} ({unit})", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    label = {"holm": "Holm (Bonferroni level)", "bh": "Benjamini-Hochberg (FCR level)", "none": "no adjustment"}[result.correction]
    legend = f"arm minus control: dot estimate, thick {1 - result.alpha:.0%} interval, thin adjusted for {label}"
    fig.suptitle(legend + ("; red brackets: always-valid interval" if seq else ""), fontsize=9)
    fig.tight_layout()
    return fig


def plot_sequential(result, metric: str, *, arm: str | None = None, figsize=(8, 4.5)) -> Figure:
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
    fig, ax = plt.subplots(figsize=figsize)
    last_day = float(seq["day"].max())
    for i, a in enumerate(arms):
        g = seq[seq["arm"] == a].sort_values("day")
        color = f"C{i}"
        ax.fill_between(g["day"], g["seq_ci_low"], g["seq_ci_high"], color=color, alpha=0.15, lw=0,
                        label=f"{_safe(a)}: always-valid interval")
        ax.plot(g["day"], g["ci_low"], color=color, ls=":", lw=1, label=f"{_safe(a)}: naive daily interval")
        ax.plot(g["day"], g["ci_high"], color=color, ls=":", lw=1)
        ax.plot(g["day"], g["estimate"], color=color, lw=1.8, label=f"{_safe(a)}: estimate")
        r = result.effect(metric, a)
        x = last_day * (1.03 + 0.03 * i)
        ax.errorbar([x], [r["effect"]], yerr=[[r["effect"] - r["ci_low"]], [r["ci_high"] - r["effect"]]], fmt="s", color=color,
                    capsize=4, ms=5, label=f"{_safe(a)}: fixed-horizon interval")
    # the first looks have wide intervals: frame the looks whose interval is within 3 times the last one's width
    sel = seq[seq["arm"].isin(arms)]
    width = sel["seq_ci_high"] - sel["seq_ci_low"]
    last_width = sel.sort_values("day").groupby("arm").tail(1).eval("seq_ci_high - seq_ci_low").max()
    framed = sel[width <= 3 * last_width]
    if not framed.empty:
        lo, hi = min(framed["seq_ci_low"].min(), 0.0), max(framed["seq_ci_high"].max(), 0.0)
        pad = 0.08 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("days since the experiment started (users counted once their horizon is over)")
    ax.set_ylabel(f"{_safe(metric)}: arm minus control")
    ax.set_title(f"{_safe(metric)}: the estimate as it would have been read each day")
    ax.legend(fontsize=7, ncol=2 if len(arms) > 1 else 1)
    fig.tight_layout()
    return fig


def plot_arm_survival(result, metric: str, *, figsize=(8, 5)) -> Figure:
    """Kaplan-Meier curves per arm of a time-to-event metric, with the
    horizon at which RMST is measured marked and each arm's RMST in the legend."""
    from workbench.plots.survival import plot_survival_curves

    if metric not in result.time_to_event:
        raise ParameterError(f"plot_arm_survival: no time-to-event result for {metric!r}; there are: "
                             f"{', '.join(result.time_to_event) or 'none'}")
    tte = result.time_to_event[metric]
    rm = tte.rmst.set_index("arm")["rmst"]
    means = ", ".join(f"{a} {v:.1f}" for a, v in rm.items() if np.isfinite(v))
    word = {"time_to_churn": "still not churned", "time_to_purchase": "not yet purchased", "time_to_idea": "no idea yet"}.get(metric, "no event yet")
    title = f"{metric}: Kaplan-Meier by arm" + (f"\nrestricted mean days up to {tte.horizon:g} (dashed): {means}" if means else "")
    fig = plot_survival_curves(tte.curves, title=title, figsize=figsize)
    ax = fig.axes[0]
    ax.axvline(tte.horizon, color="grey", ls="--", lw=1)
    ax.set_ylabel(f"share {word}")
    return fig


__all__ = ["plot_arm_survival", "plot_effects", "plot_experiment", "plot_power", "plot_referral_rates", "plot_sequential"]

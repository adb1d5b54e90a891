"""Figures for co-creation and retention: Kaplan-Meier curves with bands and
at-risk counts, landmark curves, the proportional-hazards check, the
side-by-side hazard ratios, propensity overlap and balance, weighted
retention curves and dose-response.

Each function takes result objects from :mod:`workbench.models.survival` /
:mod:`workbench.models.causal` and returns a matplotlib ``Figure``; nothing
here fits (smoothers and intervals come with the results). Text from a
dataset (segment names) is shown literally. The look is the house style of
:mod:`workbench.plots.style`: co-creators are orange and the others blue in
every figure, segments keep their colours, the planted truth is vermillion.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from workbench.errors import ParameterError
from workbench.plots import style

CO = style.color("co-creators")
OTHERS = style.color("others")
NAIVE = style.PALETTE[5]  # vermillion: the biased estimate
#: group values of the co-creation comparison and their roles
EXPOSED_ROLES = {"1": "co-creators", "0": "others", "co-created": "co-creators", "not yet": "others",
                 "ever co-created": "co-creators", "never co-created": "others"}


def _safe(text) -> str:
    return style.literal(text)


def _group_colors(groups, labels=None) -> dict:
    """Co-creators orange and others blue, wherever they appear; other groups (segments) by their role or the palette."""
    keys = [EXPOSED_ROLES.get(str(g), EXPOSED_ROLES.get(str((labels or {}).get(g, g)), g)) for g in groups]
    return dict(zip(groups, style.colors(keys)))


def _fmt_p(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}"


def _draw_curves(ax, curves, *, bands=True, labels=None, palette=None):
    groups = list(dict.fromkeys(curves.curves["group"]))
    colors = dict(zip(groups, palette)) if palette else _group_colors(groups, labels)
    for g in groups:
        c = curves.curves[curves.curves["group"] == g]
        name = _safe(labels.get(g, g) if labels else g)
        ax.step(c["time"], c["survival"], where="post", color=colors[g], lw=1.8, label=name)
        if bands:
            ax.fill_between(c["time"], c["ci_low"], c["ci_high"], step="post", color=colors[g], alpha=0.18, lw=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    return colors


def _at_risk_table(ax_table, curves, colors, labels=None):
    times = list(curves.at_risk.columns)
    ax_table.set_xlim(ax_table.get_xlim())
    groups = list(curves.at_risk.index)
    for i, g in enumerate(groups):
        y = len(groups) - i
        for t in times:
            ax_table.text(t, y, f"{curves.at_risk.loc[g, t]:,.0f}", ha="center", va="center", fontsize=9, color=colors.get(g, style.INK))
    ax_table.set_ylim(0.3, len(groups) + 0.7)
    # the group names as tick labels, padded clear of the first column of counts
    ax_table.set_yticks([len(groups) - i for i in range(len(groups))])
    ax_table.set_yticklabels([_safe(labels.get(g, g) if labels else g) for g in groups], fontsize=9, fontweight="bold")
    for lab, g in zip(ax_table.get_yticklabels(), groups):
        lab.set_color(colors.get(g, style.INK))
    ax_table.tick_params(axis="y", length=0, pad=24)
    ax_table.set_xticks(times)
    ax_table.tick_params(axis="x", length=0, labelbottom=False)
    for side in ("top", "right", "left", "bottom"):
        ax_table.spines[side].set_visible(False)
    ax_table.grid(False)
    ax_table.text(0, len(groups) + 0.75, "number at risk", transform=ax_table.get_yaxis_transform(), ha="left",
                  va="bottom", fontsize=9, style="italic", color=style.MUTED)


def plot_survival_curves(curves, *, title: str | None = None, labels: dict | None = None, bands: bool = True,
                         at_risk: bool = True, figsize=(8, 5), palette=None) -> Figure:
    """Kaplan-Meier retention curves (a :class:`~workbench.models.survival.SurvivalCurves`)
    with pointwise confidence bands and the number at risk under the plot;
    the log-rank p-value in the legend title when there is one. ``palette``:
    one colour per group, in the curves' group order (default: seaborn's)."""
    style.apply()
    groups = list(curves.at_risk.index)
    n_rows = len(groups)
    if at_risk:
        fig, (ax, axt) = plt.subplots(2, 1, figsize=figsize, sharex=True,
                                      gridspec_kw={"height_ratios": [5, 0.45 + 0.3 * n_rows], "hspace": 0.3})
        fig.subplots_adjust(left=0.2)
    else:
        fig, ax = plt.subplots(figsize=figsize)
    colors = _draw_curves(ax, curves, bands=bands, labels=labels, palette=palette)
    origin = "signup" if curves.time_origin == "signup" else curves.time_origin
    ax.set_ylabel("share still retained")
    style.percent_axis(ax)
    ax.set_title(_safe(title or curves.label))
    legend_title = _safe(curves.group) if curves.group else None
    if curves.logrank is not None:
        legend_title = f"{legend_title or ''}  (log-rank {_fmt_p(curves.logrank.p_value)})".strip()
    if curves.group:
        ax.legend(title=legend_title, title_fontsize=10, loc="upper right")
    ax.set_xticks(list(curves.at_risk.columns))
    if at_risk:
        _at_risk_table(axt, curves, colors, labels)
        ax.set_xlabel("")
        ax.tick_params(labelbottom=True)
        ax.set_xlabel(f"days since {origin}")
    else:
        ax.set_xlabel(f"days since {origin}")
    return fig


def plot_landmark_curves(curves_by_landmark: dict, *, title: str = "Retention after each landmark, by co-creation so far",
                         labels: dict | None = None, figsize=None) -> Figure:
    """One panel per landmark day: Kaplan-Meier retention from the landmark of
    users who had co-created by then versus those who had not, with bands and
    at-risk counts."""
    if not curves_by_landmark:
        raise ParameterError("plot_landmark_curves: no landmark curves to draw")
    style.apply()
    k = len(curves_by_landmark)
    fig = plt.figure(figsize=figsize or (5 * k, 5.2))
    outer = fig.add_gridspec(1, k, wspace=0.35, left=0.1, right=0.97)
    labels = labels or {"0": "not yet", "1": "co-created"}
    for i, (d, curves) in enumerate(curves_by_landmark.items()):
        inner = outer[i].subgridspec(2, 1, height_ratios=[5, 1.2], hspace=0.35)
        ax = fig.add_subplot(inner[0])
        axt = fig.add_subplot(inner[1], sharex=ax)
        colors = _draw_curves(ax, curves, labels=labels)
        ax.set_xticks(list(curves.at_risk.columns))
        p = f", log-rank {_fmt_p(curves.logrank.p_value)}" if curves.logrank is not None else ""
        ax.set_title(f"from day {d:g}{p}", fontsize=11)
        ax.set_xlabel(f"days since day {d:g}")
        style.percent_axis(ax)
        if i == 0:
            ax.set_ylabel("share still retained")
        ax.legend(loc="lower left")
        _at_risk_table(axt, curves, colors, labels)
    fig.suptitle(_safe(title))
    return fig


def plot_schoenfeld(check, *, covariates=None, figsize=None) -> Figure:
    """Scaled Schoenfeld residuals against time with the lowess smoother, per
    covariate (a :class:`~workbench.models.survival.PHCheckResult`): a flat
    smoother at the fitted log hazard ratio is what proportional hazards look
    like; the test's p-value is in each title."""
    names = list(covariates or check.params.index)
    unknown = [n for n in names if n not in check.params.index]
    if unknown:
        raise ParameterError(f"plot_schoenfeld: unknown covariate(s) {unknown}; have {list(check.params.index)}")
    style.apply()
    fig, axes = plt.subplots(1, len(names), figsize=figsize or (5.5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        r = check.residuals
        ax.scatter(r["time"], r[name], s=4, alpha=0.25, color=style.MUTED, lw=0)
        ax.plot(check.smooth["time"], check.smooth[name], color=style.PALETTE[0], lw=2, label="lowess")
        ax.axhline(check.params[name], color=NAIVE, ls="--", lw=1.2, label=f"fitted log HR {check.params[name]:.3f}")
        lo, hi = np.nanquantile(r[name], [0.02, 0.98])
        pad = 0.3 * (hi - lo + 1e-9)
        ax.set_ylim(lo - pad, hi + pad)
        p = check.tests.loc[name, "p_value"]
        ax.set_title(f"{_safe(style.term_label(name))}: slope test {_fmt_p(p)}", fontsize=11)
        ax.set_xlabel("days since signup (event times)")
        ax.set_ylabel("scaled Schoenfeld residual (log HR at t)")
        ax.legend()
    fig.suptitle(_safe(textwrap.fill(f"Proportional-hazards check: {check.label}", 90)), fontsize=10)
    fig.tight_layout()
    return fig


def plot_ph_check(check, *, bin_days: float | None = None, covariates=None, figsize=None) -> Figure:
    """The proportional-hazards check of either path (a
    :class:`~workbench.models.survival.PHCheckResult`): scaled Schoenfeld
    residuals for an exact Cox fit (:func:`plot_schoenfeld`), or for an
    aggregated fit the exposure's hazard ratio per tenure band with its
    interval against the single fitted hazard ratio, the tenure-interaction
    test's p-value in the title (``bin_days`` puts the bands in days)."""
    if check.method == "schoenfeld":
        return plot_schoenfeld(check, covariates=covariates, figsize=figsize)
    by = check.by_tenure
    if by is None or by.empty:
        raise ParameterError("plot_ph_check: the check holds no hazard ratios by tenure band")
    style.apply()
    scale = float(bin_days) if bin_days else 1.0
    lo_t, hi_t = by["from_bin"].to_numpy() * scale, (by["to_bin"].to_numpy() + 1) * scale
    mid = (lo_t + hi_t) / 2
    fig, ax = plt.subplots(figsize=figsize or (7, 4))
    hr = by["hazard_ratio"].to_numpy()
    ax.errorbar(mid, hr, yerr=[hr - by["hr_ci_low"].to_numpy(), by["hr_ci_high"].to_numpy() - hr], xerr=(hi_t - lo_t) / 2,
                fmt="o", color=CO, capsize=3, label="hazard ratio in the tenure band (95% CI)")
    overall = float(np.exp(check.params[check.exposure]))
    ax.axhline(overall, color=style.INK, ls="--", lw=1.2, label=f"single fitted hazard ratio {overall:.2f}")
    ax.axhline(1.0, color="black", lw=0.8)
    p = check.tests.loc[check.exposure, "p_value"]
    ax.set_title(_safe(f"{style.term_label(check.exposure)}: hazard ratio by tenure, interaction test {_fmt_p(p)}"), fontsize=11)
    ax.set_xlabel("days since signup" if bin_days else "tenure bin")
    ax.set_ylabel("hazard ratio")
    ax.legend()
    fig.suptitle(_safe(textwrap.fill(f"Proportional-hazards check: {check.label}", 90)), fontsize=10)
    fig.tight_layout()
    return fig


def plot_hazard_ratios(comparison, *, truth: float | None = None, title: str = "Hazard ratio of co-creation on churn",
                       figsize=(8, None)) -> Figure:
    """Forest plot of the hazard ratios in a
    :class:`~workbench.models.causal.HazardRatioComparison`, log scale, the
    naive estimate in red and labelled as biased; ``truth`` (e.g. a planted
    value) as a dashed line."""
    style.apply()
    t = comparison.table
    h = figsize[1] or 0.6 * len(t) + 1.5
    fig, ax = plt.subplots(figsize=(figsize[0], h))
    y = np.arange(len(t))[::-1]
    for yi, (name, row) in zip(y, t.iterrows()):
        naive = name == "naive_ever"
        color = NAIVE if naive else CO
        lo, hi = row["ci_low"], row["ci_high"]
        if np.isfinite(lo) and np.isfinite(hi):
            ax.plot([lo, hi], [yi, yi], color=color, lw=2)
        ax.plot(row["hazard_ratio"], yi, "o", color=color, ms=7)
        ax.text(1.02, yi, f"{row['hazard_ratio']:.2f}" + (f" ({lo:.2f}-{hi:.2f})" if np.isfinite(lo) else ""),
                transform=ax.get_yaxis_transform(), va="center", fontsize=9, color=color)
    ax.axvline(1.0, color="black", lw=0.8)
    if truth is not None:
        ax.axvline(truth, color=style.TRUTH, ls="--", lw=1.2, label=f"planted truth {truth:g}")
        ax.legend(loc="lower right")
    names = [(n.replace("_", " ") + ("  (NAIVE, biased)" if n == "naive_ever" else "")) for n in t.index]
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    for lab, n in zip(ax.get_yticklabels(), t.index):
        if n == "naive_ever":
            lab.set_color(NAIVE)
    ax.set_xscale("log")
    lo_all = np.nanmin(t[["hazard_ratio", "ci_low"]].to_numpy())
    hi_all = np.nanmax(t[["hazard_ratio", "ci_high"]].to_numpy())
    left, right = min(lo_all, truth or 1, 1) * 0.85, max(hi_all, truth or 1, 1) * 1.15
    ax.set_xlim(left, right)
    ticks = [v for v in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 10) if left <= v <= right]
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("hazard ratio (co-created vs not; < 1: churn slower)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_overlap(ipw, *, figsize=None) -> Figure:
    """Propensity of having co-created by each landmark, by group (top), and
    covariate balance before and after weighting (bottom): standardized mean
    differences within +/-0.1 after weighting mean the groups are comparable
    on the measured covariates."""
    style.apply()
    lms = list(ipw.landmarks)
    fig, axes = plt.subplots(2, len(lms), figsize=figsize or (4.5 * len(lms), 7), squeeze=False)
    p = ipw.propensity
    for i, d in enumerate(lms):
        ax = axes[0, i]
        sub = p[p["landmark"] == d]
        bins = np.linspace(0, 1, 41)
        for level, name, color in ((1, "co-created", CO), (0, "not yet", OTHERS)):
            g = sub[sub["exposed"] == level]
            # per user, or per covariate pattern with its number of users (aggregated landmark analysis)
            ax.hist(g["propensity"], bins=bins, density=True, alpha=0.5, color=color, label=name,
                    weights=g["users"] if "users" in g.columns else None)
        ax.set_title(f"day {d:g}: propensity to have co-created", fontsize=11)
        ax.set_xlabel("propensity")
        if i == 0:
            ax.set_ylabel("density")
            ax.legend()
        axb = axes[1, i]
        b = ipw.balance.xs(d, level="landmark")
        yy = np.arange(len(b))
        axb.scatter(b["smd_unweighted"], yy, color=NAIVE, label="before weighting", zorder=3)
        axb.scatter(b["smd_weighted"], yy, color=style.PALETTE[2], marker="s", label="after weighting", zorder=3)
        axb.axvspan(-0.1, 0.1, color=style.PALETTE[2], alpha=0.1)
        axb.axvline(0, color="black", lw=0.8)
        axb.set_yticks(yy)
        axb.set_yticklabels([_safe(style.term_label(n)) for n in b.index], fontsize=9)
        axb.set_xlabel("standardized mean difference")
        if i == 0:
            axb.legend()
    fig.suptitle("Overlap and balance of the landmark comparison")
    fig.tight_layout()
    return fig


def plot_weighted_curves(ipw, *, figsize=None) -> Figure:
    """Inverse-probability-weighted retention from each landmark, co-created
    by then versus not yet (what the curves would be if co-creation by the
    landmark were unrelated to the measured covariates)."""
    style.apply()
    lms = list(ipw.landmarks)
    fig, axes = plt.subplots(1, len(lms), figsize=figsize or (4.5 * len(lms), 4), squeeze=False, sharey=True)
    for ax, d in zip(axes[0], lms):
        c = ipw.curves[ipw.curves["landmark"] == d]
        for name, color in (("co-created", CO), ("not yet", OTHERS)):
            g = c[c["group"] == name]
            ax.step(g["time"], g["survival"], where="post", color=color, lw=1.8, label=name)
        hr, lo, hi = ipw.hazard_ratio("weighted", d)
        ax.set_title(f"from day {d:g}: weighted HR {hr:.2f} ({lo:.2f}-{hi:.2f})", fontsize=11)
        style.percent_axis(ax)
        ax.set_xlabel(f"days since day {d:g}")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(left=0)
    axes[0, 0].set_ylabel("share still retained (weighted)")
    axes[0, 0].legend(loc="lower left")
    fig.suptitle("Retention after each landmark, weighted for the propensity to co-create")
    fig.tight_layout()
    return fig


def plot_discrete_hazard(result, *, bin_days: float | None = None, figsize=(8, 4)) -> Figure:
    """Observed churn per tenure bin (points) and the discrete-time model's fit
    (lines), co-creators versus others, pooled over strata (a
    :class:`~workbench.models.survival.DiscreteHazardResult`)."""
    if result.fitted is None or result.fitted.empty:
        raise ParameterError("plot_discrete_hazard: the result holds no fitted values")
    style.apply()
    fig, ax = plt.subplots(figsize=figsize)
    f = result.fitted
    scale = 1.0 if bin_days is None else float(bin_days)
    for level, name, color in ((0, "not (yet) co-created", OTHERS), (1, "co-created", CO)):
        g = f[f["exposed"] == level].sort_values("tenure_bin")
        x = (g["tenure_bin"] + 0.5) * scale
        ax.plot(x, g["observed"], "o", ms=3, alpha=0.6, color=color, label=f"{name}: observed")
        ax.plot(x, g["fitted"], "-", lw=1.8, color=color, label=f"{name}: model")
    hr, lo, hi = result.hazard_ratio()
    ax.set_xlabel("days since signup" if bin_days else "tenure bin")
    ax.set_ylabel(f"churn {f['scale'].iloc[0]}")
    ax.set_title(_safe(f"{result.label}: hazard ratio {hr:.2f} ({lo:.2f}-{hi:.2f})"), fontsize=11)
    ax.set_ylim(bottom=0)
    ax.legend(ncol=2)
    fig.tight_layout()
    return fig


def plot_dose_response(dose, *, figsize=(7, 4)) -> Figure:
    """Hazard ratio of churn by number of adopted ideas so far (against none),
    with intervals, and the per-idea trend."""
    style.apply()
    fig, ax = plt.subplots(figsize=figsize)
    lv = dose.levels
    x = np.arange(1, len(lv) + 1)
    ax.errorbar(x, lv["hazard_ratio"], yerr=[lv["hazard_ratio"] - lv["hr_ci_low"], lv["hr_ci_high"] - lv["hazard_ratio"]],
                fmt="o", color=CO, capsize=4, label="by level, 95% CI (vs none)")
    ax.plot(0, 1.0, "o", color=OTHERS)
    tr = dose.trend
    xs = np.arange(0, len(lv) + 1)
    ax.plot(xs, tr["hazard_ratio"] ** xs, ls="--", color=style.INK, label=f"trend: {tr['hazard_ratio']:.2f} per idea")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(xs)
    ax.set_xticklabels(["0"] + [n.replace("dose=", "").replace("dose>=", "") + ("+" if ">=" in n else "") for n in lv.index])
    ax.set_xlabel("adopted ideas so far")
    ax.set_ylabel("churn hazard ratio vs none")
    ax.set_title(_safe(dose.label), fontsize=11)
    ax.legend()
    fig.tight_layout()
    return fig


__all__ = ["plot_discrete_hazard", "plot_dose_response", "plot_hazard_ratios", "plot_landmark_curves", "plot_overlap", "plot_ph_check",
           "plot_schoenfeld",
           "plot_survival_curves", "plot_weighted_curves"]

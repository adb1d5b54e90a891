"""Fixed-horizon effects of every arm against control, for every metric,
from the engine's per-arm sufficient statistics
(``workbench.tables.experiment_arm_stats``).

Per metric kind (the tests named are the ones statsmodels runs on one row
per user, which these reproduce from the sums):

- binary, without CUPED: difference in proportions with a Wald interval
  (unpooled variance, ``confint_proportions_2indep(method="wald")``) and the
  two-proportion z-test with the pooled variance (``proportions_ztest``);
- mean (and binary with CUPED): Welch's t-test and interval, unequal
  variances with Welch-Satterthwaite degrees of freedom
  (``ttest_ind(usevar="unequal")``);
- ratio: the difference of the two arms' ratios of means with the delta
  method variance and a normal interval and test.

The relative effect is ``arm / control - 1`` with a delta-method interval on
the ratio of the two means (not Fieller's). CUPED uses each metric's
pre-assignment value (:mod:`~workbench.models.experiments.moments`).
``mde`` is the smallest true difference the comparison would detect with
80% power at its own standard error: ``(z_(1 - alpha/2) + z_0.8) x std_err``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from workbench.data.contract import CONTROL_ARM
from workbench.models.experiments.moments import Moments, cuped_theta, estimate, moments, pooled
from workbench.tables.experiments import METRICS

POWER = 0.8
EFFECT_COLUMNS = [
    "metric", "arm", "kind", "test", "n_control", "n_arm", "control_value", "arm_value", "effect", "std_err", "df",
    "ci_low", "ci_high", "relative_effect", "relative_ci_low", "relative_ci_high", "p_value", "cuped", "theta",
    "variance_reduction", "cap", "cap_denominator", "mde",
]


def quantile(alpha: float, df: float = np.inf) -> float:
    """The two-sided critical value: normal, or Student's t with ``df``."""
    return float(stats.norm.ppf(1 - alpha / 2) if not np.isfinite(df) else stats.t.ppf(1 - alpha / 2, df))


def welch_df(v1: float, n1: float, v0: float, n0: float) -> float:
    """Welch-Satterthwaite degrees of freedom from the two variances of the means."""
    den = v1**2 / (n1 - 1) + v0**2 / (n0 - 1)
    return float((v1 + v0) ** 2 / den) if den > 0 else np.inf


def difference(m1: Moments, m0: Moments, kind: str, theta: float | None, center: float) -> dict:
    """Estimates and variances of the two arms' values and their difference:
    Wald (plug-in) variances for a binary metric without CUPED, n - 1 ones
    otherwise; elementwise when the moments and theta have a leading axis."""
    if theta is None:
        ddof = 0 if kind == "binary" else 1
    else:  # elementwise (one theta per look): NaN means no adjustment on that look
        ddof = np.where(np.isfinite(theta) | (kind != "binary"), 1, 0)
    e1, v1 = estimate(m1, theta, center, ddof=ddof)
    e0, v0 = estimate(m0, theta, center, ddof=ddof)
    return {"arm_value": e1, "control_value": e0, "var_arm": v1, "var_control": v0, "effect": e1 - e0, "variance": v1 + v0}


def relative(e1: float, v1: float, e0: float, v0: float) -> tuple[float, float]:
    """arm / control - 1 and its delta-method variance (independent arms)."""
    if not np.isfinite(e0) or e0 == 0:
        return np.nan, np.nan
    return e1 / e0 - 1, v1 / e0**2 + e1**2 * v0 / e0**4


def metric_theta(rows: pd.DataFrame | Moments, metric: str, cuped: bool) -> tuple[float | None, float]:
    """CUPED's theta and the pooled pre-assignment value for one metric from
    its rows of sufficient statistics (or their pooled moments); (None, NaN):
    no CUPED."""
    if not cuped or METRICS[metric].pre is None:
        return None, np.nan
    pool = rows if isinstance(rows, Moments) else pooled(rows)
    theta = cuped_theta(pool)
    return theta, (pool.pre_ratio if theta is not None else np.nan)


def compare(m1: Moments, m0: Moments, kind: str, theta: float | None, center: float, alpha: float) -> dict:
    """One arm against control: every column of :data:`EFFECT_COLUMNS` but the labels."""
    d = difference(m1, m0, kind, theta, center)
    se = float(np.sqrt(d["variance"])) if np.isfinite(d["variance"]) else np.nan
    out = {"n_control": int(m0.n), "n_arm": int(m1.n), "control_value": d["control_value"], "arm_value": d["arm_value"],
           "effect": d["effect"], "std_err": se, "cuped": theta is not None, "theta": theta if theta is not None else np.nan}
    if kind == "binary" and theta is None:
        out["test"], df = "two-proportion z (pooled)", np.inf
        n1, n0 = m1.n, m0.n
        p = (m1.mean[0] * n1 + m0.mean[0] * n0) / (n1 + n0)
        se0 = np.sqrt(p * (1 - p) * (1 / n1 + 1 / n0)) if n1 > 0 and n0 > 0 else np.nan
        p_value = float(2 * stats.norm.sf(abs(d["effect"] / se0))) if se0 > 0 else np.nan
    elif kind == "ratio":
        out["test"], df = "z (delta method)", np.inf
        p_value = float(2 * stats.norm.sf(abs(d["effect"] / se))) if se > 0 else np.nan
    else:
        out["test"] = "Welch t" + (" (CUPED)" if theta is not None else "")
        df = welch_df(d["var_arm"], m1.n, d["var_control"], m0.n)
        p_value = float(2 * stats.t.sf(abs(d["effect"] / se), df)) if se > 0 else np.nan
    q = quantile(alpha, df)
    out.update(df=df, ci_low=d["effect"] - q * se, ci_high=d["effect"] + q * se, p_value=p_value,
               mde=(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(POWER)) * se)
    rel, rel_var = relative(d["arm_value"], d["var_arm"], d["control_value"], d["var_control"])
    rs = np.sqrt(rel_var) if np.isfinite(rel_var) else np.nan
    zq = quantile(alpha)
    out.update(relative_effect=rel, relative_ci_low=rel - zq * rs, relative_ci_high=rel + zq * rs)
    if theta is not None:
        raw = _raw_n1(m1, m0)
        out["variance_reduction"] = 1 - d["variance"] / raw["variance"] if raw["variance"] > 0 else np.nan
    else:
        out["variance_reduction"] = 0.0
    return out


def _raw_n1(m1, m0):
    """The unadjusted variance with divisor n - 1, the scale CUPED's variance is on."""
    _, v1 = estimate(m1, None, np.nan, ddof=1)
    _, v0 = estimate(m0, None, np.nan, ddof=1)
    return {"variance": v1 + v0}


def fixed_horizon_effects(arm_stats: pd.DataFrame, *, metrics, cuped: bool = True, alpha: float = 0.05) -> tuple[pd.DataFrame, list[str]]:
    """One row per (metric, arm other than control) with the columns of
    :data:`EFFECT_COLUMNS`, and notes on what could not be estimated."""
    rows, notes, no_cuped = [], [], []
    for metric in metrics:
        kind = METRICS[metric].kind
        sub = arm_stats[arm_stats["metric"] == metric]
        by_arm = {str(r["arm"]): r for _, r in sub.iterrows()}
        control = by_arm.get(CONTROL_ARM)
        if control is None or control["n"] < 2:
            n0 = 0 if control is None else int(control["n"])
            notes.append(f"{metric}: not estimated: the control arm has {n0} user(s) with a known value (a full horizon "
                         "observed); it needs at least 2.")
            continue
        known = sub[sub["n"] > 0]
        theta, center = metric_theta(known, metric, cuped)
        if cuped and METRICS[metric].pre is not None and theta is None:
            no_cuped.append(metric)
        m0 = moments(control)
        for arm, r in by_arm.items():
            if arm == CONTROL_ARM:
                continue
            if r["n"] < 2:
                notes.append(f"{metric}: arm '{arm}' not estimated: {int(r['n'])} user(s) with a known value; it needs at least 2.")
                continue
            m1 = moments(r)
            if METRICS[metric].kind == "ratio" and (m1.mean[1] == 0 or m0.mean[1] == 0):
                notes.append(f"{metric}: arm '{arm}' not estimated: the denominator ({METRICS[metric].denominator}) is 0 "
                             "in an arm.")
                continue
            out = compare(m1, m0, kind, theta, center, alpha)
            if not (out["std_err"] > 0):
                notes.append(f"{metric}: arm '{arm}': no variance (every user has the same value), so no interval or test.")
            out.update(metric=metric, arm=arm, kind=kind, cap=float(r["cap_y"]) if pd.notna(r["cap_y"]) else np.nan,
                       cap_denominator=float(r["cap_d"]) if pd.notna(r["cap_d"]) else np.nan)
            rows.append(out)
    if no_cuped:
        notes.append(f"{NO_CUPED} {', '.join(no_cuped)}: their pre-assignment values do not vary (e.g. every user assigned "
                     "at signup has none), so they cannot reduce the variance; the unadjusted estimates are shown.")
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS), notes


NO_CUPED = "no CUPED for"


__all__ = ["EFFECT_COLUMNS", "compare", "difference", "fixed_horizon_effects", "metric_theta", "quantile", "relative",
           "welch_df"]

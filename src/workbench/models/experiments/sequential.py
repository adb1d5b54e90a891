"""Always-valid inference: confidence sequences for each effect, valid
however often the results are looked at.

The choice: the two-sided normal-mixture confidence sequence (Robbins 1970;
Howard, Ramdas, McAuliffe and Sekhon 2021, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", eq. (14) with the asymptotic
justification of Waudby-Smith et al. 2021), the same boundary as the
mixture sequential probability ratio test (mSPRT, Johari et al. 2017) that
Eppo and Statsig use. With ``V`` the variance of the effect estimate at a look
and ``tau^2`` the variance of the normal mixing distribution over effects
(the tuning parameter), the interval at that look is

    estimate +- sqrt( V (V + tau^2) / tau^2 * (2 log(1/alpha) + log((V + tau^2) / V)) )

and the always-valid p-value is ``min(1, 1/Lambda)`` (running minimum), with
``Lambda = sqrt(V / (V + tau^2)) exp(tau^2 estimate^2 / (2 V (V + tau^2)))``.

Tuning: ``tau^2 = s* x V_last``, where ``V_last`` is the variance at the last
look (the readout day) and ``s*`` minimises the half-width there
(``(1 + s) / s (2 log(1/alpha) + log(1 + s))``; about 8.2 at alpha = 0.05):
the sequence is tightest at the planned end and valid at every look before.
``V`` depends on the sample sizes and variances only, never on the
estimate, so this choice does not spend any of alpha.

Looks are days since the experiment started; at each look the effect is
estimated exactly as at the fixed horizon (same test family, same CUPED,
same caps) from the cumulative per-day sums of
``workbench.tables.experiment_daily``: the users whose value was known by
that day.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import optimize

from workbench.data.contract import CONTROL_ARM
from workbench.models.experiments.effects import difference, quantile
from workbench.models.experiments.moments import moments, theta_of
from workbench.tables.experiments import METRICS, SUMS

SEQUENTIAL_COLUMNS = ["metric", "arm", "day", "n_control", "n_arm", "estimate", "std_err", "ci_low", "ci_high",
                      "seq_ci_low", "seq_ci_high", "seq_p_value"]


@lru_cache(maxsize=32)
def mixture_scale(alpha: float) -> float:
    """s* = tau^2 / V at the look where the interval is to be narrowest."""
    a = np.log(1 / alpha)

    def width(log_s):
        s = np.exp(log_s)
        return (1 + s) / s * (2 * a + np.log1p(s))

    res = optimize.minimize_scalar(width, bounds=(-10, 10), method="bounded", options={"xatol": 1e-10})
    return float(np.exp(res.x))


def half_width(variance, tau2: float, alpha: float) -> np.ndarray:
    """Half-width of the normal-mixture confidence sequence at variance(s) ``variance``."""
    v = np.asarray(variance, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(v * (v + tau2) / tau2 * (2 * np.log(1 / alpha) + np.log((v + tau2) / v)))


def always_valid_p(estimate, variance, tau2: float) -> np.ndarray:
    """min(1, 1 / Lambda) at each look, then the running minimum over looks."""
    est = np.asarray(estimate, dtype=float)
    v = np.asarray(variance, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_lam = 0.5 * np.log(v / (v + tau2)) + tau2 * est**2 / (2 * v * (v + tau2))
        p = np.minimum(1.0, np.exp(-log_lam))
    p = np.where(np.isfinite(p), p, 1.0)
    return np.minimum.accumulate(p)


def _cumulative(daily: pd.DataFrame, metric: str, days: np.ndarray) -> dict:
    """arm -> frame of cumulative sums on every look day (carried forward; zero before the arm's first user)."""
    sub = daily[daily["metric"] == metric]
    out = {}
    for arm, g in sub.groupby("arm", sort=True):
        g = g.set_index("day")[["n", *SUMS]].sort_index()
        out[str(arm)] = g.reindex(days).ffill().fillna(0.0)
    return out


def sequential_effects(daily: pd.DataFrame, *, metrics, cuped: bool = True, alpha: float = 0.05) -> pd.DataFrame:
    """Per (metric, arm other than control, day since start): the effect and
    its variance on the users known by that day (estimated as at the fixed
    horizon, CUPED's theta from the pooled sums of that day), the naive
    fixed-horizon interval (valid for one look only) and the always-valid
    interval and p-value. Looks begin on the first day both arms have 2 users."""
    rows = []
    q = quantile(alpha)
    for metric in metrics:
        kind = METRICS[metric].kind
        days = np.sort(daily.loc[daily["metric"] == metric, "day"].unique())
        cum = _cumulative(daily, metric, days) if len(days) else {}
        if CONTROL_ARM not in cum:
            continue
        pool = moments(sum(cum.values()))
        theta = theta_of(pool) if cuped and METRICS[metric].pre is not None else None
        center = pool.pre_ratio
        m0 = moments(cum[CONTROL_ARM])
        for arm, g in cum.items():
            if arm == CONTROL_ARM:
                continue
            m1 = moments(g)
            d = difference(m1, m0, kind, theta, center)
            est, var = np.asarray(d["effect"], dtype=float), np.asarray(d["variance"], dtype=float)
            ok = np.isfinite(est) & np.isfinite(var) & (var > 0)
            if not ok.any():
                continue
            tau2 = mixture_scale(alpha) * var[ok][-1]
            se = np.sqrt(var)
            hw = half_width(var, tau2, alpha)
            p = np.full(len(days), np.nan)
            p[ok] = always_valid_p(est[ok], var[ok], tau2)
            frame = pd.DataFrame({"metric": metric, "arm": arm, "day": days.astype(int), "n_control": m0.n.astype(int),
                                  "n_arm": m1.n.astype(int), "estimate": est, "std_err": se, "ci_low": est - q * se,
                                  "ci_high": est + q * se, "seq_ci_low": est - hw, "seq_ci_high": est + hw, "seq_p_value": p})
            rows.append(frame[ok])
    if not rows:
        return pd.DataFrame(columns=SEQUENTIAL_COLUMNS)
    return pd.concat(rows, ignore_index=True)[SEQUENTIAL_COLUMNS]


__all__ = ["SEQUENTIAL_COLUMNS", "always_valid_p", "half_width", "mixture_scale", "sequential_effects"]

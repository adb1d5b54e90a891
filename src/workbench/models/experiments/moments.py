"""Means, variances and the delta method from an arm's sufficient statistics.

Every fixed-horizon metric is a ratio of means ``R = mean(y) / mean(d)``
over the users of an arm (``d = 1`` for binary and mean metrics), with an
optional pre-assignment covariate ``R_x = mean(x) / mean(v)`` (``v = 1`` unless
the metric is a ratio). The engine gives, per arm, ``n`` and the sums and
sums of products of (y, d, x, v) (``workbench.tables.experiment_arm_stats``);
from them come the means, the sample covariance matrix (divisor n - 1) and,
by the delta method, the variance of ``R``: ``g' S g / n`` with
``g = (1 / mean d, -R / mean d, 0, 0)``.

CUPED (Deng et al. 2013) on these statistics: ``R_adj = R - theta (R_x -
pooled R_x)`` with ``theta = g' S h / h' S h`` (``h`` the gradient of
``R_x``), ``S`` the covariance over all arms pooled; for a mean metric that
is the pooled OLS slope of y on x, as :func:`~workbench.models.experiments.cuped`
computes it from one row per user. Its variance is ``(g - theta h)' S_arm
(g - theta h) / n``; ``theta`` is treated as known (it converges at the
1/sqrt(n) rate and changes no first-order variance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.tables.experiments import SUMS

_PAIRS = {"yy": (0, 0), "dd": (1, 1), "xx": (2, 2), "vv": (3, 3), "yd": (0, 1), "yx": (0, 2), "yv": (0, 3),
          "dx": (1, 2), "dv": (1, 3), "xv": (2, 3)}


@dataclass(frozen=True)
class Moments:
    """n, the means of (y, d, x, v) and their sample covariance (divisor n - 1)."""

    n: float
    mean: np.ndarray
    cov: np.ndarray

    @property
    def ratio(self) -> float:
        return self.mean[0] / self.mean[1] if self.mean[1] != 0 else np.nan

    @property
    def pre_ratio(self) -> float:
        return self.mean[2] / self.mean[3] if self.mean[3] != 0 else np.nan

    def grad(self) -> np.ndarray:
        """Gradient of R = mean y / mean d with respect to the four means."""
        r = self.ratio
        return np.array([1.0, -r, 0.0, 0.0]) / self.mean[1] if self.mean[1] != 0 else np.full(4, np.nan)

    def pre_grad(self) -> np.ndarray:
        r = self.pre_ratio
        return np.array([0.0, 0.0, 1.0, -r]) / self.mean[3] if self.mean[3] != 0 else np.full(4, np.nan)


def sums_of(row) -> tuple[float, np.ndarray, np.ndarray]:
    """n, the four sums and the 4 x 4 matrix of sums of products from one row of sufficient statistics."""
    n = float(row["n"])
    s = np.array([float(row["sum_y"]), float(row["sum_d"]), float(row["sum_x"]), float(row["sum_v"])])
    p = np.zeros((4, 4))
    for key, (i, j) in _PAIRS.items():
        p[i, j] = p[j, i] = float(row[f"sum_{key}"])
    return n, s, p


def moments_from_sums(n: float, s: np.ndarray, p: np.ndarray) -> Moments:
    if n <= 0:
        return Moments(n=n, mean=np.full(4, np.nan), cov=np.full((4, 4), np.nan))
    mean = s / n
    cov = (p - n * np.outer(mean, mean)) / (n - 1) if n > 1 else np.full((4, 4), np.nan)
    # sums of products minus n mean^2 can come out a rounding error below 0 for a constant column
    d = np.diag(cov).copy()
    d[(d < 0) & (d > -1e-9 * (1 + np.abs(np.diag(p)) / max(n, 1)))] = 0.0
    cov[np.diag_indices(4)] = d
    return Moments(n=n, mean=mean, cov=cov)


def moments(row) -> Moments:
    """:class:`Moments` of one row of ``experiment_arm_stats``."""
    return moments_from_sums(*sums_of(row))


def pooled(rows: pd.DataFrame) -> Moments:
    """:class:`Moments` of several rows (arms) together: their sums added."""
    n, s, p = 0.0, np.zeros(4), np.zeros((4, 4))
    for _, row in rows.iterrows():
        n_, s_, p_ = sums_of(row)
        n, s, p = n + n_, s + s_, p + p_
    return moments_from_sums(n, s, p)


def cuped_theta(pool: Moments) -> float | None:
    """The CUPED coefficient from the pooled moments; None when the
    pre-assignment value does not vary (nothing to adjust with)."""
    g, h = pool.grad(), pool.pre_grad()
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(h))):
        return None
    vh = float(h @ pool.cov @ h)
    if not np.isfinite(vh) or vh <= 1e-12 * max(1.0, abs(float(g @ pool.cov @ g))):
        return None
    return float(g @ pool.cov @ h) / vh


def estimate(m: Moments, theta: float | None = None, pre_center: float = np.nan, *, ddof: int = 1) -> tuple[float, float]:
    """(R or its CUPED version, variance of it) for one arm. ``ddof=0`` gives
    the plug-in variance (for a proportion: p (1 - p) / n, the Wald one)."""
    if m.n < 2 or m.mean[1] == 0:
        return np.nan, np.nan
    g = m.grad()
    est = m.ratio
    if theta is not None:
        g = g - theta * m.pre_grad()
        est = est - theta * (m.pre_ratio - pre_center)
    var = float(g @ m.cov @ g) / m.n
    if ddof == 0:
        var *= (m.n - 1) / m.n
    return float(est), max(var, 0.0)


__all__ = ["Moments", "SUMS", "cuped_theta", "estimate", "moments", "moments_from_sums", "pooled", "sums_of"]

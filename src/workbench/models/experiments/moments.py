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


def _quad(a, cov, b):
    """a' cov b over the last axes (batched)."""
    return np.einsum("...i,...ij,...j->...", a, cov, b)


def _ratio(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


@dataclass(frozen=True)
class Moments:
    """n, the means of (y, d, x, v) and their sample covariance (divisor n - 1);
    arrays may carry leading axes (e.g. one entry per day) and every method
    works elementwise over them."""

    n: np.ndarray
    mean: np.ndarray
    cov: np.ndarray

    @property
    def ratio(self):
        return _ratio(self.mean[..., 0], self.mean[..., 1])

    @property
    def pre_ratio(self):
        return _ratio(self.mean[..., 2], self.mean[..., 3])

    def grad(self) -> np.ndarray:
        """Gradient of R = mean y / mean d with respect to the four means."""
        md, r = self.mean[..., 1], self.ratio
        zero = np.zeros_like(r)
        return np.stack([_ratio(1.0, md), -_ratio(r, md), zero, zero], axis=-1)

    def pre_grad(self) -> np.ndarray:
        mv, r = self.mean[..., 3], self.pre_ratio
        zero = np.zeros_like(r)
        return np.stack([zero, zero, _ratio(1.0, mv), -_ratio(r, mv)], axis=-1)


def sums_of(row) -> tuple[float, np.ndarray, np.ndarray]:
    """n, the four sums and the 4 x 4 matrix of sums of products from one row
    of sufficient statistics (or, from a frame, arrays with one entry per row)."""
    n = np.asarray(row["n"], dtype=float)
    s = np.stack([np.asarray(row[f"sum_{k}"], dtype=float) for k in "ydxv"], axis=-1)
    p = np.zeros(n.shape + (4, 4))
    for key, (i, j) in _PAIRS.items():
        p[..., i, j] = p[..., j, i] = np.asarray(row[f"sum_{key}"], dtype=float)
    return n, s, p


def moments_from_sums(n, s, p) -> Moments:
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n[..., None] > 0, s / np.where(n > 0, n, 1.0)[..., None], np.nan)
        cov = (p - n[..., None, None] * mean[..., :, None] * mean[..., None, :]) / np.where(n > 1, n - 1, np.nan)[..., None, None]
    # sums of products minus n mean^2 can come out a rounding error below 0 for a constant column
    diag = np.diagonal(cov, axis1=-2, axis2=-1).copy()
    tiny = (diag < 0) & (diag > -1e-9 * (1 + np.abs(np.diagonal(p, axis1=-2, axis2=-1)) / np.maximum(n, 1)[..., None]))
    diag[tiny] = 0.0
    idx = np.arange(4)
    cov[..., idx, idx] = diag
    return Moments(n=n, mean=mean, cov=cov)


def moments(row) -> Moments:
    """:class:`Moments` of one row of ``experiment_arm_stats`` (or of each row of a frame)."""
    return moments_from_sums(*sums_of(row))


def pooled(rows: pd.DataFrame) -> Moments:
    """:class:`Moments` of several rows (arms) together: their sums added."""
    n, s, p = sums_of(rows)
    return moments_from_sums(n.sum(), s.sum(axis=0), p.sum(axis=0))


def theta_of(pool: Moments) -> np.ndarray:
    """The CUPED coefficient (elementwise); NaN where the pre-assignment value does not vary."""
    g, h = pool.grad(), pool.pre_grad()
    with np.errstate(invalid="ignore"):
        vh, vg, gh = _quad(h, pool.cov, h), _quad(g, pool.cov, g), _quad(g, pool.cov, h)
        ok = np.isfinite(vh) & np.isfinite(gh) & (vh > 1e-12 * np.maximum(1.0, np.abs(vg)))
        return np.where(ok, gh / np.where(ok, vh, 1.0), np.nan)


def cuped_theta(pool: Moments) -> float | None:
    """The CUPED coefficient from the pooled moments; None when the
    pre-assignment value does not vary (nothing to adjust with)."""
    t = float(theta_of(pool))
    return t if np.isfinite(t) else None


def estimate(m: Moments, theta=None, pre_center=np.nan, *, ddof=1):
    """(R or its CUPED version, variance of it) for one arm, elementwise.
    ``theta`` None or NaN: no adjustment. ``ddof=0`` gives the plug-in
    variance (for a proportion: p (1 - p) / n, the Wald one)."""
    g, est = m.grad(), m.ratio
    if theta is not None:
        th = np.asarray(theta, dtype=float)
        use = np.isfinite(th)
        th0 = np.where(use, th, 0.0)
        g = g - th0[..., None] * np.nan_to_num(m.pre_grad())
        with np.errstate(invalid="ignore"):
            est = est - np.where(use, th0 * (m.pre_ratio - pre_center), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = _quad(g, m.cov, g) / m.n
        var = var * np.where(np.asarray(ddof) == 0, (m.n - 1) / m.n, 1.0)
    bad = (m.n < 2) | (m.mean[..., 1] == 0) | ~np.isfinite(est)
    est, var = np.where(bad, np.nan, est), np.where(bad, np.nan, np.maximum(var, 0.0))
    if np.ndim(est) == 0:
        return float(est), float(var)
    return est, var


__all__ = ["Moments", "SUMS", "cuped_theta", "estimate", "moments", "moments_from_sums", "pooled", "sums_of", "theta_of"]

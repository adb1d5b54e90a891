"""Delta-method intervals for predictions that are smooth functions of
estimated parameters.

A prediction ``v(theta)`` (one value per customer pattern) gets its Jacobian
``J = dv/dtheta`` by central differences in ``theta`` (step 1e-5: a relative
error near 1e-10), and a standard error on a transformed scale where its
sampling distribution is closer to normal: ``log`` for positive quantities
(expected purchases, spend, CLV), ``logit`` for probabilities (P(alive)).
``var(g(v)) = g'(v)^2 J cov J'``; the interval ``g(v) +- z se`` is
transformed back, so it stays positive (or inside (0, 1)). Independent
models (purchases and spend are fitted separately) add their variances on
the log scale of a product.
"""

from __future__ import annotations

import numpy as np
from scipy import special

STEP = 1e-5


def jacobian(fn, theta: np.ndarray, *, step: float = STEP) -> tuple[np.ndarray, np.ndarray]:
    """``(fn(theta), J)`` with ``J[..., j] = d fn / d theta_j`` by central differences."""
    theta = np.asarray(theta, dtype=float)
    value = np.asarray(fn(theta), dtype=float)
    J = np.empty(value.shape + (len(theta),))
    for j in range(len(theta)):
        e = np.zeros_like(theta)
        e[j] = step
        J[..., j] = (np.asarray(fn(theta + e), dtype=float) - np.asarray(fn(theta - e), dtype=float)) / (2 * step)
    return value, J


def variance(J: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``diag(J cov J')`` for each row of ``J`` (rows x parameters)."""
    return np.maximum(np.einsum("...i,ij,...j->...", J, cov, J), 0.0)


def log_interval(value, var_log, z: float):
    """Interval ``value * exp(-+ z sqrt(var_log))`` (0 stays 0)."""
    value = np.asarray(value, dtype=float)
    se = np.sqrt(np.asarray(var_log, dtype=float))
    with np.errstate(invalid="ignore", over="ignore"):
        lo, hi = value * np.exp(-z * se), value * np.exp(z * se)
    return np.where(value > 0, lo, value), np.where(value > 0, hi, value)


def log_variance(value, J, cov) -> np.ndarray:
    """Variance of ``log(value)`` by the delta method (0 where value is 0)."""
    value = np.asarray(value, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = variance(J, cov) / value**2
    return np.where(value > 0, v, 0.0)


def logit_interval(prob, J, cov, z: float):
    """Interval for a probability on the logit scale; 0 and 1 exactly (e.g. BG/NBD's P(alive) of a
    customer without repeat purchases) get a degenerate interval."""
    p = np.asarray(prob, dtype=float)
    inside = (p > 1e-12) & (p < 1 - 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(variance(J, cov)) / (p * (1 - p))
        lg = special.logit(p)
        lo, hi = special.expit(lg - z * se), special.expit(lg + z * se)
    return np.where(inside, lo, p), np.where(inside, hi, p)

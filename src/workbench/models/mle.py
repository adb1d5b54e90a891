"""Maximum likelihood on small sufficient-statistic tables: the optimiser, the
covariance of the estimates and the parameter table shared by the CLV models
(``workbench.models.clv``) and the sBG retention model.

A model hands :class:`Objective` a function of the parameter vector ``theta``
(log-parameters, and covariate coefficients where a model has them) that
returns the log-likelihood of each row, optionally with each row's gradient
with respect to ``theta``; rows carry frequency weights (customers sharing a
pattern). :func:`maximize` runs BFGS, polishes with Newton steps on a
numerical Hessian (``statsmodels.tools.numdiff``) and inverts the observed
information for the covariance of ``theta``; a model that supplies its exact
Hessian (``Objective(..., hessian=...)``) is fitted by Newton steps on it
instead, with BFGS only as the fallback.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats
from statsmodels.tools import numdiff

from workbench.errors import ModelError, ParameterError, WorkbenchWarning
from workbench.models.results import summary_frame

#: every element of theta is kept in [-BOUND, BOUND] (a log-parameter of 25 is a factor e^25)
BOUND = 25.0
#: finite-difference step in theta (gradient and Hessian share the points)
STEP = 1e-4


class FitWarning(WorkbenchWarning):
    """A fit is valid but deserves a second look (imprecise optimum, no standard errors)."""


@dataclass
class Fit:
    theta: np.ndarray  # estimates
    cov: np.ndarray  # covariance of theta (total information inverted)
    loglik: float
    converged: bool
    iterations: int
    message: str
    hessian: np.ndarray  # of the mean negative log-likelihood in theta
    nfev: int


class Objective:
    """Mean negative log-likelihood over ``theta``, memoised (the Hessian stencil reuses the
    gradient's points).

    ``loglik(theta)`` returns the per-row log-likelihood, or with ``gradient=True`` a pair
    (per-row log-likelihood, per-row gradient with respect to theta as an ``n x k`` array, or the
    gradient's total over the rows weighted by ``weights`` as a ``k``-vector).
    ``weights`` are the rows' frequency weights; ``total`` (default their sum) is the number of
    independent units the covariance refers to. ``hessian`` (optional) returns, for ``theta``, the
    weighted totals ``(sum of w ll, its gradient, its Hessian)`` with respect to theta: then the
    Hessian is exact (not by differences) and a warm-started fit takes Newton steps on it."""

    def __init__(self, loglik, weights, *, gradient: bool = False, total: float | None = None, hessian=None):
        self._loglik = loglik
        self._totals = hessian
        weights = np.asarray(weights, dtype=float)
        self.wsum = float(weights.sum())
        self.w = weights / self.wsum
        self.total = float(weights.sum()) if total is None else float(total)
        self.has_grad = gradient
        self._cache: dict[bytes, tuple[float, np.ndarray | None]] = {}
        self.nfev = 0

    def _eval(self, theta):
        theta = np.asarray(theta, dtype=float)
        key = theta.tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if not np.all(np.abs(theta) <= BOUND):
            return np.inf, None
        self.nfev += 1
        with np.errstate(all="ignore"):
            out = self._loglik(theta)
        # weighted sums by elementwise products, not BLAS dot products: multithreaded BLAS costs more
        # than it saves on these shapes (and spins idle threads on a busy machine)
        if self.has_grad:
            ll, g = out
            val = -float(np.sum(self.w * ll))
            grad = -np.asarray(g, dtype=float) / self.wsum if np.ndim(g) == 1 else -np.sum(g * self.w[:, None], axis=0)
        else:
            val, grad = -float(np.sum(self.w * out)), None
        if not np.isfinite(val) or (grad is not None and not np.all(np.isfinite(grad))):
            val, grad = np.inf, None
        if len(self._cache) > 512:
            self._cache.clear()
        self._cache[key] = (val, grad)
        return val, grad

    def f(self, theta) -> float:
        return self._eval(theta)[0]

    def grad(self, theta) -> np.ndarray:
        val, g = self._eval(theta)
        if g is not None:
            return g
        if self.has_grad:  # infinite value: no gradient; push back towards the start
            return np.zeros_like(np.asarray(theta, dtype=float))
        e = np.diag(np.full(len(theta), STEP))
        return np.array([(self.f(theta + e[i]) - self.f(theta - e[i])) / (2 * STEP) for i in range(len(theta))])

    @property
    def exact(self) -> bool:
        """Whether the Hessian is exact (the model supplies it)."""
        return self._totals is not None

    def second_order(self, theta):
        """``(f, gradient, Hessian)`` of the mean negative log-likelihood in one pass (exact; needs
        ``hessian``); ``(inf, None, None)`` where it is not finite."""
        theta = np.asarray(theta, dtype=float)
        if not np.all(np.abs(theta) <= BOUND):
            return np.inf, None, None
        self.nfev += 1
        with np.errstate(all="ignore"):
            ll, g, H = self._totals(theta)
        f, g, H = -float(ll) / self.wsum, -np.asarray(g, dtype=float) / self.wsum, -np.asarray(H, dtype=float) / self.wsum
        if not (np.isfinite(f) and np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
            return np.inf, None, None
        self._cache[theta.tobytes()] = (f, g)
        return f, g, H

    def hessian(self, theta) -> np.ndarray:
        if self.exact:
            H = self.second_order(theta)[2]
            if H is not None:
                return (H + H.T) / 2
        if self.has_grad:  # forward differences of the analytic gradient (error ~1e-5 relative)
            H = numdiff.approx_fprime(theta, self.grad, epsilon=1e-5, centered=False)
        else:
            H = numdiff.approx_hess2(theta, self.f, epsilon=np.full(len(theta), STEP))
        return (H + H.T) / 2


def on_log_scale(loglik_natural, theta):
    """Evaluate ``loglik_natural(params) -> (ll, grad wrt params)`` at ``params = exp(theta)`` and
    return ``(ll, grad wrt theta)`` (the chain rule: times the parameters)."""
    params = np.exp(theta)
    ll, g = loglik_natural(params)
    return ll, g * params


def maximize(obj: Objective, theta0, names, func: str, *, hess0: np.ndarray | None = None) -> Fit:
    """Maximise the likelihood over ``theta``: BFGS from ``theta0``; or, for a warm start that comes
    with a coarse fit's Hessian ``hess0``, BFGS started from that curvature (numerical gradient) or
    one Newton step on it (analytic gradient). Then Newton steps on the numerical Hessian until the
    step is below 1e-7. The inverse Hessian at the optimum, divided by ``obj.total``, is the
    covariance of ``theta``.

    With an exact Hessian (``obj.exact``) Newton steps on it come first (:func:`_newton`); the path
    above runs only if they fail.

    Raises ModelError when the likelihood is nowhere finite or an element of theta runs to the edge
    of the allowed range (the data do not identify the model); warns (:class:`FitWarning`) when the
    Hessian is not positive definite or the gradient at the end is not small."""
    theta = np.asarray(theta0, dtype=float)
    message, iterations, converged = "", 0, True
    newton = _newton(obj, theta) if obj.exact else None  # exact Hessian: Newton first, BFGS if it fails
    if newton is not None:
        return _finish(obj, *newton, message, names, func)
    if hess0 is None:
        # BFGS (plain numpy); the objective is +inf outside [-25, 25] in every element, which keeps
        # the search inside. (L-BFGS-B would do the same, but scipy's implementation calls
        # multithreaded BLAS on 4-vectors, which costs more than the likelihood on a busy machine.)
        res = optimize.minimize(obj.f, theta, jac=obj.grad, method="BFGS", options={"maxiter": 2000, "gtol": 1e-8})
        theta, message, iterations = res.x, str(res.message), int(res.nit)
        if not np.isfinite(res.fun):
            raise ModelError(f"{func}: the log-likelihood is not finite at any parameters tried; check the summary's values (T and recency in one time unit).")
    elif not obj.has_grad:  # warm start, numerical gradient: BFGS from the coarse fit's curvature
        inv0 = np.linalg.inv(hess0)
        try:
            res = optimize.minimize(
                obj.f, theta, jac=obj.grad, method="BFGS", options={"hess_inv0": (inv0 + inv0.T) / 2, "gtol": 1e-9, "xrtol": 1e-9, "maxiter": 200}
            )
            if np.isfinite(res.fun) and res.fun <= obj.f(theta):
                theta, message, iterations = res.x, str(res.message), int(res.nit)
        except (ValueError, np.linalg.LinAlgError):
            pass
    else:  # warm start, analytic gradient: one Newton step on the coarse curvature
        step = -np.linalg.solve(hess0, obj.grad(theta))
        if np.all(np.isfinite(step)) and obj.f(theta + step) < obj.f(theta):
            theta = theta + step
    H = obj.hessian(theta)
    start = theta.copy()
    for _ in range(50):  # Newton polish with the fixed Hessian
        g = obj.grad(theta)
        try:
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        f0, t = obj.f(theta), 1.0
        while t > 1e-4 and not obj.f(theta + t * step) <= f0 + 1e-15 * abs(f0):
            t /= 2
        if t <= 1e-4:
            break
        theta = np.clip(theta + t * step, -BOUND, BOUND)
        iterations += 1
        if np.max(np.abs(t * step)) < 1e-7:
            break
    if np.max(np.abs(theta - start)) > 1e-4:
        H = obj.hessian(theta)  # the Hessian where we ended (for the standard errors)
    return _finish(obj, theta, H, obj.f(theta), obj.grad(theta), iterations, converged, message, names, func)


#: Newton on the exact Hessian stops after a step ``s_k`` below NEWTON_STEP (largest element, in
#: theta) whose successor, predicted by quadratic convergence as ``C |s_k|^2`` with ``C = |s_k| /
#: |s_(k-1)|^2`` from the last two steps, is below NEWTON_TOL; or after any step below NEWTON_TOL
NEWTON_STEP = 1e-4
NEWTON_TOL = 1e-8


def _newton(obj: Objective, theta):
    """Newton steps on the exact Hessian from ``theta``, halving a step that does not lower the
    objective. Returns ``(theta, H, f, g, iterations, True)`` once the error left is below
    :data:`NEWTON_TOL` (``f`` and ``g`` at the final ``theta`` from the quadratic model at the last
    point evaluated, ``H`` there; the gradient check of :func:`_finish` is then met by construction,
    convergence being certified by the step sizes), or None (Hessian not positive definite, no
    progress) for the general path to take over."""
    theta = np.asarray(theta, dtype=float)
    f_prev, theta_prev, step_prev, halvings, size_prev = np.inf, None, None, 0, np.inf
    for it in range(50):
        f, g, H = obj.second_order(theta)
        if step_prev is not None and not f <= f_prev + 1e-15 * abs(f_prev):
            halvings += 1
            if halvings > 30:
                return None
            step_prev = step_prev / 2
            theta = theta_prev + step_prev
            continue
        if g is None:
            return None
        try:
            if np.linalg.eigvalsh(H).min() <= 0:
                return None
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            return None
        theta_prev, f_prev, step_prev = theta, f, step
        theta = np.clip(theta + step, -BOUND, BOUND)
        size = float(np.max(np.abs(step)))
        if size < NEWTON_TOL or (size < NEWTON_STEP and halvings == 0 and size**3 / size_prev**2 < NEWTON_TOL):
            return theta, H, f + g @ step + 0.5 * step @ H @ step, g + H @ step, it + 1, True
        size_prev = size
    return None


def _finish(obj: Objective, theta, H, f, g, iterations, converged, message, names, func) -> Fit:
    """Check the optimum (interior, positive definite, small gradient) and invert the information."""
    at_bound = np.abs(theta) > BOUND - 0.5
    if at_bound.any():
        bad = ", ".join(f"{names[i]} (log scale {theta[i]:+.1f})" for i in np.flatnonzero(at_bound))
        raise ModelError(
            f"{func}: no interior maximum: {bad} ran to the edge of the allowed range. The data do not identify "
            "the model (e.g. almost no repeat purchases, or no sign of customers dropping out): use a longer "
            "calibration period or another model."
        )
    info = H * obj.total
    try:
        evals = np.linalg.eigvalsh(info)
        if evals.min() <= 0:
            raise np.linalg.LinAlgError
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        converged = False
        cov = np.full((len(theta), len(theta)), np.nan)
        warnings.warn(f"{func}: the Hessian at the optimum is not positive definite; standard errors are not available.", FitWarning, stacklevel=4)
    if np.max(np.abs(g)) > 1e-6:
        converged = False
        warnings.warn(
            f"{func}: the optimiser stopped with gradient {np.max(np.abs(g)):.2g} (per customer); the estimates may be imprecise.", FitWarning, stacklevel=4
        )
    return Fit(theta, cov, -f * obj.total, converged, iterations, message, H, obj.nfev)


def params_table(names, theta, cov, level: float):
    """Parameters estimated on the log scale: natural-scale estimates, delta-method standard errors
    and log-scale Wald intervals transformed back (positive, asymmetric)."""
    est = np.exp(theta)
    se_log = np.sqrt(np.clip(np.diag(cov), 0, None))
    z = stats.norm.ppf(0.5 + level / 2)
    return summary_frame(names, est, est * se_log, np.exp(theta - z * se_log), np.exp(theta + z * se_log))


def check_level(level, func: str) -> float:
    """A confidence level strictly between 0 and 1."""
    try:
        level = float(level)
    except (TypeError, ValueError):
        level = float("nan")
    if not 0 < level < 1:
        raise ParameterError(f"{func}: level must be between 0 and 1 (e.g. 0.95), got {level!r}")
    return level


def z_value(level: float) -> float:
    """The two-sided standard normal quantile of a confidence level."""
    return float(stats.norm.ppf(0.5 + level / 2))


__all__ = ["BOUND", "Fit", "FitWarning", "Objective", "check_level", "maximize", "on_log_scale", "params_table", "z_value"]


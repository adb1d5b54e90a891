"""The propensity of having co-created (logistic regression), the checks that
make inverse probability weights trustworthy (separation, convergence), and
the overlap and balance summaries. Rows are users (``trials`` = 1) or
covariate patterns with counts (``trials`` users, ``treated`` of them
co-creators): the same likelihood, so the same estimates."""

from __future__ import annotations

import warnings

import numpy as np

from workbench.errors import ModelError, WorkbenchWarning


class OverlapWarning(WorkbenchWarning):
    """Co-creators and others barely overlap in their propensity: weights are extreme."""


def separating_columns(X: np.ndarray, names: list[str], treated: np.ndarray, trials: np.ndarray,
                       params: np.ndarray | None) -> list[str]:
    """Design columns that (nearly) decide the treatment: an indicator whose
    users are all treated or all untreated, or a numeric column whose
    standardized coefficient is huge."""
    out = []
    for k, name in enumerate(names):
        x = X[:, k]
        if np.isin(x, (0.0, 1.0)).all():
            for v in (1.0, 0.0):  # 0 on a category indicator: the reference level (or the other levels)
                sel = x == v
                n, n1 = trials[sel].sum(), treated[sel].sum()
                if n > 0 and n1 in (0, n):
                    out.append(f"{name} = {v:g} ({'all' if n1 == n else 'none'} of its {int(n):,} users co-created)")
        elif params is not None and (not np.isfinite(params[k + 1]) or abs(params[k + 1]) * np.std(x) > 10):
            out.append(f"{name} (coefficient {params[k + 1]:.3g})")
    return out


def propensity_model(X: np.ndarray, names: list[str], treated: np.ndarray, trials: np.ndarray, *, covariates: list[str],
                     treatment: str, where: str) -> np.ndarray:
    """Fitted propensity per row from a binomial GLM (logit) of ``treated``
    out of ``trials`` on an intercept and ``X``; a clear ModelError when it
    separates co-creators from others or does not converge."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationError, PerfectSeparationWarning

    exog = np.column_stack([np.ones(len(X)), X])
    treated = np.asarray(treated, dtype=float)
    trials = np.asarray(trials, dtype=float)
    model = f"the propensity model (logistic regression of {treatment!r} on {', '.join(covariates)})"
    todo = ("Drop or coarsen the covariate(s) named, pool their rare levels, or restrict the analysis to users whose "
            "covariates occur among both co-creators and others (or use trim=...).")

    def separation(params):
        culprits = separating_columns(X, names, treated, trials, params) or [f"the combination of {', '.join(covariates)}"]
        return ModelError(f"{where}: {model} separates co-creators from others perfectly or almost so: "
                          f"{'; '.join(culprits)}. Their propensities are 0 or 1, so inverse probability weights "
                          f"would be unbounded and the positivity assumption fails. {todo}")

    grouped = not np.all(trials == 1)
    with warnings.catch_warnings():
        # on counts per pattern a saturated model fits the observed shares exactly, which statsmodels takes for
        # perfect prediction; there the checks of the propensities below decide
        warnings.simplefilter("ignore" if grouped else "error", PerfectSeparationWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)  # checked below via fit.converged
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to separation; checked below
        try:
            endog = np.column_stack([treated, trials - treated]) if grouped else treated
            fit = sm.GLM(endog, exog, family=sm.families.Binomial()).fit(maxiter=100)
        except (PerfectSeparationWarning, PerfectSeparationError):
            raise separation(None) from None
    params = np.asarray(fit.params)
    ps = 1 / (1 + np.exp(-(exog @ params)))
    if not np.all(np.isfinite(params)) or not np.all(np.isfinite(ps)) or ((ps < 1e-8) | (ps > 1 - 1e-8)).any():
        raise separation(params)
    if not fit.converged:
        raise ModelError(f"{where}: {model} did not converge in 100 iterations, so the propensities and weights "
                         f"cannot be trusted. {todo}")
    return ps


def smd(x, t, w=None, n=None) -> float:
    """Standardized mean difference of ``x`` between ``t`` = 1 and 0, means
    weighted by ``w`` (default 1) times the row counts ``n`` (default 1); the
    denominator is the pooled sd of the unweighted groups (Austin 2009)."""
    n = np.ones(len(x)) if n is None else np.asarray(n, dtype=float)
    w = np.ones(len(x)) if w is None else np.asarray(w, dtype=float)
    g1, g0 = t == 1, t == 0
    m1 = np.average(x[g1], weights=(n * w)[g1])
    m0 = np.average(x[g0], weights=(n * w)[g0])
    v1 = np.average((x[g1] - np.average(x[g1], weights=n[g1])) ** 2, weights=n[g1])
    v0 = np.average((x[g0] - np.average(x[g0], weights=n[g0])) ** 2, weights=n[g0])
    sd = np.sqrt((v1 + v0) / 2)
    return float((m1 - m0) / sd) if sd > 0 else 0.0


def ess(w, n=None) -> float:
    """Effective sample size (sum w)^2 / sum w^2 over users (rows counted ``n`` times)."""
    w = np.asarray(w, dtype=float)
    n = np.ones(len(w)) if n is None else np.asarray(n, dtype=float)
    return float((n * w).sum() ** 2 / (n * w**2).sum()) if len(w) and (n * w**2).sum() > 0 else 0.0


def weighted_quantiles(values, counts, qs) -> np.ndarray:
    """Quantiles of ``values`` repeated ``counts`` times (the lower value at ties, as np.quantile's 'inverted_cdf')."""
    order = np.argsort(values, kind="stable")
    v, c = np.asarray(values, dtype=float)[order], np.asarray(counts, dtype=float)[order]
    cum = np.cumsum(c)
    return np.array([v[min(np.searchsorted(cum, q * cum[-1], side="left"), len(v) - 1)] for q in qs])


__all__ = ["OverlapWarning", "ess", "propensity_model", "separating_columns", "smd", "weighted_quantiles"]

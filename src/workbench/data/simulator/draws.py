"""Small, pure draws from the workbench's customer models, for planting truth
cheaply in model tests: BG/NBD and Pareto/NBD customer summaries (also with a
binary covariate), Gamma-Gamma spend, shifted-beta-geometric cohorts, and the
Bass diffusion curve.

Every function takes explicit parameters and a ``seed`` (an int or a
``numpy.random.Generator``) and returns plain numpy/pandas objects.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from workbench.errors import ParameterError


# ------------------------------------------------------------------ checks
def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer (or a numpy Generator), got {seed!r}.")
    return np.random.default_rng(int(seed))


def _positive(name: str, value, *, where: str, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{where}: {name} must be a number, got {value!r}.") from None
    ok = v >= 0 if allow_zero else v > 0
    if not np.isfinite(v) or not ok:
        need = ">= 0" if allow_zero else "> 0"
        raise ParameterError(f"{where}: {name} must be finite and {need}, got {value!r}.")
    return v


def _count(name: str, value, *, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ParameterError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _horizon(T, n: int, *, where: str) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(T, dtype=float), (n,)) if np.ndim(T) == 0 else np.asarray(T, dtype=float)
    if arr.shape != (n,):
        raise ParameterError(f"{where}: T must be a number or an array of length n={n}, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ParameterError(f"{where}: every T (observation length per customer) must be finite and > 0.")
    return np.array(arr, dtype=float)


# ------------------------------------------------------------------ Bass
def bass_cdf(t, p: float, q: float):
    """Bass share adopted by time ``t``: (1-exp(-(p+q)t)) / (1+(q/p)exp(-(p+q)t))."""
    e = np.exp(-(p + q) * np.asarray(t, dtype=float))
    return (1.0 - e) / (1.0 + (q / p) * e)


def bass_inverse_cdf(u, p: float, q: float):
    """The time by which a share ``u`` (0 <= u < 1) of the market has adopted."""
    u = np.asarray(u, dtype=float)
    return -np.log((1.0 - u) / (1.0 + u * q / p)) / (p + q)


def bass_peak_time(p: float, q: float) -> float:
    """Time of the Bass adoption peak, ln(q/p)/(p+q) (0 when q <= p)."""
    return float(np.log(q / p) / (p + q)) if q > p else 0.0


# ------------------------------------------------------------------ BG/NBD
def simulate_bgnbd_summary(n: int, r: float, alpha: float, a: float, b: float, T, seed) -> pd.DataFrame:
    """Draw ``n`` customer summaries from the BG/NBD model (Fader, Hardie & Lee 2005).

    Each customer has a Poisson purchase rate ``lambda ~ Gamma(r, rate=alpha)``
    and a dropout probability ``p ~ Beta(a, b)``; after every repeat purchase
    the customer drops out with probability ``p``. ``T`` (a number or one per
    customer) is the time from first purchase to the end of observation, in
    the same unit as ``1/alpha``. Draws are exact (no time grid): given the
    Poisson count on (0, T] the purchase times are uniform order statistics.

    Returns columns ``frequency`` (repeat purchases), ``recency`` (time of the
    last repeat purchase, 0 if none), ``T``, and the latent ``lambda_``, ``p``.
    """
    where = "simulate_bgnbd_summary"
    n = _count("n", n, where=where)
    r, alpha, a, b = (_positive(k, v, where=where) for k, v in (("r", r), ("alpha", alpha), ("a", a), ("b", b)))
    T = _horizon(T, n, where=where)
    rng = _rng(seed)
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    n_poisson = rng.poisson(lam * T)
    dies_after = rng.geometric(np.clip(p, 1e-300, 1.0))  # index of the repeat purchase after which it drops out
    x = np.minimum(n_poisson, dies_after)
    recency = np.zeros(n)
    has = x > 0
    # the x-th of N uniform order statistics on (0, T] is T * Beta(x, N - x + 1)
    recency[has] = T[has] * rng.beta(x[has], n_poisson[has] - x[has] + 1)
    return pd.DataFrame({"frequency": x.astype(np.int64), "recency": recency, "T": T, "lambda_": lam, "p": p})



# ------------------------------------------------------------------ Pareto/NBD
def simulate_pareto_nbd_summary(n: int, r: float, alpha: float, s: float, beta: float, T, seed) -> pd.DataFrame:
    """Draw ``n`` customer summaries from the Pareto/NBD model (Schmittlein et al. 1987).

    ``lambda ~ Gamma(r, rate=alpha)`` purchases per unit time while alive; the
    lifetime is exponential with rate ``mu ~ Gamma(s, rate=beta)``. Returns
    ``frequency``, ``recency``, ``T`` and the latent ``lambda_``, ``mu``, ``lifetime``.
    """
    where = "simulate_pareto_nbd_summary"
    n = _count("n", n, where=where)
    r, alpha, s, beta = (_positive(k, v, where=where) for k, v in (("r", r), ("alpha", alpha), ("s", s), ("beta", beta)))
    T = _horizon(T, n, where=where)
    rng = _rng(seed)
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n)
    mu = rng.gamma(shape=s, scale=1.0 / beta, size=n)
    lifetime = rng.exponential(1.0 / mu)
    alive_for = np.minimum(lifetime, T)
    x = rng.poisson(lam * alive_for)
    recency = np.zeros(n)
    has = x > 0
    recency[has] = alive_for[has] * rng.beta(x[has], 1.0)  # max of x uniforms
    return pd.DataFrame(
        {"frequency": x.astype(np.int64), "recency": recency, "T": T, "lambda_": lam, "mu": mu, "lifetime": lifetime}
    )


# ------------------------------------------------------------------ covariates
def _binary_covariate(n, share, where, rng) -> np.ndarray:
    try:
        share = float(share)
    except (TypeError, ValueError):
        share = float("nan")
    if not 0 < share < 1:
        raise ParameterError(f"{where}: share must be between 0 and 1 (the share of customers with z = 1), got {share!r}.")
    return rng.random(n) < share


def simulate_bgnbd_covariate_summary(
    n: int, r: float, alpha: float, a: float, b: float, T, seed, *, share: float, g_rate: float = 0.0, g_a: float = 0.0, g_b: float = 0.0
) -> pd.DataFrame:
    """BG/NBD customers with a binary covariate ``z ~ Bernoulli(share)`` acting as in Fader and
    Hardie (2007): ``alpha_i = alpha exp(-g_rate z)`` (so ``exp(g_rate)`` is the ratio of mean
    purchase rates), ``a_i = a exp(g_a z)``, ``b_i = b exp(g_b z)``; ``r, alpha, a, b`` are the
    z = 0 level's. Returns :func:`simulate_bgnbd_summary`'s columns plus ``z`` (0/1)."""
    where = "simulate_bgnbd_covariate_summary"
    n = _count("n", n, where=where)
    T = _horizon(T, n, where=where)
    rng = _rng(seed)
    z = _binary_covariate(n, share, where, rng)
    out = pd.DataFrame(index=np.arange(n), columns=["frequency", "recency", "T", "lambda_", "p"], dtype=float)
    for level in (False, True):
        sel = z == level
        if sel.any():
            k = float(level)
            part = simulate_bgnbd_summary(int(sel.sum()), r, alpha * np.exp(-g_rate * k), a * np.exp(g_a * k), b * np.exp(g_b * k), T[sel], rng)
            out.loc[sel] = part.to_numpy()
    return out.astype({"frequency": np.int64}).assign(z=z.astype(np.int64))


def simulate_pareto_nbd_covariate_summary(
    n: int, r: float, alpha: float, s: float, beta: float, T, seed, *, share: float, g_rate: float = 0.0, g_dropout: float = 0.0
) -> pd.DataFrame:
    """Pareto/NBD customers with a binary covariate ``z ~ Bernoulli(share)`` (Fader and Hardie 2007):
    ``alpha_i = alpha exp(-g_rate z)``, ``beta_i = beta exp(-g_dropout z)``, so ``exp(g_rate)`` and
    ``exp(g_dropout)`` are the ratios of mean purchase and drop-out rates. Returns
    :func:`simulate_pareto_nbd_summary`'s columns plus ``z``."""
    where = "simulate_pareto_nbd_covariate_summary"
    n = _count("n", n, where=where)
    T = _horizon(T, n, where=where)
    rng = _rng(seed)
    z = _binary_covariate(n, share, where, rng)
    out = pd.DataFrame(index=np.arange(n), columns=["frequency", "recency", "T", "lambda_", "mu", "lifetime"], dtype=float)
    for level in (False, True):
        sel = z == level
        if sel.any():
            k = float(level)
            part = simulate_pareto_nbd_summary(int(sel.sum()), r, alpha * np.exp(-g_rate * k), s, beta * np.exp(-g_dropout * k), T[sel], rng)
            out.loc[sel] = part.to_numpy()
    return out.astype({"frequency": np.int64}).assign(z=z.astype(np.int64))


# ------------------------------------------------------------------ Gamma-Gamma
def simulate_gamma_gamma_spend(frequency, p: float, q: float, gamma: float, seed) -> pd.DataFrame:
    """Draw each customer's average spend per transaction under Gamma-Gamma
    (Fader, Hardie & Lee 2005b): ``nu ~ Gamma(q, rate=gamma)`` per customer and
    each transaction ``~ Gamma(p, rate=nu)``; the mean of ``x`` transactions is
    drawn exactly as ``Gamma(p*x, rate=nu*x)``.

    ``frequency`` is the number of transactions averaged per customer (for
    Gamma-Gamma fits, the repeat transactions). Returns ``monetary_value``
    (NaN where frequency is 0) and the latent ``nu``.
    """
    where = "simulate_gamma_gamma_spend"
    p, q, gamma = (_positive(k, v, where=where) for k, v in (("p", p), ("q", q), ("gamma", gamma)))
    x = np.asarray(frequency)
    if x.ndim != 1 or x.size == 0 or not np.issubdtype(x.dtype, np.number) or np.any(x < 0) or np.any(x != np.floor(x)):
        raise ParameterError(f"{where}: frequency must be a non-empty 1-d array of non-negative integers.")
    x = x.astype(np.int64)
    rng = _rng(seed)
    nu = rng.gamma(shape=q, scale=1.0 / gamma, size=x.size)
    value = np.full(x.size, np.nan)
    has = x > 0
    value[has] = rng.gamma(shape=p * x[has], scale=1.0 / (nu[has] * x[has]))
    return pd.DataFrame({"frequency": x, "monetary_value": value, "nu": nu})


# ------------------------------------------------------------------ sBG
def simulate_sbg_cohorts(alpha: float, beta: float, cohort_size, periods: int, seed) -> pd.DataFrame:
    """Survivors per period of shifted-beta-geometric cohorts (Fader & Hardie 2007).

    Each member has a churn probability ``theta ~ Beta(alpha, beta)`` and
    renews at the end of each period with probability ``1 - theta``.
    ``cohort_size`` is one size or a list of sizes (one cohort each). Returns a
    long table ``cohort, period, survivors`` with period 0 holding the cohort
    size and period ``t`` the members still active after ``t`` renewals.
    """
    where = "simulate_sbg_cohorts"
    alpha, beta = _positive("alpha", alpha, where=where), _positive("beta", beta, where=where)
    periods = _count("periods", periods, where=where)
    sizes = [cohort_size] if np.ndim(cohort_size) == 0 else list(cohort_size)
    if not sizes:
        raise ParameterError(f"{where}: cohort_size must be a positive integer or a non-empty list of them.")
    sizes = [_count("cohort_size", s, where=where) for s in sizes]
    rng = _rng(seed)
    rows = []
    for c, size in enumerate(sizes):
        theta = rng.beta(alpha, beta, size=size)
        lifetime = rng.geometric(np.clip(theta, 1e-300, 1.0))  # periods until churn, >= 1
        churned_by = np.cumsum(np.bincount(np.minimum(lifetime, periods + 1), minlength=periods + 2))
        t = np.arange(periods + 1)
        survivors = size - churned_by[t]  # members whose lifetime exceeds t
        rows.append(pd.DataFrame({"cohort": c, "period": t, "survivors": survivors.astype(np.int64)}))
    return pd.concat(rows, ignore_index=True)


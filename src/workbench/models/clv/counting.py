"""What the continuous-time repeat-purchase models (BG/NBD, MBG/NBD,
Pareto/NBD) share: the fit on compressed patterns, covariates, the result with
its predictions, and delta-method intervals of every prediction.

A model family is a subclass of :class:`CountingResult` that names its four
parameters and implements, for scalar parameters, the per-row log-likelihood,
P(alive at T) and the conditional expected purchases in ``(T, T + t]``.

**Covariates** (Fader and Hardie 2007, "Incorporating time-invariant
covariates into the Pareto/NBD and BG/NBD models"): for a customer with
indicators ``z`` (one per non-reference level of each categorical covariate)
a parameter ``theta_j`` listed in the family's ``LINKS`` becomes
``theta_j0 * exp(sign_j * gamma_j' z)``. BG/NBD and MBG/NBD: ``alpha_i =
alpha0 exp(-g1'z)``, ``a_i = a0 exp(g2'z)``, ``b_i = b0 exp(g3'z)``;
Pareto/NBD: ``alpha_i = alpha0 exp(-g1'z)``, ``beta_i = beta0 exp(-g2'z)``.
``r`` (and ``s``) are shared. So ``exp(g1)`` is the ratio of mean purchase
rates (``r / alpha``), Pareto/NBD's ``exp(g2)`` the ratio of mean drop-out
rates (``s / beta``). The fit runs on unique ``(frequency, recency, T)``
patterns within each covariate level and starts from the fit without
covariates, which also gives the likelihood-ratio test of all effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from workbench.errors import ParameterError
from workbench.models.clv import intervals
from workbench.models.clv.rfm import RFM, Covariates, as_frame, by_unique, compress_rows, nonnegative, require_repeat, rfm_arrays
from workbench.models.mle import Fit, Objective, check_level, maximize, params_table, z_value
from workbench.models.results import Result, summary_frame, summary_metrics

#: unique patterns above which a fit first runs on a coarsened copy of the data
COARSE_ROWS = 20_000


@dataclass(frozen=True)
class LikelihoodRatio:
    """Likelihood-ratio test of all covariate effects against the model without covariates."""

    statistic: float
    df: int
    p_value: float
    loglik_without: float


@dataclass(frozen=True, eq=False)
class CountingResult(Result):
    """A fitted continuous-time repeat-purchase model.

    ``params``: the four parameters (for the reference level when there are
    covariates) with standard errors and log-scale Wald intervals.
    ``theta``/``cov``: the estimated vector (log-parameters, then covariate
    coefficients) and its covariance, from which every prediction's interval
    comes (delta method). ``coefficients`` (with covariates): each effect
    ``gamma`` with its interval and the ratio ``exp(gamma)`` with its
    interval; ``lr_test``: the likelihood-ratio test of all effects."""

    params: pd.DataFrame
    theta: np.ndarray = field(repr=False)
    cov: np.ndarray = field(repr=False)
    loglik: float
    customers: int
    patterns: int  # unique (frequency, recency, T[, level]) rows the fit ran on
    repeat_customers: int
    repeat_transactions: float
    converged: bool
    iterations: int
    level: float = 0.95
    time_unit: str | None = None
    covariates: Covariates | None = field(default=None, repr=False)
    coefficients: pd.DataFrame | None = None
    lr_test: LikelihoodRatio | None = None

    NAMES: ClassVar[tuple[str, ...]] = ()
    PREFIX: ClassVar[str] = ""
    LABEL: ClassVar[str] = ""
    #: parameters covariates act on, with the sign of the effect on the log-parameter
    LINKS: ClassVar[dict[str, int]] = {}
    #: whether ``loglik_rows`` returns analytic gradients
    GRADIENT: ClassVar[bool] = False
    #: whether ``loglik_rows(..., gradient=True, weights=n)`` returns the weighted total gradient
    #: (a vector) instead of each row's (used by the fit without covariates)
    TOTAL_GRADIENT: ClassVar[bool] = False
    #: ``loglik_totals(params, rows, n) -> (sum n ll, gradient, Hessian)`` in the natural
    #: parameters, when the family has an exact Hessian (used by the fit without covariates)
    loglik_totals: ClassVar = None

    # ---------------------------------------------------------------- the family (per subclass)
    @staticmethod
    def prepare(x, tx, T):  # pragma: no cover - implemented by each family
        """Rows prepared for repeated likelihood evaluations."""
        raise NotImplementedError

    @staticmethod
    def loglik_rows(params, rows, gradient: bool = False):  # pragma: no cover
        """Per-row log-likelihood at scalar ``params`` (with the natural-scale gradient when asked)."""
        raise NotImplementedError

    @staticmethod
    def p_alive(params, x, tx, T):  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def conditional_expected(params, x, tx, T, t):  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def start(rfm: RFM) -> np.ndarray:  # pragma: no cover
        """Starting log-parameters."""
        raise NotImplementedError

    # ---------------------------------------------------------------- parameters
    def param(self, name: str) -> float:
        return float(self.params.loc[name, "estimate"])

    @property
    def values(self) -> np.ndarray:
        """The four parameters (of the reference level)."""
        return self.params["estimate"].to_numpy(dtype=float)

    @property
    def r(self) -> float:
        return self.param("r")

    @property
    def alpha(self) -> float:
        return self.param("alpha")

    def group_params(self, theta=None) -> np.ndarray:
        """The four natural-scale parameters of each covariate group (groups x 4) at ``theta``."""
        return group_params(type(self), self.theta if theta is None else theta, self.covariates)

    def rate_ratio(self, term: str, parameter: str = "alpha") -> tuple[float, float, float]:
        """``exp(gamma)`` of a covariate term on ``parameter`` and its interval, e.g.
        ``rate_ratio("segment=enthusiast")``: the mean purchase rate of that level over the reference."""
        if self.coefficients is None:
            raise ParameterError(f"{type(self).__name__}.rate_ratio: the model was fitted without covariates")
        try:
            row = self.coefficients.loc[(parameter, term)]
        except KeyError:
            raise ParameterError(f"rate_ratio: no effect {term!r} on {parameter!r}; the effects are {list(self.coefficients.index)}") from None
        return float(row["ratio"]), float(row["ratio_ci_low"]), float(row["ratio_ci_high"])

    def summary(self) -> pd.DataFrame:
        """The parameters, then (with covariates) each effect gamma as ``parameter[term]``."""
        if self.coefficients is None:
            return self.params.copy()
        c = self.coefficients
        eff = c[["estimate", "std_err", "ci_low", "ci_high"]].copy()
        eff.index = pd.Index([f"{p}[{t}]" for p, t in c.index], name="parameter")
        return pd.concat([self.params, eff])

    def to_metrics(self, prefix: str | None = None) -> dict:
        prefix = prefix or self.PREFIX
        out = summary_metrics(prefix, self.params)
        out[f"{prefix}.loglik"] = self.loglik
        out[f"{prefix}.customers"] = self.customers
        out[f"{prefix}.repeat_customers"] = self.repeat_customers
        if self.coefficients is not None:
            for (p, t), row in self.coefficients.iterrows():
                key = f"{prefix}.ratio.{p}.{t}"
                out[key] = float(row["ratio"])
                out[f"{key}_ci_low"] = float(row["ratio_ci_low"])
                out[f"{key}_ci_high"] = float(row["ratio_ci_high"])
            out[f"{prefix}.lr_test.statistic"] = self.lr_test.statistic
            out[f"{prefix}.lr_test.df"] = self.lr_test.df
            out[f"{prefix}.lr_test.p_value"] = self.lr_test.p_value
        return out

    def _repr_html_(self) -> str:
        head = (
            f"<strong>{type(self).__name__}</strong> — {self.customers:,} customers "
            f"({self.repeat_customers:,} repeat, {self.patterns:,} unique patterns), log-likelihood {self.loglik:,.1f}"
        )
        if self.lr_test is not None:
            head += (
                f"; covariates {', '.join(self.covariates.columns)}: likelihood-ratio "
                f"{self.lr_test.statistic:.2f} on {self.lr_test.df} df, p = {self.lr_test.p_value:.3g}"
            )
        body = self.summary().to_html(float_format=lambda v: f"{v:.4g}")
        if self.coefficients is not None:
            body += self.coefficients.to_html(float_format=lambda v: f"{v:.4g}")
        return head + body

    # ---------------------------------------------------------------- predictions
    def _rows(self, summary, frequency, recency, T, func):
        df = as_frame(summary, func)
        rfm = rfm_arrays(df, frequency=frequency, recency=recency, T=T, weights=None, func=func, compress=False)
        g = np.zeros(len(df), dtype=np.int64) if self.covariates is None else self.covariates.groups_of(df, func)
        return rfm.x, rfm.tx, rfm.T, g

    def _evaluate(self, what: str, x, tx, T, g, t: float | None = None, theta=None) -> np.ndarray:
        """``p_alive`` or ``expected`` per row, each covariate group at its own parameters."""
        P = self.group_params(theta)
        out = np.empty(len(x))
        for k in np.unique(g):
            sel = g == k
            p = P[k]
            out[sel] = self.p_alive(p, x[sel], tx[sel], T[sel]) if what == "p_alive" else self.conditional_expected(p, x[sel], tx[sel], T[sel], t)
        return out

    def expected_purchases(self, summary, *, t: float, frequency: str = "frequency", recency: str = "recency", T: str = "T") -> np.ndarray:
        """Expected repeat purchases of each customer (row) in ``(T, T + t]``, given the calibration history."""
        t = nonnegative(t, "t", f"{type(self).__name__}.expected_purchases")
        x, tx, big_t, g = self._rows(summary, frequency, recency, T, "expected_purchases")
        return by_unique(lambda a, b, c, d: self._evaluate("expected", a, b, c, d.astype(np.int64), t), x, tx, big_t, g)

    def probability_alive(self, summary, *, frequency: str = "frequency", recency: str = "recency", T: str = "T") -> np.ndarray:
        """Probability that each customer (row) is still alive at the end of calibration."""
        x, tx, big_t, g = self._rows(summary, frequency, recency, T, "probability_alive")
        return by_unique(lambda a, b, c, d: self._evaluate("p_alive", a, b, c, d.astype(np.int64)), x, tx, big_t, g)

    def predict(self, summary, *, t: float, level: float | None = None, frequency: str = "frequency", recency: str = "recency", T: str = "T") -> pd.DataFrame:
        """Per customer (row): ``expected_purchases`` in ``(T, T + t]`` and ``probability_alive`` at
        T, each with a delta-method interval (``_ci_low``, ``_ci_high``; log scale for purchases,
        logit scale for P(alive)) that reflects the uncertainty of the estimated parameters: it is
        meant to cover the customer's expected value under the true parameters given her history."""
        func = f"{type(self).__name__}.predict"
        t = nonnegative(t, "t", func)
        z = z_value(check_level(self.level if level is None else level, func))
        df = as_frame(summary, func)
        x, tx, big_t, g = self._rows(df, frequency, recency, T, func)
        stacked = np.column_stack([x, tx, big_t, g])
        u, inv = np.unique(stacked, axis=0, return_inverse=True)
        inv = inv.ravel()
        ux, utx, uT, ug = u[:, 0], u[:, 1], u[:, 2], u[:, 3].astype(np.int64)
        e, Je = intervals.jacobian(lambda th: self._evaluate("expected", ux, utx, uT, ug, t, th), self.theta)
        pa, Jp = intervals.jacobian(lambda th: self._evaluate("p_alive", ux, utx, uT, ug, theta=th), self.theta)
        e_lo, e_hi = intervals.log_interval(e, intervals.log_variance(e, Je, self.cov), z)
        p_lo, p_hi = intervals.logit_interval(pa, Jp, self.cov, z)
        out = pd.DataFrame(
            {
                "expected_purchases": e[inv],
                "expected_purchases_ci_low": e_lo[inv],
                "expected_purchases_ci_high": e_hi[inv],
                "probability_alive": pa[inv],
                "probability_alive_ci_low": p_lo[inv],
                "probability_alive_ci_high": p_hi[inv],
            },
            index=df.index,
        )
        return out

    def expected_purchases_new(self, t) -> np.ndarray:
        """Expected repeat purchases in ``(0, t]`` of a customer just acquired (unconditional
        ``E[X(t)]``; the reference level when there are covariates)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        if (t < 0).any():
            raise ParameterError(f"{type(self).__name__}.expected_purchases_new: t must be >= 0")
        z = np.zeros_like(t)
        p = self.group_params()[self._reference_group()]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(t > 0, self.conditional_expected(p, z, z, np.full_like(t, 1e-300), np.maximum(t, 1e-300)), 0.0)
        return out

    def _reference_group(self) -> int:
        if self.covariates is None:
            return 0
        return int(np.flatnonzero(self.covariates.Z.sum(axis=1) == 0)[0])

    def expected_purchases_grid(self, *, t: float, max_frequency: int, T: float, recency_points: int = 40) -> pd.DataFrame:
        """Conditional expected purchases in ``(T, T+t]`` and P(alive) over a frequency x recency grid
        (customers of age ``T``; the reference level): columns frequency, recency,
        expected_purchases, probability_alive."""
        if max_frequency < 1 or T <= 0:
            raise ParameterError("expected_purchases_grid: max_frequency must be >= 1 and T > 0")
        f = np.arange(0, int(max_frequency) + 1, dtype=float)
        rec = np.linspace(0.0, float(T), int(recency_points))
        ff, rr = np.meshgrid(f, rec, indexing="ij")
        ff, rr = ff.ravel(), rr.ravel()
        keep = (ff > 0) | (rr == 0)
        ff, rr = ff[keep], rr[keep]
        tt = np.full_like(ff, float(T))
        p = self.group_params()[self._reference_group()]
        return pd.DataFrame(
            {
                "frequency": ff.astype(int),
                "recency": rr,
                "expected_purchases": self.conditional_expected(p, ff, rr, tt, float(t)),
                "probability_alive": self.p_alive(p, ff, rr, tt),
            }
        )


# ============================================================ covariate algebra
def coefficient_names(cls, cov: Covariates | None) -> list[str]:
    """Names of theta's elements: the parameters, then ``parameter[term]`` per effect."""
    names = list(cls.NAMES)
    if cov is not None:
        names += [f"{p}[{t}]" for p in cls.NAMES if p in cls.LINKS for t in cov.terms]
    return names


def group_params(cls, theta, cov: Covariates | None) -> np.ndarray:
    """Natural-scale parameters of each group (groups x 4) from theta."""
    theta = np.asarray(theta, dtype=float)
    base = theta[: len(cls.NAMES)]
    if cov is None:
        return np.exp(base)[None, :]
    logp = np.tile(base, (len(cov.levels), 1))
    k = len(cls.NAMES)
    m = len(cov.terms)
    for p in cls.NAMES:
        if p in cls.LINKS:
            j = cls.NAMES.index(p)
            logp[:, j] += cls.LINKS[p] * (cov.Z @ theta[k : k + m])
            k += m
    return np.exp(logp)


# ============================================================ fitting
def fit_counting(
    cls,
    summary,
    *,
    frequency: str,
    recency: str,
    T: str,
    weights: str | None,
    covariates,
    reference: dict | None,
    level: float,
    time_unit: str | None,
    func: str,
) -> CountingResult:
    """Fit model family ``cls`` by maximum likelihood on compressed patterns (see the module docstring)."""
    level = check_level(level, func)
    if time_unit is not None and time_unit not in ("week", "day"):
        raise ParameterError(f"{func}: time_unit must be 'week' or 'day' (a label for the results), got {time_unit!r}")
    rfm = rfm_arrays(summary, frequency=frequency, recency=recency, T=T, weights=weights, covariates=covariates, reference=reference, func=func)
    require_repeat(rfm, func)
    pooled = rfm if rfm.covariates is None else RFM(*compress_rows(rfm.x, rfm.tx, rfm.T, rfm.n))
    fit0 = _fit_pooled(cls, pooled, func)
    common = dict(
        customers=int(round(rfm.customers)),
        patterns=len(rfm),
        repeat_customers=int(round(rfm.repeat_customers)),
        repeat_transactions=rfm.repeat_transactions,
        level=level,
        time_unit=time_unit,
    )
    k = len(cls.NAMES)
    if rfm.covariates is None:
        return cls(params=params_table(cls.NAMES, fit0.theta, fit0.cov, level), theta=fit0.theta, cov=fit0.cov, loglik=fit0.loglik,
                   converged=fit0.converged, iterations=fit0.iterations, **common)
    cov = rfm.covariates
    names = coefficient_names(cls, cov)
    groups = [(np.flatnonzero(rfm.g == gk), cls.prepare(*(a[rfm.g == gk] for a in (rfm.x, rfm.tx, rfm.T)))) for gk in range(rfm.groups)]
    order = np.concatenate([idx for idx, _ in groups])

    def loglik(theta):
        P = group_params(cls, theta, cov)
        parts = [cls.loglik_rows(P[gk], rows, gradient=cls.GRADIENT) for gk, (_, rows) in enumerate(groups)]
        if not cls.GRADIENT:
            return np.concatenate(parts)
        lls, grads = [], []
        for gk, (ll, g_nat) in enumerate(parts):
            g_log = g_nat * P[gk]  # d ll / d log-parameter
            cols = [g_log]
            for p in cls.NAMES:
                if p in cls.LINKS:
                    j = cls.NAMES.index(p)
                    cols.append(cls.LINKS[p] * g_log[:, [j]] * cov.Z[gk][None, :])
            lls.append(ll)
            grads.append(np.hstack(cols))
        return np.concatenate(lls), np.vstack(grads)

    theta0 = np.concatenate([fit0.theta, np.zeros(len(names) - k)])
    fit = maximize(Objective(loglik, rfm.n[order], gradient=cls.GRADIENT), theta0, names, func)
    lr = 2.0 * (fit.loglik - fit0.loglik)
    dof = len(names) - k
    return cls(
        params=params_table(cls.NAMES, fit.theta[:k], fit.cov[:k, :k], level),
        theta=fit.theta,
        cov=fit.cov,
        loglik=fit.loglik,
        converged=fit.converged,
        iterations=fit.iterations,
        covariates=cov,
        coefficients=_coefficients(names[k:], fit.theta[k:], fit.cov[k:, k:], level),
        lr_test=LikelihoodRatio(float(max(lr, 0.0)), dof, float(stats.chi2.sf(max(lr, 0.0), dof)), fit0.loglik),
        **common,
    )


def _coefficients(names, gamma, cov, level) -> pd.DataFrame:
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    z = z_value(level)
    table = summary_frame(names, gamma, se, gamma - z * se, gamma + z * se)
    table["ratio"] = np.exp(gamma)
    table["ratio_ci_low"] = np.exp(table["ci_low"])
    table["ratio_ci_high"] = np.exp(table["ci_high"])
    table.index = pd.MultiIndex.from_tuples([(n.split("[", 1)[0], n.split("[", 1)[1][:-1]) for n in names], names=["parameter", "term"])
    return table


def _fit_pooled(cls, rfm: RFM, func: str) -> Fit:
    """The fit without covariates: directly, or (many unique patterns) first on a coarsened copy of
    the data, then polished on the data itself with Newton steps on the coarse fit's Hessian."""

    def make(data: RFM) -> Objective:
        rows = cls.prepare(data.x, data.tx, data.T)
        if cls.TOTAL_GRADIENT:
            def ll(theta):
                p = np.exp(theta)
                v, g = cls.loglik_rows(p, rows, gradient=True, weights=data.n)
                return v, g * p
        elif cls.GRADIENT:
            def ll(theta):
                p = np.exp(theta)
                v, g = cls.loglik_rows(p, rows, gradient=True)
                return v, g * p
        else:
            def ll(theta):
                return cls.loglik_rows(np.exp(theta), rows)
        totals = None
        if cls.loglik_totals is not None:
            def totals(theta):  # the chain rule to log-parameters: d/dtheta = p d/dp
                p = np.exp(theta)
                v, g, H = cls.loglik_totals(p, rows, data.n)
                gp = g * p
                return v, gp, H * np.outer(p, p) + np.diag(gp)
        return Objective(ll, data.n, gradient=cls.GRADIENT, hessian=totals)

    theta0 = cls.start(rfm)
    if len(rfm) <= COARSE_ROWS:
        return maximize(make(rfm), theta0, cls.NAMES, func)
    warm = maximize(make(_coarse(rfm)), theta0, cls.NAMES, func)
    return maximize(make(rfm), warm.theta, cls.NAMES, func, hess0=warm.hessian)


def _coarse(rfm: RFM, bins: int = 40) -> RFM:
    """A coarsened copy (T and t_x rounded to a grid of ``bins`` steps over T's range) for a warm start.
    The rows of ``rfm`` are sorted by x (as :func:`rfm_arrays` returns them), so x's codes are counted
    off; the grid codes are small integers, summed per combined key."""
    step = float(rfm.T.max()) / bins
    cT = np.maximum(np.round(rfm.T / step), 1.0).astype(np.int64)
    ct = np.minimum(np.round(rfm.tx / step).astype(np.int64), cT)
    new_x = np.empty(len(rfm.x), dtype=bool)
    new_x[0] = True
    np.not_equal(rfm.x[1:], rfm.x[:-1], out=new_x[1:])
    cx = np.cumsum(new_x) - 1
    key = (cx * (bins + 2) + ct) * (bins + 2) + cT
    if (cx[-1] + 1) * (bins + 2) ** 2 < 8 * len(key):  # a small key range: count per key directly (no sort)
        n = np.bincount(key, weights=rfm.n)
        uk = np.flatnonzero(n > 0)
        n = n[uk]
    else:
        uk, inv = np.unique(key, return_inverse=True)
        n = np.bincount(inv.ravel(), weights=rfm.n, minlength=len(uk))
    x = rfm.x[new_x][uk // (bins + 2) ** 2]
    return RFM(x, ((uk // (bins + 2)) % (bins + 2)) * step, (uk % (bins + 2)) * step, n, np.zeros(len(uk), dtype=np.int64))


def start_rates(rfm: RFM) -> tuple[float, float]:
    """A purchase-rate start: r = 1, alpha so that r/alpha matches purchases per unit of time."""
    rate = max((rfm.n * rfm.x).sum() / max((rfm.n * rfm.T).sum(), 1e-12), 1e-4)
    return 1.0, 1.0 / rate

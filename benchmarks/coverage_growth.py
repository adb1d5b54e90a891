"""Planted-truth check of the growth and scaling estimators: over repeated
simulations, how close are the estimates and how often do the 95% intervals
cover the truth (nominal 0.95; the project asks for 0.90-0.98)?

* Bass (``fit_bass``): new users per week drawn from a Bass curve with
  p = 0.01, q = 0.3 (the simulator's values) and market m, with Poisson noise
  (counts), normal noise of constant size, or multiplicative log-normal noise.
* Scaling (``fit_scaling``): a KPI panel shaped like the simulator's (5 markets
  x 36 months, users following a monthly Bass curve) with
  revenue = c * users**beta * exp(e), beta = 1.3, c = 0.05, e an AR(1) over
  months (coefficient 0.5, stationary sd 0.1). Also one market alone, where
  the interval must come from the time series only.

Seeds are fixed, so the figures are reproducible.

    .venv/bin/python benchmarks/coverage_growth.py              # everything, 200 repetitions each
    .venv/bin/python benchmarks/coverage_growth.py --reps 100 --only bass

``tests/test_growth.py`` and ``tests/test_scaling.py`` (marked slow) run the
same functions and assert the 0.90-0.98 band.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from workbench.models.growth import bass_adoptions, bass_cumulative, fit_bass
from workbench.models.scaling import fit_scaling

BASS_TRUTH = {"p": 0.01, "q": 0.3, "m": 20_000.0}
SCALING_TRUTH = {"beta": 1.3, "c": 0.05, "rho": 0.5, "sd": 0.1}


# ----------------------------------------------------------------- draws
def draw_bass_series(rng: np.random.Generator, *, p: float, q: float, m: float, periods: int, noise: str = "poisson") -> np.ndarray:
    """New adopters in periods 1..``periods`` around m (F(t) - F(t-1))."""
    mu = bass_adoptions(np.arange(1, periods + 1), p, q, m)
    if noise == "poisson":
        return rng.poisson(mu).astype(float)
    if noise == "normal":  # constant sd: 5% of the peak, floored at 0
        return np.clip(mu + rng.normal(0.0, 0.05 * mu.max(), periods), 0.0, None)
    if noise == "lognormal":  # multiplicative, sd 0.15 on the log scale
        return mu * np.exp(rng.normal(0.0, 0.15, periods))
    raise ValueError(f"unknown noise {noise!r}")


def draw_scaling_panel(
    rng: np.random.Generator, *, units: int = 5, periods: int = 36, beta: float = 1.3, c: float = 0.05, rho: float = 0.5, sd: float = 0.1
) -> pd.DataFrame:
    """A KPI panel like the simulator's: per market a monthly Bass adoption
    curve (size 0.3M-5M, p 0.005-0.02, q 0.1-0.3, launched 1-12 months
    before), active users a share of adopters with 3% noise, and revenue
    c * users**beta * exp(e), e an AR(1) within each market with coefficient
    ``rho`` and stationary sd ``sd``."""
    size = 10 ** rng.uniform(5.5, 6.7, units)
    bp, bq = rng.uniform(0.005, 0.02, units), rng.uniform(0.1, 0.3, units)
    launched = rng.integers(1, 13, units)
    active = rng.uniform(0.4, 0.7, units)
    t = np.arange(periods)[None, :] + launched[:, None]
    users = size[:, None] * bass_cumulative(t + 1, bp[:, None], bq[:, None]) * active[:, None] * np.exp(rng.normal(0, 0.03, (units, periods)))
    eps = np.empty((units, periods))
    eps[:, 0] = rng.normal(0, sd, units)
    innov = rng.normal(0, sd * np.sqrt(1 - rho**2), (units, periods))
    for j in range(1, periods):
        eps[:, j] = rho * eps[:, j - 1] + innov[:, j]
    revenue = c * users**beta * np.exp(eps)
    return pd.DataFrame(
        {
            "unit": np.repeat([f"market_{i + 1:02d}" for i in range(units)], periods),
            "period": np.tile(pd.date_range("2023-01-01", periods=periods, freq="MS"), units),
            "users": users.ravel(),
            "revenue": revenue.ravel(),
        }
    )


# ----------------------------------------------------------------- coverage
def bass_coverage(
    reps: int = 200, *, noise: str = "poisson", periods: int = 40, seed: int = 20240601, cov_type: str = "HC3", truth: dict | None = None
) -> pd.DataFrame:
    """Mean estimate, relative bias and 95% interval coverage of p, q, m."""
    truth = dict(BASS_TRUTH if truth is None else truth)
    rng = np.random.default_rng(seed)
    est = {k: [] for k in truth}
    hit = {k: [] for k in truth}
    width = {k: [] for k in truth}
    failures = 0
    for _ in range(reps):
        y = draw_bass_series(rng, periods=periods, noise=noise, **truth)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = fit_bass(y, cov_type=cov_type)
        except Exception:  # counted, not hidden
            failures += 1
            continue
        s = r.summary()
        for k, v in truth.items():
            est[k].append(s.loc[k, "estimate"])
            hit[k].append(s.loc[k, "ci_low"] <= v <= s.loc[k, "ci_high"])
            width[k].append((s.loc[k, "ci_high"] - s.loc[k, "ci_low"]) / v)
    rows = [
        {
            "model": f"bass ({noise} noise, {cov_type})",
            "parameter": k,
            "truth": v,
            "mean_estimate": float(np.mean(est[k])),
            "relative_bias": float(np.mean(est[k]) / v - 1),
            "coverage": float(np.mean(hit[k])),
            "relative_ci_width": float(np.mean(width[k])),
            "fits": len(est[k]),
            "failures": failures,
        }
        for k, v in truth.items()
    ]
    return pd.DataFrame(rows)


def scaling_coverage(
    reps: int = 200, *, units: int = 5, periods: int = 36, seed: int = 20240602, cov_type: str = "auto", truth: dict | None = None
) -> pd.DataFrame:
    """Mean estimate, bias and 95% interval coverage of the power-law exponent,
    and how often the power law is picked as the best law (by BIC)."""
    truth = dict(SCALING_TRUTH if truth is None else truth)
    rng = np.random.default_rng(seed)
    est, hit, width, best = [], [], [], []
    used = None
    for _ in range(reps):
        panel = draw_scaling_panel(rng, units=units, periods=periods, **truth)
        r = fit_scaling(panel, cov_type=cov_type, holdout_periods=6)
        used = r.cov_type
        est.append(r.exponent)
        lo, hi = r.exponent_ci
        hit.append(lo <= truth["beta"] <= hi)
        width.append(hi - lo)
        best.append(r.best_law == "power")
    return pd.DataFrame(
        [
            {
                "model": f"scaling ({units} unit(s) x {periods} periods, {used})",
                "parameter": "beta",
                "truth": truth["beta"],
                "mean_estimate": float(np.mean(est)),
                "bias": float(np.mean(est) - truth["beta"]),
                "coverage": float(np.mean(hit)),
                "ci_width": float(np.mean(width)),
                "power_law_best": float(np.mean(best)),
                "fits": reps,
            }
        ]
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--only", choices=["bass", "scaling"], default=None)
    args = ap.parse_args(argv)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    if args.only in (None, "bass"):
        t0 = time.perf_counter()
        frames = [bass_coverage(args.reps, noise=n) for n in ("poisson", "normal", "lognormal")]
        frames.append(bass_coverage(args.reps, noise="lognormal", cov_type="nonrobust"))
        print(f"Bass: {args.reps} simulated series of 40 weeks each ({time.perf_counter() - t0:.0f} s)")
        print(pd.concat(frames, ignore_index=True).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print()
    if args.only in (None, "scaling"):
        t0 = time.perf_counter()
        frames = [
            scaling_coverage(args.reps, units=5, periods=36),
            scaling_coverage(args.reps, units=5, periods=36, cov_type="nonrobust"),
            scaling_coverage(args.reps, units=20, periods=24),
            scaling_coverage(args.reps, units=1, periods=36),
            scaling_coverage(args.reps, units=1, periods=120),
        ]
        print(f"Scaling: {args.reps} simulated panels per row ({time.perf_counter() - t0:.0f} s)")
        print(pd.concat(frames, ignore_index=True).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The market KPI panel: a separate panel of markets (not aggregated from
the users and events) whose revenue follows a planted scaling law."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from workbench.data.simulator.draws import bass_cdf
from workbench.data.simulator.parameters import Planted


def draw_kpis(rng, p: Planted) -> tuple[pd.DataFrame, dict]:
    """The market panel: Bass-like adoption per market, revenue = c * users**beta * exp(AR(1) noise)."""
    k, n_t = int(p.kpis_units), int(p.kpis_periods)
    units = [f"market_{i + 1:02d}" for i in range(k)]
    size = 10 ** rng.uniform(5.5, 6.7, k)  # 0.3M - 5M potential users
    bp, bq = rng.uniform(0.005, 0.02, k), rng.uniform(0.1, 0.3, k)  # monthly Bass
    launched = rng.integers(1, 13, k)  # months before the panel starts
    active_share = rng.uniform(0.4, 0.7, k)
    customer_share = rng.uniform(0.05, 0.15, k)
    t = np.arange(n_t)[None, :] + launched[:, None]
    adopters = size[:, None] * bass_cdf(t + 1, bp[:, None], bq[:, None])
    new = adopters - size[:, None] * bass_cdf(t, bp[:, None], bq[:, None])
    users = adopters * active_share[:, None] * np.exp(rng.normal(0, 0.03, (k, n_t)))
    customers = users * customer_share[:, None] * np.exp(rng.normal(0, 0.05, (k, n_t)))
    rho, sd = p.scaling_ar1_rho, p.scaling_noise_sd
    eps = np.empty((k, n_t))
    eps[:, 0] = rng.normal(0, sd, k)
    innov = rng.normal(0, sd * np.sqrt(1 - rho**2), (k, n_t))
    for j in range(1, n_t):
        eps[:, j] = rho * eps[:, j - 1] + innov[:, j]
    revenue = p.scaling_c * users**p.scaling_beta * np.exp(eps)
    y0, m0 = dt.date.fromisoformat(p.kpis_start).year, dt.date.fromisoformat(p.kpis_start).month
    periods = [dt.date(y0 + (m0 - 1 + j) // 12, (m0 - 1 + j) % 12 + 1, 1) for j in range(n_t)]
    frame = pd.DataFrame(
        {
            "period": np.tile(np.array(periods, dtype=object), k),
            "unit": np.repeat(units, n_t),
            "users": users.ravel(),
            "new_users": new.ravel(),
            "customers": customers.ravel(),
            "revenue": revenue.ravel(),
        }
    )
    detail = {
        "units": units,
        "periods": n_t,
        "start": periods[0].isoformat(),
        "period_unit": "month",
        "market_size": {u: float(v) for u, v in zip(units, size)},
        "bass_p_monthly": {u: float(v) for u, v in zip(units, bp)},
        "bass_q_monthly": {u: float(v) for u, v in zip(units, bq)},
        "months_since_launch_at_start": {u: int(v) for u, v in zip(units, launched)},
        "active_share": {u: float(v) for u, v in zip(units, active_share)},
        "customer_share": {u: float(v) for u, v in zip(units, customer_share)},
    }
    return frame, detail

"""Figures for growth: a Bass fit with its forecast band and peak."""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.models.growth import BassResult
from workbench.plots import style


def date_axis(ax) -> None:
    """Compact date ticks on the x axis."""
    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def period_positions(result: BassResult, tau) -> np.ndarray:
    """x positions of continuous times ``tau`` (periods since the start of
    period 1): dates when the series has calendar periods, else ``tau`` itself."""
    tau = np.asarray(tau, dtype=float)
    if result.freq is None:
        return tau
    k_max = int(np.ceil(np.nanmax(tau))) + 2 if tau.size else 2
    labels = result.period_labels(np.arange(1, k_max + 2)).as_unit("ns").asi8.astype(float)  # label k+1 starts at tau = k
    floor = np.clip(np.floor(tau).astype(int), 0, len(labels) - 2)
    frac = tau - floor
    ns = labels[floor] + frac * (labels[floor + 1] - labels[floor])
    return pd.to_datetime(ns.astype("int64")).to_numpy()


def plot_bass(result: BassResult, forecast: pd.DataFrame | None = None, *, ax=None, title: str | None = None, prediction_band: bool = True):
    """Observed adoptions per period, the fitted Bass curve and (with
    ``forecast = result.forecast(horizon=...)``) its continuation with the
    parameter band (darker) and prediction band (lighter); the peak is marked.
    Each period's adoptions are drawn at the middle of the period. Returns the Axes."""
    if not isinstance(result, BassResult):
        raise ParameterError(f"plot_bass: give a BassResult (from fit_bass), got {type(result).__name__}")
    style.apply()
    if ax is None:
        _, ax = plt.subplots(figsize=(9.5, 4.5))
    fit_color, obs_color, peak_color = style.color("Bass"), style.color("observed"), style.MUTED
    T = result.n_periods
    x_obs = period_positions(result, np.arange(1, T + 1) - 0.5)
    ax.plot(x_obs, result.adoptions.to_numpy(), "o", ms=3.5, color=obs_color, label="observed new users", zorder=3)
    if forecast is not None:
        need = {"t", "adoptions", "ci_low", "ci_high", "pi_low", "pi_high", "forecast"}
        if not need <= set(forecast.columns):
            raise ParameterError(f"plot_bass: forecast must come from BassResult.forecast(); missing columns {sorted(need - set(forecast.columns))}")
        x = period_positions(result, forecast["t"].to_numpy() - 0.5)
        if prediction_band:
            ax.fill_between(x, forecast["pi_low"], forecast["pi_high"], color=fit_color, alpha=0.12, lw=0, label="prediction band (parameters + noise)")
        ax.fill_between(x, forecast["ci_low"], forecast["ci_high"], color=fit_color, alpha=0.3, lw=0, label="parameter band")
        fut = forecast["forecast"].to_numpy()
        ax.plot(x[~fut], forecast["adoptions"].to_numpy()[~fut], color=fit_color, lw=2, label="Bass fit")
        if fut.any():
            k = np.flatnonzero(fut)
            seg = np.r_[k[0] - 1, k] if k[0] > 0 else k
            ax.plot(x[seg], forecast["adoptions"].to_numpy()[seg], color=fit_color, lw=2, ls="--", label="forecast")
            ax.axvline(period_positions(result, [T])[0], color="0.6", lw=0.8, ls=":")
    else:
        ax.plot(x_obs, result.fitted.to_numpy(), color=fit_color, lw=2, label="Bass fit")
    t_star, height = result.peak_time, result.peak_adoptions
    x_peak = period_positions(result, [t_star])[0]
    ax.axvline(x_peak, color=peak_color, lw=1, ls="--")
    ax.annotate(f"peak: period {t_star:.1f}", xy=(x_peak, height), xytext=(6, 6), textcoords="offset points", color=peak_color, fontsize=10)
    ax.set_ylabel("new users per period")
    style.count_axis(ax)
    ax.set_xlabel("period" if result.freq is None else "date")
    if result.freq is not None:
        date_axis(ax)
    ax.set_ylim(bottom=0)
    ax.set_title(title or f"New users per period and the Bass curve (p = {result.p:.3g}, q = {result.q:.3g}, m = {result.m:,.0f})")
    ax.legend(loc="upper right")
    return ax


__all__ = ["date_axis", "period_positions", "plot_bass"]

"""The exact model up to a size, the aggregated one above it.

The exact Cox model holds every episode in memory (about 0.6 GB and 10 s per
million episodes with the report's covariates, ``benchmarks/bench_scale.py``);
the aggregated discrete-time models cost the number of distinct patterns.
The functions here count the episodes in the engine (the tables are Ibis
expressions, so nothing is pulled before the choice), fit the exact model when
there are at most ``max_episodes`` and the aggregated one otherwise, and say
in the result which ran and why (``path``, ``path_reason``); pass
``n_episodes`` when the count is known, to skip that engine pass. Where both run
they agree within about 2% in the hazard ratio (weekly bins,
piecewise-exponential; ``tests/test_survival_paths.py``).
"""

from __future__ import annotations

from dataclasses import replace

from workbench.errors import ParameterError
from workbench.models.inputs import as_list, to_pandas
from workbench.models.survival.cox import cox_naive_ever, cox_time_varying
from workbench.models.survival.discrete import discrete_time_hazard
from workbench.models.survival.dose import dose_response, dose_response_aggregated

#: the default size limit of the exact paths: 5 million episodes (about 1.5 million users
#: of the simulated product; a few GB of memory for the episodes and the fit)
DEFAULT_MAX_EPISODES = 5_000_000


def count_rows(table, where: str) -> int:
    """Rows of a DataFrame, or of an Ibis table counted in the engine."""
    if hasattr(table, "count") and hasattr(table, "schema"):
        return int(table.count().execute())
    if hasattr(table, "__len__"):
        return len(table)
    raise ParameterError(f"{where}: expected a workbench.tables expression or a DataFrame, got {type(table).__name__}")


def choose_path(episodes, max_episodes: int | None, where: str, aggregated: str, n_episodes: int | None = None) -> tuple[str, str, int]:
    """("exact" or "aggregated", the reason in words, the number of episodes);
    ``n_episodes``: the count if already known (no engine pass)."""
    if max_episodes is not None and (isinstance(max_episodes, bool) or not isinstance(max_episodes, int) or max_episodes < 0):
        raise ParameterError(f"{where}: max_episodes must be a whole number >= 0 or None (no limit), got {max_episodes!r}")
    n = count_rows(episodes, where) if n_episodes is None else int(n_episodes)
    if max_episodes is None or n <= max_episodes:
        limit = "no limit set" if max_episodes is None else f"at most {max_episodes:,} are fitted exactly"
        return "exact", f"Exact fit on {n:,} episodes ({limit}).", n
    return "aggregated", (f"{n:,} episodes exceed the exact path's limit of {max_episodes:,} (max_episodes): {aggregated}, "
                          "whose size does not grow with the number of users."), n


def fit_time_varying(episodes, risk_sets, *, exposure: str = "exposed", adjust_for=(), max_episodes: int | None = DEFAULT_MAX_EPISODES,
                     ties: str = "efron", keep_residuals: bool = True, alpha: float = 0.05, n_episodes: int | None = None):
    """The time-varying exposure's hazard ratio: the exact Cox model
    (:func:`~workbench.models.survival.cox_time_varying`, Efron ties,
    cluster-robust by user) on ``episodes`` when there are at most
    ``max_episodes`` of them, otherwise the piecewise-exponential model
    (:func:`~workbench.models.survival.discrete_time_hazard` with
    ``link="poisson"``: a hazard constant within each tenure bin, on exact
    person-days) on ``risk_sets`` (whose strata must include the categorical ``adjust_for``
    columns). ``episodes``/``risk_sets`` are the lazy tables of
    ``workbench.tables.episodes`` / ``risk_sets`` (or DataFrames); only the
    one needed is pulled. Returns the :class:`CoxResult` or
    :class:`DiscreteHazardResult` with ``path`` and ``path_reason`` set."""
    where = "fit_time_varying"
    path, reason, _ = choose_path(episodes, max_episodes, where,
                                  "the piecewise-exponential model on aggregated risk sets", n_episodes)
    if path == "exact":
        res = cox_time_varying(to_pandas(episodes, where), exposure=exposure, adjust_for=adjust_for, ties=ties,
                               keep_residuals=keep_residuals, alpha=alpha)
    else:
        res = discrete_time_hazard(to_pandas(risk_sets, where), exposure=exposure, adjust_for=as_list(adjust_for, "adjust_for"),
                                   link="poisson", alpha=alpha)
    return replace(res, path=path, path_reason=reason)


def fit_naive_ever(episodes, naive_risk_sets, *, exposure: str = "exposed", adjust_for=(),
                   max_episodes: int | None = DEFAULT_MAX_EPISODES, alpha: float = 0.05, n_episodes: int | None = None):
    """The naive "ever co-created" hazard ratio (immortal-time biased, shown
    for contrast): :func:`~workbench.models.survival.cox_naive_ever` on the
    episodes up to ``max_episodes``, otherwise the discrete-time model on
    ``workbench.tables.risk_sets(ds, ..., naive_ever=True)`` (exposed from
    signup for everyone who ever co-created). The coefficient is named
    ``ever_exposed`` on both paths."""
    where = "fit_naive_ever"
    path, reason, _ = choose_path(episodes, max_episodes, where,
                                  "the piecewise-exponential model on risk sets with exposure fixed from signup", n_episodes)
    if path == "exact":
        res = cox_naive_ever(to_pandas(episodes, where), exposure=exposure, adjust_for=adjust_for, alpha=alpha)
    else:
        rs = to_pandas(naive_risk_sets, where).rename(columns={exposure: "ever_exposed"})
        res = discrete_time_hazard(rs, exposure="ever_exposed", adjust_for=as_list(adjust_for, "adjust_for"), link="poisson",
                                   alpha=alpha)
        res = replace(res, label="NAIVE piecewise-exponential hazard, 'ever co-created' (immortal-time biased)")
    return replace(res, path=path, path_reason=reason)


def fit_dose_response(episodes, dose_risk_sets, *, adjust_for=(), max_dose: int = 3,
                      max_episodes: int | None = DEFAULT_MAX_EPISODES, alpha: float = 0.05, n_episodes: int | None = None):
    """Dose-response (hazard by adopted ideas so far): the exact Cox
    :func:`~workbench.models.survival.dose_response` on the episodes of
    ``workbench.tables.episodes(ds, exposure="adopted")`` up to
    ``max_episodes``, otherwise :func:`dose_response_aggregated` on
    ``workbench.tables.dose_risk_sets``."""
    where = "fit_dose_response"
    path, reason, _ = choose_path(episodes, max_episodes, where,
                                  "the piecewise-exponential model on risk sets by dose level", n_episodes)
    if path == "exact":
        res = dose_response(to_pandas(episodes, where), adjust_for=adjust_for, max_dose=max_dose, alpha=alpha)
    else:
        res = dose_response_aggregated(to_pandas(dose_risk_sets, where), adjust_for=adjust_for, max_dose=max_dose, alpha=alpha)
    return replace(res, path=path, path_reason=reason)


__all__ = ["DEFAULT_MAX_EPISODES", "choose_path", "count_rows", "fit_dose_response", "fit_naive_ever", "fit_time_varying"]

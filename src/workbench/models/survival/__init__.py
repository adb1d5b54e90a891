"""Survival: retention curves, log-rank tests, Cox models with a time-varying
co-creation exposure, the proportional-hazards check, discrete-time hazards on
aggregated risk sets, landmark data and dose-response. One fitter per module:

- :mod:`.kaplan_meier`: Kaplan-Meier curves (Greenwood, log-log bands), log-rank;
- :mod:`.cox` (engine in :mod:`.cox_engine`): the exact Cox partial likelihood,
  Efron or Breslow ties, time-varying exposure, the naive "ever" model;
- :mod:`.discrete`: discrete-time hazards on aggregated risk sets;
- :mod:`.paths`: the exact model up to a size (episodes), the aggregated one above it;
- :mod:`.landmark`: landmark data;
- :mod:`.dose`: dose-response, exact (Cox) and aggregated (risk sets by dose);
- :mod:`.ph_check`: the proportional-hazards check, from Schoenfeld residuals
  (exact) or as a tenure interaction (aggregated).

The trap this package is built around is **immortal-time bias**: users can
only co-create while they are still around, so comparing users who *ever*
co-created with those who never did credits the exposed group with the time
they had to survive in order to become exposed. The default models therefore
treat co-creation as a *time-varying* exposure on counting-process episodes
(``workbench.tables.episodes``); :func:`cox_naive_ever` fits the biased
model only so that a report can show it beside the right one, labelled.
"""

from __future__ import annotations

from workbench.models.inputs import design_matrix
from workbench.models.survival.cox import (
    EPISODE_COLUMNS,
    CoxResult,
    cox_naive_ever,
    cox_time_varying,
    ever_exposed_table,
    fit_cox,
)
from workbench.models.survival.discrete import DiscreteHazardResult, discrete_time_hazard
from workbench.models.survival.dose import DoseResponseResult, dose_response, dose_response_aggregated
from workbench.models.survival.kaplan_meier import (
    KMEstimate,
    LogRankResult,
    SurvivalCurves,
    kaplan_meier,
    km_estimate,
    km_loglog_ci,
    logrank_test,
)
from workbench.models.survival.landmark import landmark_data
from workbench.models.survival.paths import (
    DEFAULT_MAX_EPISODES,
    fit_dose_response,
    fit_naive_ever,
    fit_time_varying,
)
from workbench.models.survival.ph_check import PHCheckResult, proportional_hazards_check

__all__ = [
    "DEFAULT_MAX_EPISODES", "EPISODE_COLUMNS", "CoxResult", "DiscreteHazardResult", "DoseResponseResult", "KMEstimate", "LogRankResult", "PHCheckResult",
    "SurvivalCurves", "cox_naive_ever", "cox_time_varying", "design_matrix", "discrete_time_hazard", "dose_response",
    "dose_response_aggregated", "fit_dose_response", "fit_naive_ever", "fit_time_varying",
    "ever_exposed_table", "fit_cox", "kaplan_meier", "km_estimate", "km_loglog_ci", "landmark_data", "logrank_test",
    "proportional_hazards_check",
]
# _as_list, _numeric and _require_columns: the old private names, kept for modules that still import them
# from here (experiments.py); new code imports them from workbench.models.inputs.

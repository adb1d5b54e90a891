"""Randomized experiments, one concern per module:

- :mod:`~.arms`: the experiment's name, the control arm, names for metrics.json;
- :mod:`~.design`: sample-ratio check, power and minimum detectable effects
  (proportions, means, time to event);
- :mod:`~.invitation`: the two-arm invitation analysis on one row per user
  (intent-to-treat on retention, complier effect by IV, CUPED);
- :mod:`~.moments`, :mod:`~.effects`, :mod:`~.multiplicity`: fixed-horizon
  effects of every arm on every metric from engine aggregates (proportions,
  means, ratio metrics, capping, CUPED, Holm / Benjamini-Hochberg);
- :mod:`~.sequential`: always-valid confidence sequences by day;
- :mod:`~.time_to_event`: Kaplan-Meier per arm, RMST difference, hazard ratio;
- :mod:`~.heterogeneity`: effects by a user attribute, interaction tests;
- :mod:`~.readout`: :func:`readout`, all of the above in one result.

See docs/experiments.md.
"""

from workbench.data.contract import CONTROL_ARM
from workbench.models.experiments.arms import check_experiment
from workbench.models.experiments.design import (
    EventsPowerResult,
    MeanPowerResult,
    PowerResult,
    SRMResult,
    events_needed,
    mde_hazard_ratio,
    power_mde,
    power_mde_mean,
    sample_ratio_mismatch,
)
from workbench.models.experiments.effects import fixed_horizon_effects
from workbench.models.experiments.heterogeneity import HeterogeneityResult, heterogeneity
from workbench.models.experiments.invitation import CACEResult, CUPEDResult, ITTResult, cace, cuped, itt_retention
from workbench.models.experiments.readout import ExperimentData, ReadoutResult, experiment_data, readout
from workbench.models.experiments.sequential import sequential_effects
from workbench.models.experiments.time_to_event import TimeToEventResult, rmst, time_to_event_effects

__all__ = [
    "CACEResult", "CONTROL_ARM", "CUPEDResult", "EventsPowerResult", "ExperimentData", "HeterogeneityResult", "ITTResult",
    "MeanPowerResult", "PowerResult", "ReadoutResult", "SRMResult", "TimeToEventResult", "cace", "check_experiment", "cuped",
    "events_needed", "experiment_data", "fixed_horizon_effects", "heterogeneity", "itt_retention", "mde_hazard_ratio",
    "power_mde", "power_mde_mean", "readout", "rmst", "sample_ratio_mismatch", "sequential_effects", "time_to_event_effects",
]

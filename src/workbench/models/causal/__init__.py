"""Causal adjustment for co-creation and retention: landmark analysis with
inverse probability weighting, the E-value, and the side-by-side table of
hazard ratios that shows why the naive estimate is wrong.

Landmark analysis (:func:`landmark_ipw`). At each landmark day ``d`` the
users still at risk are split by whether they had co-created by ``d``; their
retention is followed from ``d`` on with that status frozen, so no immortal
time enters. Because co-creators differ from others before ``d`` (e.g.
enthusiasts co-create more and churn less anyway), the propensity of having
co-created by ``d`` is modelled by logistic regression (statsmodels ``GLM``)
on pre-landmark attributes and engagement, and each user is weighted by the
inverse probability of the group they are in (stabilized ATE weights). The
weighted Cox model (the workbench's Cox fit with case weights, stratified by
landmark, cluster-robust by user) then compares the groups as if co-creation
by ``d`` had been assigned at random given those covariates. Overlap
diagnostics (propensity distributions, extreme propensities, effective sample
sizes, standardized mean differences before and after weighting) say whether
that comparison is supported by the data.

What it estimates: the effect of *having co-created by day d* on churn after
``d``, whatever happens later. Users in the comparison group may co-create
after ``d``, so this hazard ratio is closer to 1 than the per-exposure hazard
ratio of the time-varying Cox model when many of them do; it answers a
different (and more policy-like) question and is not expected to equal it.

The E-value (:func:`e_value`, VanderWeele & Ding 2017) is the minimum
strength of association, on the risk-ratio scale, that an unmeasured
confounder would need with both co-creation and churn to explain the
observed hazard ratio away.
"""

from workbench.models.causal.comparison import ESTIMATE_NOTES, HazardRatioComparison, compare_hazard_ratios
from workbench.models.causal.evalue import EValueResult, e_value
from workbench.models.causal.landmark_aggregated import fit_landmark_ipw, landmark_ipw_aggregated
from workbench.models.causal.landmark_ipw import LandmarkIPWResult, landmark_ipw
from workbench.models.causal.propensity import OverlapWarning

__all__ = ["ESTIMATE_NOTES", "EValueResult", "HazardRatioComparison", "LandmarkIPWResult", "OverlapWarning",
           "compare_hazard_ratios", "e_value", "fit_landmark_ipw", "landmark_ipw", "landmark_ipw_aggregated"]

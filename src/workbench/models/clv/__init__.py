"""Customer lifetime value: repeat-purchase models, spend, value, validation.

Non-contractual ("buy till you die") models of repeat purchasing, fitted by
maximum likelihood on the repeat-purchase summary: one row per customer, or
better one row per unique ``(frequency, recency, T)`` pattern with the number
of customers ``n`` who share it (``workbench.tables.repeat_summary_compressed``).
A fit costs the number of unique patterns, not the number of customers.
One model family per module:

* :mod:`~workbench.models.clv.bgnbd` — BG/NBD (Fader, Hardie and Lee 2005);
* :mod:`~workbench.models.clv.mbgnbd` — MBG/NBD (Batislam et al. 2007);
* :mod:`~workbench.models.clv.pareto_nbd` — Pareto/NBD (Schmittlein et al. 1987);
* :mod:`~workbench.models.clv.bgbb` — BG/BB for discrete opportunities (Fader, Hardie and Shang 2010);
* :mod:`~workbench.models.clv.gamma_gamma` — spend per transaction;
* :mod:`~workbench.models.clv.value` — CLV per customer and in total, with intervals;
* :mod:`~workbench.models.clv.holdout` — holdout errors and the model to trust;
* :mod:`~workbench.models.clv.tracking` — expected repeat purchases over calendar time;
* :mod:`~workbench.models.clv.customers` — the per-customer table (``workbench tables customers``);

with what they share in :mod:`~workbench.models.clv.counting` (fits,
covariates, predictions), :mod:`~workbench.models.clv.rfm` (the summary as
arrays), :mod:`~workbench.models.clv.intervals` (delta-method intervals) and
:mod:`workbench.models.mle` (the optimiser).

Notation (Fader, Hardie and Lee 2005): a customer's calibration history is
``x`` repeat purchases (``frequency``), the time of the last one ``t_x``
(``recency``, measured from the first purchase) and the length of observation
``T`` since the first purchase, all in one time unit (weeks or days).
"""

from workbench.models.clv.bgbb import BGBBResult, bgbb_loglik, fit_bgbb
from workbench.models.clv.bgnbd import BGNBDResult, bgnbd_loglik, fit_bgnbd
from workbench.models.clv.counting import CountingResult, LikelihoodRatio
from workbench.models.clv.gamma_gamma import CLVWarning, GammaGammaResult, fit_gamma_gamma, gamma_gamma_loglik
from workbench.models.clv.holdout import HoldoutComparison, ModelChoice, choose_model, holdout_comparison
from workbench.models.clv.mbgnbd import MBGNBDResult, fit_mbgnbd, mbgnbd_loglik
from workbench.models.clv.pareto_nbd import ParetoNBDResult, fit_pareto_nbd, pareto_nbd_loglik
from workbench.models.clv.rfm import RFM, rfm_arrays
from workbench.models.clv.tracking import expected_cumulative_repeat, tracking_table
from workbench.models.clv.value import UNITS_PER_YEAR, CLVResult, customer_lifetime_value, discount_factors

__all__ = [
    "BGBBResult", "BGNBDResult", "CLVResult", "CLVWarning", "CountingResult", "GammaGammaResult", "HoldoutComparison",
    "LikelihoodRatio", "MBGNBDResult", "ModelChoice", "ParetoNBDResult", "RFM", "UNITS_PER_YEAR",
    "bgbb_loglik", "bgnbd_loglik", "choose_model", "customer_lifetime_value", "discount_factors",
    "expected_cumulative_repeat", "fit_bgbb", "fit_bgnbd", "fit_gamma_gamma", "fit_mbgnbd", "fit_pareto_nbd",
    "gamma_gamma_loglik", "holdout_comparison", "mbgnbd_loglik", "pareto_nbd_loglik", "rfm_arrays", "tracking_table",
]

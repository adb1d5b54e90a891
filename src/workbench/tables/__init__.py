"""Analysis tables: Ibis expressions that reduce raw events to the small
tables the models fit on (the sufficient statistics of DESIGN.md).

Every function takes a loaded :class:`~workbench.data.Dataset` first and
returns an Ibis table expression on the dataset's backend (DuckDB, PySpark or
any other); nothing is computed until you call ``.to_pandas()`` on it, and
only these small tables are pulled into pandas. The same call gives the same
result on every backend. See docs/tables.md for the columns of each table.
"""

from __future__ import annotations

from workbench.tables.cohorts import cohort_retention
from workbench.tables.conversion import conversion, conversion_risk_sets
from workbench.tables.distributions import events_per_user, purchase_amounts
from workbench.tables.experiments import experiment_outcomes
from workbench.tables.kpis import kpis
from workbench.tables.landmarks import landmark_risk_sets, landmark_users
from workbench.tables.opportunities import repeat_opportunities
from workbench.tables.purchases import repeat_summary, repeat_summary_compressed
from workbench.tables.referrals import referral_counts, referrals
from workbench.tables.subscriptions import subscription_survivors
from workbench.tables.survival import churn_causes, dose_risk_sets, episodes, risk_sets, survival
from workbench.tables.totals import dataset_totals
from workbench.tables.tracking import calibration_window, repeat_tracking

#: every analysis table by name (the names of the ``workbench tables`` command)
TABLE_FUNCTIONS = {
    "kpis": kpis,
    "repeat_summary": repeat_summary,
    "repeat_summary_compressed": repeat_summary_compressed,
    "repeat_opportunities": repeat_opportunities,
    "survival": survival,
    "churn_causes": churn_causes,
    "episodes": episodes,
    "risk_sets": risk_sets,
    "dose_risk_sets": dose_risk_sets,
    "landmark_risk_sets": landmark_risk_sets,
    "landmark_users": landmark_users,
    "cohort_retention": cohort_retention,
    "conversion": conversion,
    "conversion_risk_sets": conversion_risk_sets,
    "experiment_outcomes": experiment_outcomes,
    "referrals": referrals,
    "referral_counts": referral_counts,
    "events_per_user": events_per_user,
    "purchase_amounts": purchase_amounts,
    "dataset_totals": dataset_totals,
}

__all__ = ["TABLE_FUNCTIONS", *TABLE_FUNCTIONS, "calibration_window", "repeat_tracking", "subscription_survivors"]

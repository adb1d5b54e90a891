"""The analysis layer: one module per report question. Each step takes a
dataset and parameters, calls tables, models and plots, and returns a
:class:`Section` (figures, display tables, finding sentences, recorded
metrics, notes on what was skipped and why) or the report's
:class:`Answer`. Every word that depends on a number is decided here, by
small functions tested on both sides of every branch.

- :mod:`workbench.analyses.overview` -- what a dataset holds (``data_overview``)
- :mod:`workbench.analyses.revenue` -- users to customers to revenue (``users_to_revenue``)
- :mod:`workbench.analyses.customer_value` -- repeat buying and CLV (``customer_lifetime_value``)
- :mod:`workbench.analyses.cocreation` -- co-creation and retention (``cocreation_retention``)
- :mod:`workbench.analyses.format` -- numbers for people
"""

from __future__ import annotations

from workbench.analyses.section import Answer, Section

__all__ = ["Answer", "Section"]

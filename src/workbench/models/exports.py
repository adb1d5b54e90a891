"""Tables that fit a model, by name: the model-backed part of the
``workbench tables`` command (the engine tables are
``workbench.tables.TABLE_FUNCTIONS``). Each function takes a dataset first
and returns a pandas DataFrame, written with the same atomic
``workbench.tables.export.write_table``.

The entries are thin fronts with the real function's signature that import
the model code only when called, so building the command's help (which lists
every table and its options) does not load scipy and statsmodels; a test
keeps each signature equal to its target's.
"""

from __future__ import annotations


def customers(ds, *, model: str = "auto", time_unit: str = "week", calibration_end=None, holdout_end=None, horizon: float = 52.0,
              discount_rate: float = 0.1, level: float = 0.95):
    """:func:`workbench.models.clv.customers.customers`: one row per customer with P(alive),
    expected purchases, expected spend and CLV, each with its interval."""
    from workbench.models.clv.customers import customers as build

    return build(ds, model=model, time_unit=time_unit, calibration_end=calibration_end, holdout_end=holdout_end, horizon=horizon,
                 discount_rate=discount_rate, level=level)


#: model-backed tables by name, and the function each one fronts ("module:name")
MODEL_TABLES = {"customers": customers}
TARGETS = {"customers": "workbench.models.clv.customers:customers"}

#: what a row of each holds (for ``workbench tables --list``)
ROWS = {
    "customers": "per customer: P(alive), expected purchases, expected spend, CLV, each with its interval (fits a purchase model and Gamma-Gamma)",
}

"""Tables that fit a model, by name: the model-backed part of the
``workbench tables`` command (the engine tables are
``workbench.tables.TABLE_FUNCTIONS``). Each function takes a dataset first
and returns a pandas DataFrame, written with the same atomic
``workbench.tables.export.write_table``."""

from __future__ import annotations

from workbench.models.clv.customers import customers

#: model-backed tables by name
MODEL_TABLES = {"customers": customers}

#: what a row of each holds (for ``workbench tables --list``)
ROWS = {
    "customers": "per customer: P(alive), expected purchases, expected spend, CLV, each with its interval (fits a purchase model and Gamma-Gamma)",
}

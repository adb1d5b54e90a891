"""The per-customer value table for the people who act on it (marketing): one
row per customer with P(alive), expected purchases, expected spend and CLV,
each with its interval. Behind ``workbench tables customers DATASET --out
customers.parquet``.

:func:`customers` builds the repeat-purchase summary in the engine
(``workbench.tables.repeat_summary``), fits a purchase model and the
Gamma-Gamma spend model on it, and returns
``CLVResult.customer_table()`` with the model's name and the date the values
are as of. With ``model="auto"`` the purchase models are first compared on a
holdout (fitted up to ``calibration_end``, judged on ``(calibration_end,
holdout_end]`` by :func:`~workbench.models.clv.choose_model`) and the chosen
one is refitted on all purchases up to ``holdout_end``; the values are as of
``holdout_end``. With a named model the values are as of ``calibration_end``
(default: the observation end).
"""

from __future__ import annotations

import pandas as pd

from workbench.errors import ParameterError
from workbench.models.clv.bgnbd import fit_bgnbd
from workbench.models.clv.gamma_gamma import fit_gamma_gamma
from workbench.models.clv.holdout import choose_model, holdout_comparison
from workbench.models.clv.mbgnbd import fit_mbgnbd
from workbench.models.clv.pareto_nbd import fit_pareto_nbd
from workbench.models.clv.value import customer_lifetime_value

#: the purchase models by the names ``customers(model=...)`` takes
PURCHASE_MODELS = {"bgnbd": fit_bgnbd, "pareto_nbd": fit_pareto_nbd, "mbgnbd": fit_mbgnbd}


def customers(
    ds,
    *,
    model: str = "auto",
    time_unit: str = "week",
    calibration_end=None,
    holdout_end=None,
    horizon: float = 52.0,
    discount_rate: float = 0.1,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per customer (a user with a purchase by the as-of date): ``user_id``, ``segment``
    (when the dataset has it), ``model``, ``as_of``, then ``probability_alive``,
    ``expected_purchases`` (in the next ``horizon`` time units), ``expected_spend`` (per
    purchase) and ``clv`` (discounted at the annual ``discount_rate``), each with ``_ci_low`` and
    ``_ci_high`` at ``level`` (delta method; see docs/clv.md).

    ``model``: ``"auto"`` (choose on a holdout, see the module docstring), ``"bgnbd"``,
    ``"pareto_nbd"`` or ``"mbgnbd"``."""
    from workbench.tables import calibration_window, repeat_summary

    fn = "customers"
    if model not in ("auto", *PURCHASE_MODELS):
        raise ParameterError(f"{fn}(): model must be 'auto' or one of {', '.join(PURCHASE_MODELS)}, got {model!r}")
    if model == "auto":
        window = calibration_window(ds, calibration_end=calibration_end, holdout_end=holdout_end)
        cal, hold = window["calibration_end"], window["holdout_end"]
        if hold <= cal:
            raise ParameterError(
                f"{fn}(): model='auto' chooses the model on a holdout, but calibration_end {cal.date()} leaves none before "
                f"holdout_end {hold.date()}; give an earlier calibration_end, or name the model (--model bgnbd)"
            )
        split = repeat_summary(ds, time_unit=time_unit, calibration_end=cal, holdout_end=hold).to_pandas()
        fits = {name: f(split, time_unit=time_unit) for name, f in PURCHASE_MODELS.items()}
        choice = choose_model({name: holdout_comparison(res, split) for name, res in fits.items()})
        model, as_of = choice.chosen, hold
    else:
        if holdout_end not in (None, ""):
            raise ParameterError(
                f"{fn}(): holdout_end is only used by model='auto' (to choose the model); "
                f"with model={model!r} give calibration_end, the date the values are as of"
            )
        as_of = calibration_window(ds, calibration_end=calibration_end or ds.observation_end)["calibration_end"]
    value = value_as_of(ds, model=model, as_of=as_of, time_unit=time_unit, horizon=horizon, discount_rate=discount_rate, level=level)
    table = value.customer_table()
    ids = [c for c in ("user_id", "segment") if c in table.columns]
    table.insert(len(ids), "model", value.model)
    table.insert(len(ids) + 1, "as_of", pd.Timestamp(as_of).date())
    return table


def value_as_of(ds, *, model: str, as_of, time_unit: str = "week", horizon: float = 52.0, discount_rate: float = 0.1,
                level: float = 0.95):
    """The :class:`~workbench.models.clv.CLVResult` of purchase model ``model``
    (``"bgnbd"``, ``"pareto_nbd"`` or ``"mbgnbd"``) and Gamma-Gamma, both
    fitted on every purchase up to ``as_of``: each customer's value as of that
    day (the report's and ``customers()``'s)."""
    from workbench.tables import repeat_summary
    from workbench.tables.common import attribute_columns

    if model not in PURCHASE_MODELS:
        raise ParameterError(f"value_as_of(): model must be one of {', '.join(PURCHASE_MODELS)}, got {model!r}")
    covariates = ("segment",) if ds.users is not None and "segment" in attribute_columns(ds) else ()
    summary = repeat_summary(ds, time_unit=time_unit, calibration_end=as_of, covariates=covariates).to_pandas()
    purchases = PURCHASE_MODELS[model](summary, time_unit=time_unit, level=level)
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    spend = fit_gamma_gamma(repeat, level=level)
    return customer_lifetime_value(purchases, spend, summary, horizon=horizon, discount_rate=discount_rate, time_unit=time_unit)

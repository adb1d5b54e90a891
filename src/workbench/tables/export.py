"""Build an analysis table by name and write it to a file (the work behind
``workbench tables``).

Every function looks the name up in ``functions`` (default: the engine
tables, ``workbench.tables.TABLE_FUNCTIONS``); the command also passes the
model-backed tables (``workbench.models.exports.MODEL_TABLES``), which return
pandas DataFrames instead of Ibis expressions."""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path

import pandas as pd

from workbench.errors import ParameterError

FORMATS = (".parquet", ".csv")


def _functions(functions=None) -> dict:
    if functions is not None:
        return functions
    from workbench.tables import TABLE_FUNCTIONS

    return TABLE_FUNCTIONS


def table_options(name: str, functions=None) -> dict[str, object]:
    """The arguments of table ``name`` after the dataset, with their defaults
    (``inspect.Parameter.empty`` for a required one)."""
    fn = table_function(name, functions)
    params = list(inspect.signature(fn).parameters.values())[1:]
    return {p.name: p.default for p in params}


def table_function(name: str, functions=None):
    functions = _functions(functions)
    if name not in functions:
        raise ParameterError(f"unknown table {name!r}; the analysis tables are: {', '.join(functions)}")
    return functions[name]


def build_table(name: str, ds, *, functions=None, **options):
    """Table ``name`` on dataset ``ds`` with ``options`` (an Ibis expression
    for an engine table); refuses options the table does not take."""
    check_options(name, options, functions)
    return table_function(name, functions)(ds, **options)


def check_options(name: str, options: dict, functions=None) -> None:
    """Refuse an unknown table, options it does not take, required ones missing."""
    accepted = table_options(name, functions)
    unknown = [k for k in options if k not in accepted]
    if unknown:
        opts = ", ".join("--" + k.replace("_", "-") for k in unknown)
        takes = ", ".join("--" + k.replace("_", "-") for k in accepted) or "no options"
        raise ParameterError(f"{opts} does not apply to table {name!r} (it takes: {takes})")
    missing = [k for k, d in accepted.items() if d is inspect.Parameter.empty and k not in options]
    if missing:
        raise ParameterError(f"table {name!r} needs {', '.join('--' + k.replace('_', '-') for k in missing)}")


def write_table(df: pd.DataFrame, out) -> Path:
    """Write ``df`` to ``out`` (``.parquet`` or ``.csv``) atomically: a
    temporary file beside it, renamed into place only once complete."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ParameterError(f"--out {out}: unknown file type {out.suffix or '(none)'!r}; end the name with .parquet or .csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # the permissions a plain open() would give, not mkstemp's 0600
    try:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


ROWS = {
    "kpis": "active users, new users, customers, first-time customers, revenue per period",
    "repeat_summary": "per customer: frequency, recency, T, monetary value, holdout counts, covariates (BG/NBD input)",
    "repeat_summary_compressed": "per unique (covariates, frequency, recency, T): customers n, holdout purchases and their squares",
    "repeat_opportunities": "per (cohort, frequency, recency): customers n, opportunities (periods) (BG/BB input)",
    "survival": "per user: duration from signup, churned (0/1), churn cause, attributes",
    "churn_causes": "per churn cause (cancel, inactivity, censored): users",
    "episodes": "per user x interval: start, stop, exposed, dose, churned (counting process)",
    "risk_sets": "per (tenure bin, exposed, strata): at_risk, events, exposure_days",
    "cohort_retention": "per (signup cohort, periods since signup): cohort size, active, share",
    "conversion": "per user: converted, days to first purchase, co-created before conversion",
    "conversion_risk_sets": "per (tenure bin, exposed, strata): at_risk, first purchases, exposure_days",
    "experiment_outcomes": "per assigned user: arm, took part, retained at the horizon, observed",
    "referrals": "per (user, exposed state[, calendar period]): exposure days, users referred",
    "events_per_user": "per count n: users with exactly n events (of one type, or any)",
    "purchase_amounts": "per log10 amount bin: purchases with an amount in it",
    "dataset_totals": "one row: users, first signup, events, customers, purchases, revenue, purchase amount mean/median/p90",
}


def describe_tables(functions=None, rows=None) -> str:
    """Two lines per table: name and options, then what a row holds."""
    rows = ROWS if rows is None else rows
    lines = []
    for name in _functions(functions):
        opts = " ".join(
            f"--{k.replace('_', '-')} X" if d is inspect.Parameter.empty else f"[--{k.replace('_', '-')}]"
            for k, d in table_options(name, functions).items()
        )
        lines.append(f"  {name} {opts}\n      {rows.get(name, '')}")
    return "\n".join(lines)

"""Checks and conversions every model applies to its input tables: required
columns, numeric columns without gaps, column-name lists, the design matrix
of covariates (categorical ones as indicators) and strata codes.

Models take analysis tables as pandas DataFrames; :func:`to_pandas` also
accepts the lazy Ibis tables of :mod:`workbench.tables` for the models whose
inputs stay small (aggregated counts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.errors import ModelError, ParameterError


def to_pandas(table, where: str) -> pd.DataFrame:
    """A pandas DataFrame from a DataFrame or an Ibis table expression."""
    if isinstance(table, pd.DataFrame):
        return table
    if hasattr(table, "to_pandas") and hasattr(table, "schema"):
        return table.to_pandas()
    raise ParameterError(f"{where}: expected a pandas DataFrame or a workbench.tables expression, got {type(table).__name__}")


def to_ibis(table, where: str):
    """An Ibis table: as given, or a pandas DataFrame as an in-memory table (run on DuckDB)."""
    if isinstance(table, pd.DataFrame):
        import ibis

        return ibis.memtable(table)
    if hasattr(table, "schema") and hasattr(table, "to_pandas"):
        return table
    raise ParameterError(f"{where}: expected a workbench.tables expression (Ibis) or a DataFrame, got {type(table).__name__}")


def require_columns(df: pd.DataFrame, columns, where: str, hint: str = "") -> None:
    """Raise if ``df`` is not a DataFrame or lacks any of ``columns``."""
    if not isinstance(df, pd.DataFrame):
        raise ParameterError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}. {hint}".strip())
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ModelError(
            f"{where}: column(s) {', '.join(repr(c) for c in missing)} missing (columns found: "
            f"{', '.join(map(str, df.columns))}). {hint}".strip()
        )


def as_list(value, name: str) -> list[str]:
    """A column name or a list of them as a list (None: empty)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    try:
        out = list(value)
    except TypeError:
        raise ParameterError(f"{name} must be a column name or a list of column names, got {value!r}") from None
    if not all(isinstance(v, str) for v in out):
        raise ParameterError(f"{name} must hold column names (strings), got {out!r}")
    return out


def numeric(df: pd.DataFrame, column: str, where: str) -> np.ndarray:
    """Column as float64; booleans as 0/1; missing or infinite values are an error."""
    s = df[column]
    if s.dtype == bool or str(s.dtype) == "boolean":
        s = s.astype(float)
    try:
        x = pd.to_numeric(s, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise ModelError(f"{where}: column {column!r} must be numeric, found dtype {s.dtype}") from None
    bad = ~np.isfinite(x)
    if bad.any():
        raise ModelError(
            f"{where}: column {column!r} has {int(bad.sum()):,} missing or infinite value(s) "
            f"(e.g. rows {list(df.index[bad][:3])}); fill or drop them before fitting."
        )
    return x


def is_categorical(s: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s))


def design_matrix(df: pd.DataFrame, covariates, *, where: str = "design_matrix") -> tuple[np.ndarray, list[str]]:
    """Numeric design matrix (no intercept) for ``covariates``.

    Numeric and boolean columns enter as they are; any other column is
    categorical and enters as indicators ``column[level]`` against its first
    level in sorted order (the reference). Missing values are an error that
    names the column; a column with a single value is an error (it cannot be
    estimated and is usually a mistake in ``adjust_for``).
    """
    cols, names = [], []
    for c in as_list(covariates, "covariates"):
        if c not in df.columns:
            raise ModelError(f"{where}: covariate {c!r} is not a column (columns: {', '.join(map(str, df.columns))}); "
                             "pick user attributes that exist in the table.")
        s = df[c]
        if is_categorical(s):
            if s.isna().any():
                raise ModelError(f"{where}: covariate {c!r} has {int(s.isna().sum()):,} missing value(s); "
                                 "fill them (e.g. with 'unknown') or drop those users before fitting.")
            codes, levels = pd.factorize(s.astype(str), sort=True)
            if len(levels) < 2:
                raise ModelError(f"{where}: covariate {c!r} takes a single value ({levels[0]!r}) in these data, "
                                 "so its effect cannot be estimated; remove it from adjust_for.")
            for j, level in enumerate(levels[1:], start=1):
                cols.append((codes == j).astype(float))
                names.append(f"{c}[{level}]")
        else:
            x = numeric(df, c, where)
            if np.ptp(x) == 0:
                raise ModelError(f"{where}: covariate {c!r} is constant ({x[0]:g}) in these data, "
                                 "so its effect cannot be estimated; remove it from adjust_for.")
            cols.append(x)
            names.append(c)
    X = np.column_stack(cols) if cols else np.empty((len(df), 0))
    return X, names


def strata_codes(df: pd.DataFrame, strata: list[str], where: str) -> tuple[np.ndarray, int]:
    """Integer code per row of the combination of ``strata`` columns, and how many there are."""
    if not strata:
        return np.zeros(len(df), dtype=np.int64), 1
    for c in strata:
        if c not in df.columns:
            raise ModelError(f"{where}: stratum column {c!r} is not a column (columns: {', '.join(map(str, df.columns))}).")
        if df[c].isna().any():
            raise ModelError(f"{where}: stratum column {c!r} has {int(df[c].isna().sum()):,} missing value(s); fill or drop them.")
    codes, uniques = pd.MultiIndex.from_frame(df[strata].astype(str)).factorize()
    return np.asarray(codes, dtype=np.int64), len(uniques)


def as_number_list(value, name) -> list[float]:
    """A number or a list of numbers as a list of floats."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        return [float(value)]
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number or a list of numbers, got {value!r}") from None


__all__ = ["as_list", "as_number_list", "design_matrix", "is_categorical", "numeric", "require_columns", "strata_codes",
           "to_ibis", "to_pandas"]

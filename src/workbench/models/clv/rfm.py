"""The repeat-purchase summary as checked arrays: one row per unique
``(frequency, recency, T)`` pattern (and covariate level) with the number of
customers who share it, and the helpers every CLV module uses to read pandas
input (column checks that list every broken rule at once).

Covariates are categorical columns of the summary (a user attribute such as
``segment``, or the 0/1 ``exposed`` flag of ``workbench.tables.repeat_summary``).
Each distinct combination of their values is a *group*; a covariate with L
levels enters as L - 1 indicators against a reference level (by default the
level with the most customers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import DataError, ModelError, ParameterError, Violation


# ============================================================ reading pandas input
def as_frame(summary, func: str) -> pd.DataFrame:
    """``summary`` as a pandas DataFrame, or a ParameterError that says what to pass."""
    if isinstance(summary, pd.DataFrame):
        return summary
    if hasattr(summary, "to_pandas"):
        raise ParameterError(
            f"{func}: got an Ibis table; models take pandas. Pass `summary.to_pandas()` "
            "(e.g. workbench.tables.repeat_summary_compressed(ds, ...).to_pandas())."
        )
    raise ParameterError(f"{func}: summary must be a pandas DataFrame with the repeat-purchase columns, got {type(summary).__name__}")


def numeric_column(df: pd.DataFrame, name: str, func: str, role: str) -> np.ndarray:
    """Column ``name`` as floats (NaN for missing); ParameterError when absent, DataError when not numeric."""
    if name not in df.columns:
        raise ParameterError(
            f"{func}: the summary has no column {name!r} ({role}); columns found: {', '.join(map(str, df.columns))}. "
            "Pass the output of workbench.tables.repeat_summary(...) or repeat_summary_compressed(...), "
            f"or name the column with the {role.split()[0]}= argument."
        )
    try:
        return pd.to_numeric(df[name], errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise DataError([Violation("summary", name, f"must be numeric ({role}), found dtype {df[name].dtype}", len(df))]) from None


def violation(mask: np.ndarray, df: pd.DataFrame, column: str, rule: str, cols: list[str]) -> Violation | None:
    """A Violation for the rows in ``mask`` (with up to three examples), or None when there are none."""
    n = int(mask.sum())
    if not n:
        return None
    ex = df.loc[mask, [c for c in cols if c in df.columns]].head(3)
    return Violation("summary", column, rule, n, [dict(zip(ex.columns, map(_fmt, row))) for row in ex.itertuples(index=False)])


def _fmt(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else (round(v, 4) if isinstance(v, float) else v)


def count_weights(df: pd.DataFrame, weights: str | None, func: str) -> np.ndarray:
    """``weights`` column, else ``n`` when present (a compressed summary), else ones."""
    if weights is None:
        weights = "n" if "n" in df.columns else None
    if weights is None:
        return np.ones(len(df))
    return numeric_column(df, weights, func, "weights column of customer counts")


def nonnegative(v, name: str, func: str) -> float:
    """A finite number >= 0, or a ParameterError."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ParameterError(f"{func}: {name} must be a number >= 0, got {v!r}") from None
    if not np.isfinite(v) or v < 0:
        raise ParameterError(f"{func}: {name} must be a finite number >= 0, got {v!r}")
    return v


# ============================================================ covariates
@dataclass(frozen=True)
class Covariates:
    """The design of categorical covariates: ``columns`` (summary columns), ``reference`` (the
    reference level of each), ``terms`` (indicator names such as ``segment=enthusiast``),
    ``levels`` (one row per group: the columns' values) and ``Z`` (groups x terms indicators)."""

    columns: tuple[str, ...]
    reference: dict
    terms: tuple[str, ...]
    levels: pd.DataFrame
    Z: np.ndarray

    def groups_of(self, df: pd.DataFrame, func: str) -> np.ndarray:
        """The group index of each row of ``df`` (ParameterError for a level the fit never saw)."""
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise ParameterError(f"{func}: the model was fitted with covariates {', '.join(self.columns)}; the summary lacks {', '.join(missing)}")
        keys = pd.MultiIndex.from_frame(_level_strings(df, self.columns, func))
        known = pd.MultiIndex.from_frame(self.levels.astype(str))
        g = known.get_indexer(keys)
        if (g < 0).any():
            bad = keys[g < 0][0]
            raise ParameterError(
                f"{func}: covariate level {dict(zip(self.columns, bad if isinstance(bad, tuple) else (bad,)))} was not in the data "
                "the model was fitted on, so it has no estimate; predict only for levels seen in the fit."
            )
        return g


def _level_strings(df: pd.DataFrame, columns, func) -> pd.DataFrame:
    out = {}
    problems = []
    for c in columns:
        col = df[c]
        if col.isna().any():
            problems.append(
                Violation("summary", c, "covariate values must not be missing (fill them, e.g. 'unknown', or drop those customers)", int(col.isna().sum()))
            )
        # 0/1 flags arrive as integers or booleans; levels are compared as text
        if pd.api.types.is_bool_dtype(col):
            col = col.astype(int)
        if pd.api.types.is_float_dtype(col):
            whole = col.dropna()
            if (whole == np.round(whole)).all():
                col = col.astype("Int64")
        out[c] = col.astype(str)
    if problems:
        raise DataError(problems)
    return pd.DataFrame(out, index=df.index)


def covariate_design(df: pd.DataFrame, columns, weights: np.ndarray, reference: dict | None, func: str) -> tuple[Covariates, np.ndarray]:
    """The covariate design of a summary and the group index of each row."""
    if isinstance(columns, str):
        columns = (columns,)
    columns = tuple(columns)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ParameterError(
            f"{func}: covariates {', '.join(map(repr, missing))} are not columns of the summary "
            f"({', '.join(map(str, df.columns))}); build it with repeat_summary_compressed(ds, covariates=...)"
        )
    if len(set(columns)) != len(columns):
        raise ParameterError(f"{func}: covariates {list(columns)} name a column twice")
    reference = dict(reference or {})
    unknown = [k for k in reference if k not in columns]
    if unknown:
        raise ParameterError(f"{func}: reference levels given for {unknown}, which are not among the covariates {list(columns)}")
    text = _level_strings(df, columns, func)
    terms, ref = [], {}
    for c in columns:
        counts = pd.Series(weights, index=text.index).groupby(text[c]).sum().sort_index()
        counts = counts[counts > 0]
        if len(counts) < 2:
            raise ModelError(
                f"{func}: covariate {c!r} has a single level ({', '.join(counts.index) or 'none'}) "
                "among the customers, so it has no effect to estimate; leave it out."
            )
        if c in reference:
            r = str(reference[c])
            if r not in counts.index:
                raise ParameterError(f"{func}: reference level {r!r} of covariate {c!r} is not among its levels ({', '.join(counts.index)})")
        else:
            r = counts.idxmax()  # the most common level (ties: the first in sorted order)
        ref[c] = r
        terms += [f"{c}={v}" for v in counts.index if v != r]
    keys = pd.MultiIndex.from_frame(text)
    codes, uniques = pd.factorize(keys, sort=True)
    levels = pd.DataFrame([tuple(u) for u in uniques], columns=list(columns))
    Z = np.zeros((len(levels), len(terms)))
    for j, term in enumerate(terms):
        c, v = term.split("=", 1)
        Z[:, j] = (levels[c] == v).to_numpy(dtype=float)
    return Covariates(columns, ref, tuple(terms), levels, Z), codes.astype(np.int64)


# ============================================================ the summary as arrays
@dataclass(frozen=True)
class RFM:
    """A checked, compressed repeat-purchase summary: unique (x, t_x, T, group) rows, their counts
    ``n`` and, with covariates, their design."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    n: np.ndarray
    g: np.ndarray  # group of each row (all 0 without covariates)
    covariates: Covariates | None = None

    @property
    def customers(self) -> float:
        return float(self.n.sum())

    @property
    def repeat_customers(self) -> float:
        return float(self.n[self.x > 0].sum())

    @property
    def repeat_transactions(self) -> float:
        return float((self.n * self.x).sum())

    @property
    def groups(self) -> int:
        return 1 if self.covariates is None else len(self.covariates.levels)

    def group(self, k: int) -> RFM:
        """The rows of group ``k`` (without covariates)."""
        sel = self.g == k
        return RFM(self.x[sel], self.tx[sel], self.T[sel], self.n[sel], np.zeros(int(sel.sum()), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.x)


def rfm_arrays(
    summary,
    *,
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
    weights: str | None = None,
    covariates=None,
    reference: dict | None = None,
    func: str = "rfm_arrays",
    compress: bool = True,
) -> RFM:
    """Check a repeat-purchase summary and compress it to unique ``(x, t_x, T)`` rows (per
    covariate group when ``covariates`` names categorical columns).

    Raises DataError (listing every broken rule: negative or non-integer frequency, recency after
    T, missing values, ...) or ParameterError (missing columns, wrong type)."""
    df = as_frame(summary, func)
    x = numeric_column(df, frequency, func, "frequency column: repeat purchases")
    tx = numeric_column(df, recency, func, "recency column: time of the last repeat purchase")
    big_t = numeric_column(df, T, func, "T column: time since the first purchase")
    n = count_weights(df, weights, func)
    cols = [c for c in (frequency, recency, T, weights or "n") if c in df.columns]
    checks = [
        (~np.isfinite(x) | ~np.isfinite(tx) | ~np.isfinite(big_t) | ~np.isfinite(n), "(all)", "missing or infinite values"),
        (np.isfinite(x) & ((x < 0) | (x != np.round(x))), frequency, "frequency must be a whole number >= 0"),
        (np.isfinite(tx) & (tx < 0), recency, "recency must be >= 0"),
        (np.isfinite(big_t) & (big_t < 0), T, "T must be >= 0 (the first purchase cannot come after the calibration end)"),
        (np.isfinite(big_t) & (big_t == 0) & (x > 0), frequency, "frequency must be 0 when T is 0 (first purchase on the calibration end)"),
        (np.isfinite(tx) & np.isfinite(big_t) & (tx > big_t * (1 + 1e-9) + 1e-12), recency, "recency must be <= T"),
        ((x == 0) & (tx > 0), recency, "recency must be 0 when frequency is 0"),
        (np.isfinite(n) & (n < 0), weights or "n", "customer counts must be >= 0"),
    ]
    violations = [v for mask, col, rule in checks if (v := violation(mask, df, col, rule, cols)) is not None]
    if violations:
        raise DataError(violations)
    design, g = None, np.zeros(len(df), dtype=np.int64)
    if covariates:
        design, g = covariate_design(df, covariates, n, reference, func)
    keep = n > 0
    if not keep.all():
        x, tx, big_t, n, g = x[keep], tx[keep], big_t[keep], n[keep], g[keep]
    tx = np.minimum(tx, big_t)
    if not len(x):
        raise ModelError(f"{func}: the summary has no customers (0 rows with a positive count); there is nothing to fit.")
    if compress:
        x, tx, big_t, n, g = compress_rows(x, tx, big_t, n, g)
    return RFM(x, tx, big_t, n, g, design)


def compress_rows(x, tx, T, n, g=None):
    """Unique (g, x, t_x, T) rows (sorted) with summed counts: each column factorised (hashing), the
    codes combined into one integer key. Rows that are already unique and sorted (a compressed
    summary sorted by frequency, recency, T, as ``groupby`` returns it) are returned as they are."""
    g = np.zeros(len(x), dtype=np.int64) if g is None else g
    if not g.any() and sorted_unique(x, tx, T):
        return x, tx, T, n, g
    cx, ux = pd.factorize(x, sort=True)
    ct, ut = pd.factorize(tx, sort=True)
    cT, uT = pd.factorize(T, sort=True)
    key = ((g.astype(np.int64) * len(ux) + cx) * len(ut) + ct) * len(uT) + cT
    inv, uk = pd.factorize(key, sort=False)
    counts = np.bincount(inv, weights=n, minlength=len(uk))
    order = np.argsort(uk)
    uk, counts = uk[order], counts[order]
    iT = uk % len(uT)
    rest = uk // len(uT)
    it = rest % len(ut)
    rest = rest // len(ut)
    ix = rest % len(ux)
    gg = rest // len(ux)
    return ux[ix].astype(float), ut[it].astype(float), uT[iT].astype(float), counts, gg.astype(np.int64)


def sorted_unique(x, tx, T) -> bool:
    """Whether the rows are strictly increasing in (x, t_x, T) order (so unique)."""
    if len(x) < 2:
        return True
    dx, dt, dT = np.diff(x), np.diff(tx), np.diff(T)
    return bool(np.all((dx > 0) | ((dx == 0) & ((dt > 0) | ((dt == 0) & (dT > 0))))))


def by_unique(fn, *columns) -> np.ndarray:
    """Evaluate ``fn(*columns)`` on the unique rows of the columns and scatter back (rows along the
    first axis of the result)."""
    stacked = np.column_stack(columns)
    if len(stacked) > 1000:
        u, inv = np.unique(stacked, axis=0, return_inverse=True)
        if len(u) < 0.7 * len(stacked):
            return np.asarray(fn(*(u[:, j] for j in range(u.shape[1]))))[inv.ravel()]
    return np.asarray(fn(*columns))


def require_repeat(rfm: RFM, func: str) -> None:
    """ModelError unless there are repeat buyers, enough customers, and (with covariates) repeat
    buyers in every level of every covariate."""
    if rfm.repeat_customers == 0:
        raise ModelError(
            f"{func}: no repeat buyers: all {rfm.customers:,.0f} customers have frequency 0, so the purchase and "
            "dropout rates cannot be told apart. Use a later calibration_end (a longer calibration period) or a "
            "dataset with repeat purchases."
        )
    if len(rfm) < 4 or rfm.customers < 10:
        raise ModelError(f"{func}: only {rfm.customers:,.0f} customer(s) in {len(rfm)} pattern(s); a 4-parameter model needs many more (hundreds).")
    cov = rfm.covariates
    if cov is None:
        return
    per_group = np.bincount(rfm.g, weights=rfm.n * (rfm.x > 0), minlength=rfm.groups)
    size = np.bincount(rfm.g, weights=rfm.n, minlength=rfm.groups)
    for c in cov.columns:
        for level in cov.levels[c].unique():
            sel = (cov.levels[c] == level).to_numpy()
            if per_group[sel].sum() == 0:
                raise ModelError(
                    f"{func}: covariate {c!r} level {level!r} has no repeat buyers (its {size[sel].sum():,.0f} customers all "
                    "have frequency 0), so its purchase and drop-out rates cannot be estimated. Merge it with another level, "
                    "leave those customers out, or use a longer calibration period."
                )

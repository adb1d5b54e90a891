"""Holdout validation of the purchase models and the choice of the model to
trust.

:func:`holdout_comparison` sets each customer's actual purchases in the
holdout against the model's conditional expectation given her calibration
history: by calibration frequency (the classic calibration/holdout plot), in
total, and per customer (mean squared and mean absolute error).

:func:`choose_model` picks one of several models by a stated rule and returns
the choice, every model's errors and a machine-readable reason (wording is
left to the report). The default rule, ``"customer_mse"``: the model with the
lower mean squared error of holdout purchases per customer, because the
models predict conditional *means*, which squared error rewards (absolute
error is minimised by the median, 0 for most customers, so it favours models
that predict too little). When the paired difference between the two best
models is within ``tolerance`` standard errors (customers are the pairs) the
per-customer evidence does not separate them: among the models within
``tolerance`` standard errors of the best, the one with the smallest absolute
error of the total holdout purchases is chosen instead.
``rule="total_error"`` uses that total error alone, ``rule="bin_error"`` the
customer-weighted error of the calibration/holdout curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.errors import ModelError, ParameterError
from workbench.models.clv.counting import CountingResult
from workbench.models.clv.rfm import as_frame, by_unique, count_weights, nonnegative, numeric_column, rfm_arrays
from workbench.models.results import Result

RULES = ("customer_mse", "total_error", "bin_error")


@dataclass(frozen=True, eq=False)
class HoldoutComparison(Result):
    """Actual versus expected holdout purchases.

    ``table``: one row per calibration frequency (the last bucket is
    ``max_frequency`` and more): ``customers``, ``actual`` and ``expected``
    (mean holdout purchases per customer), ``actual_total``, ``expected_total``.
    ``rows``: per summary row ``n`` (customers), ``actual_sum``,
    ``actual_sq_sum`` (sum of squared holdout purchases, NaN when unknown),
    ``expected`` (per customer), and ``abs_error_sum`` (sum of absolute errors;
    only for a per-customer summary)."""

    table: pd.DataFrame
    duration: float
    model: str
    time_unit: str | None = None
    rows: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def actual_total(self) -> float:
        return float(self.table["actual_total"].sum())

    @property
    def expected_total(self) -> float:
        return float(self.table["expected_total"].sum())

    @property
    def total_error(self) -> float:
        """(expected - actual) / actual over all customers."""
        return self.expected_total / self.actual_total - 1.0 if self.actual_total > 0 else float("nan")

    @property
    def mean_abs_error(self) -> float:
        """Customer-weighted mean absolute difference of the per-customer means across frequency
        buckets (the error of the calibration/holdout curve)."""
        t = self.table
        return float(np.average(np.abs(t["expected"] - t["actual"]), weights=t["customers"]))

    @property
    def customer_mse(self) -> float:
        """Mean over customers of (actual - expected)^2 holdout purchases (NaN when the summary had no
        per-pattern sum of squares)."""
        r = self.rows
        if r is None or not np.all(np.isfinite(r["actual_sq_sum"])):
            return float("nan")
        sse = r["actual_sq_sum"] - 2 * r["expected"] * r["actual_sum"] + r["n"] * r["expected"] ** 2
        return float(sse.sum() / r["n"].sum())

    @property
    def customer_mae(self) -> float:
        """Mean over customers of |actual - expected| holdout purchases (per-customer summaries only)."""
        r = self.rows
        if r is None or not np.all(np.isfinite(r["abs_error_sum"])):
            return float("nan")
        return float(r["abs_error_sum"].sum() / r["n"].sum())

    def errors(self) -> dict:
        """Every error measure by name."""
        return {
            "actual_total": self.actual_total,
            "expected_total": self.expected_total,
            "total_error": self.total_error,
            "bin_error": self.mean_abs_error,
            "customer_mse": self.customer_mse,
            "customer_rmse": math.sqrt(self.customer_mse) if np.isfinite(self.customer_mse) else float("nan"),
            "customer_mae": self.customer_mae,
        }

    def summary(self) -> pd.DataFrame:
        return self.table.copy()

    def to_metrics(self, prefix: str | None = None) -> dict:
        prefix = prefix or f"clv.holdout.{self.model.lower().replace('/', '_').replace('-', '_')}"
        # per-customer errors only where the summary gave them (no NaN in metrics.json)
        out = {f"{prefix}.{k}": v for k, v in self.errors().items() if k != "bin_error" and np.isfinite(v)}
        out[f"{prefix}.mean_abs_error"] = self.mean_abs_error
        out[f"{prefix}.duration"] = self.duration
        return out


def holdout_comparison(
    purchases: CountingResult,
    summary,
    *,
    duration: float | None = None,
    max_frequency: int = 7,
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
    holdout: str | None = None,
    duration_holdout: str = "duration_holdout",
    weights: str | None = None,
) -> HoldoutComparison:
    """Compare actual holdout purchases with the model's conditional expectations.

    ``holdout`` is the column of holdout purchases: ``frequency_holdout`` (per
    customer) or ``frequency_holdout_sum`` (per compressed pattern; the sum over
    its ``n`` customers, with ``frequency_holdout_sq_sum`` for the per-customer
    squared error), found automatically when not given. ``duration`` is the
    holdout length in the summary's time unit; by default the column
    ``duration_holdout``."""
    func = "holdout_comparison"
    if not isinstance(purchases, CountingResult):
        raise ParameterError(f"{func}: purchases must be a fitted BG/NBD, MBG/NBD or Pareto/NBD result, got {type(purchases).__name__}")
    df = as_frame(summary, func)
    if holdout is None:
        holdout = next((c for c in ("frequency_holdout", "frequency_holdout_sum") if c in df.columns), None)
        if holdout is None:
            raise ParameterError(
                f"{func}: the summary has no holdout purchases column (frequency_holdout or "
                "frequency_holdout_sum); build it with a holdout_end after calibration_end."
            )
    actual = numeric_column(df, holdout, func, "holdout purchases column")
    n = count_weights(df, weights, func)
    if duration is None:
        if duration_holdout not in df.columns:
            raise ParameterError(f"{func}: give duration= (the holdout length in the summary's time unit) or a {duration_holdout!r} column.")
        dur = numeric_column(df, duration_holdout, func, "holdout duration column")
    else:
        dur = np.full(len(df), nonnegative(duration, "duration", func))
    if not np.all(np.isfinite(dur)) or (dur <= 0).all():
        raise ModelError(
            f"{func}: the holdout period is empty (duration {np.nanmax(dur) if len(dur) else 0:g}); choose a calibration_end before the end of the data."
        )
    rfm = rfm_arrays(df, frequency=frequency, recency=recency, T=T, weights=None, func=func, compress=False)
    g = np.zeros(len(df), dtype=np.int64) if purchases.covariates is None else purchases.covariates.groups_of(df, func)
    expected = np.empty(len(df))
    for d in np.unique(dur):
        sel = dur == d
        expected[sel] = by_unique(
            lambda a, b, c, k, d=d: purchases._evaluate("expected", a, b, c, k.astype(np.int64), float(d)), rfm.x[sel], rfm.tx[sel], rfm.T[sel], g[sel]
        )
    per_customer = not holdout.endswith("_sum")
    actual_sum = actual * n if per_customer else actual
    if per_customer:
        sq_sum, abs_sum = actual**2 * n, np.abs(actual - expected) * n
    else:
        sq_col = holdout.removesuffix("_sum") + "_sq_sum"
        sq_sum = numeric_column(df, sq_col, func, "holdout sum of squares") if sq_col in df.columns else np.full(len(df), np.nan)
        abs_sum = np.full(len(df), np.nan)
    bucket = np.minimum(rfm.x, max_frequency).astype(int)
    t = (
        pd.DataFrame({"frequency": bucket, "customers": n, "actual_total": actual_sum, "expected_total": expected * n})
        .groupby("frequency")
        .sum()
    )
    t["actual"] = t["actual_total"] / t["customers"]
    t["expected"] = t["expected_total"] / t["customers"]
    labels = [str(i) if i < max_frequency else f"{max_frequency}+" for i in t.index]
    t.index = pd.Index(labels, name="calibration_frequency")
    t = t[["customers", "actual", "expected", "actual_total", "expected_total"]]
    rows = pd.DataFrame({"n": n, "actual_sum": actual_sum, "actual_sq_sum": sq_sum, "expected": expected, "abs_error_sum": abs_sum})
    return HoldoutComparison(table=t, duration=float(np.max(dur)), model=purchases.LABEL, time_unit=purchases.time_unit, rows=rows)


@dataclass(frozen=True, eq=False)
class ModelChoice(Result):
    """The model to trust and why.

    ``chosen``: the chosen model's label; ``rule``: the rule applied;
    ``reason``: a machine-readable account (``code`` is one of
    ``"lower_customer_mse"``, ``"customer_mse_tie_lower_total_error"``,
    ``"lower_total_error"``, ``"lower_bin_error"``, ``"only_model"``, with the
    numbers the decision used: ``criterion``, ``best``/``best_value`` and
    ``second``/``second_value`` by that criterion, for the per-customer rule
    ``difference`` (mean paired difference of squared errors, best minus
    second), ``difference_se``, ``tolerance``, ``tied`` (the models within
    ``tolerance`` standard errors of the best), ``decisive`` (no other model
    tied), and on a tie ``chosen_total_error``/``other_total_error`` (the
    smallest and next-smallest total error among the tied)); ``table``: every model's holdout errors;
    ``comparisons``: the HoldoutComparison of each model."""

    chosen: str
    rule: str
    reason: dict
    table: pd.DataFrame
    comparisons: dict = field(repr=False)

    def summary(self) -> pd.DataFrame:
        return self.table.copy()

    def to_metrics(self, prefix: str = "clv.choice") -> dict:
        out = {f"{prefix}.chosen": self.chosen, f"{prefix}.rule": self.rule, f"{prefix}.code": self.reason["code"]}
        for k, v in self.reason.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"{prefix}.{k}"] = float(v)
        return out

    def _repr_html_(self) -> str:
        head = f"<strong>ModelChoice</strong> — {self.chosen} (rule {self.rule}: {self.reason['code']})"
        return head + self.table.to_html(float_format=lambda v: f"{v:.4g}")


def choose_model(comparisons, *, rule: str = "customer_mse", tolerance: float = 2.0) -> ModelChoice:
    """Pick the model to trust from holdout comparisons of several models on the same customers.

    ``comparisons``: a list of :class:`HoldoutComparison` (or a dict by
    label), all made on the same summary. ``rule``: ``"customer_mse"``
    (default; see the module docstring), ``"total_error"`` or ``"bin_error"``.
    ``tolerance``: standard errors of the paired per-customer difference
    within which two models count as equally good per customer."""
    func = "choose_model"
    if rule not in RULES:
        raise ParameterError(f"{func}: rule must be one of {', '.join(RULES)}, got {rule!r}")
    if isinstance(comparisons, HoldoutComparison):
        comparisons = [comparisons]
    items = dict(comparisons) if isinstance(comparisons, dict) else {c.model: c for c in comparisons}
    if not items or not all(isinstance(c, HoldoutComparison) for c in items.values()):
        raise ParameterError(f"{func}: give one or more HoldoutComparison results (holdout_comparison(model, summary))")
    first = next(iter(items.values()))
    for label, c in items.items():
        same = len(c.rows) == len(first.rows) and np.allclose(c.rows["actual_sum"], first.rows["actual_sum"]) and np.allclose(c.rows["n"], first.rows["n"])
        if not same:
            raise ParameterError(
                f"{func}: the comparisons are not on the same customers ({label} differs from {first.model}); compare every model on one summary"
            )
    table = pd.DataFrame({label: c.errors() for label, c in items.items()}).T.rename_axis("model")
    table["abs_total_error"] = table["total_error"].abs()
    if len(items) == 1:
        label = next(iter(items))
        return ModelChoice(label, rule, {"code": "only_model", "chosen": label}, table, items)
    if rule == "customer_mse" and not table["customer_mse"].notna().all():
        raise ParameterError(
            f"{func}: rule 'customer_mse' needs each customer's holdout purchases: compare on the per-customer "
            "repeat_summary, or on repeat_summary_compressed with its frequency_holdout_sq_sum column"
        )
    key = {"customer_mse": "customer_mse", "total_error": "abs_total_error", "bin_error": "bin_error"}[rule]
    ranked = table[key].sort_values(kind="stable")
    best, second = ranked.index[0], ranked.index[1]
    reason = {"criterion": key, "chosen": best, "best": best, "best_value": float(ranked.iloc[0]), "second": second, "second_value": float(ranked.iloc[1])}
    if rule != "customer_mse":
        reason["code"] = "lower_total_error" if rule == "total_error" else "lower_bin_error"
        return ModelChoice(best, rule, reason, table, items)
    paired = {m: _paired_mse_difference(items[best], items[m]) for m in ranked.index[1:]}
    diff, se = paired[second]
    tied = [best] + [m for m, (d, e) in paired.items() if abs(d) <= tolerance * e]
    reason.update(difference=diff, difference_se=se, tolerance=float(tolerance), decisive=len(tied) == 1, tied=tied)
    if len(tied) == 1:
        reason["code"] = "lower_customer_mse"
        return ModelChoice(best, rule, reason, table, items)
    by_total = table.loc[tied, "abs_total_error"].sort_values(kind="stable")
    chosen = by_total.index[0]
    reason.update(code="customer_mse_tie_lower_total_error", chosen=chosen, chosen_total_error=float(table.loc[chosen, "total_error"]),
                  other_total_error=float(table.loc[by_total.index[1], "total_error"]))
    return ModelChoice(chosen, rule, reason, table, items)


def _paired_mse_difference(a: HoldoutComparison, b: HoldoutComparison) -> tuple[float, float]:
    """Mean over customers of d_i = (y_i - e_a)^2 - (y_i - e_b)^2 and its standard error, from the
    per-row sums of y and y^2: d = c - 2 y D with c = e_a^2 - e_b^2, D = e_a - e_b."""
    r = a.rows
    n, sy, syy = r["n"].to_numpy(), r["actual_sum"].to_numpy(), r["actual_sq_sum"].to_numpy()
    ea, eb = a.rows["expected"].to_numpy(), b.rows["expected"].to_numpy()
    c, D = ea**2 - eb**2, ea - eb
    N = n.sum()
    s1 = np.sum(n * c - 2 * D * sy)
    s2 = np.sum(n * c**2 - 4 * c * D * sy + 4 * D**2 * syy)
    mean = s1 / N
    var = max(s2 / N - mean**2, 0.0) * N / max(N - 1, 1)
    return float(mean), float(math.sqrt(var / N))

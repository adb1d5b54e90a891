"""Words every report shares: whether an estimate can be stated at all, and
how a ratio (a rate, hazard or odds ratio against a reference) is said,
with its direction decided by its interval."""

from __future__ import annotations

import math

from workbench.analyses import format as fmt
from workbench.plots.style import term_label  # noqa: F401  (one naming of model terms, for tables and figures)


def estimable(value, low=None, high=None) -> bool:
    """An estimate that can be stated: finite, with a finite interval (when
    one is given). A model that is not identified (everyone exposed, a
    flat likelihood) gives an undefined or infinite interval: no finding."""
    vals = [value] if low is None and high is None else [value, low, high]
    try:
        return all(v is not None and math.isfinite(float(v)) for v in vals)
    except (TypeError, ValueError):
        return False


def ratio_direction(low, high) -> str:
    """"higher" or "lower" when the interval of a ratio excludes 1, else "no clear difference"."""
    if low > 1:
        return "higher"
    if high < 1:
        return "lower"
    return "no clear difference"


def ratio_phrase(subject: str, verb: str, ratio, low, high, reference: str, *, measure: str = "rate") -> str:
    """``Users with segment b convert at 1.50 times the rate of those with
    segment a (95% CI 1.20 to 1.90).`` When the interval includes 1 it says
    so; when the ratio cannot be estimated it says that instead of a number."""
    if not estimable(ratio, low, high):
        return f"{subject} against {reference}: the {measure} ratio is not estimable on this data (its interval is undefined)."
    head = f"{subject} {verb} at {fmt.ratio(ratio)} times the {measure} of {reference}"
    if ratio_direction(low, high) == "no clear difference":
        return f"{head}, but the interval ({fmt.interval(low, high)}) includes no difference."
    return f"{head} ({fmt.interval(low, high)})."

"""Multiple comparisons across arms x metrics: adjusted p-values (statsmodels
``multipletests``) and the matching adjusted confidence level.

- ``holm``: Holm's step-down adjustment (family-wise error rate). Its
  intervals are the Bonferroni ones, level 1 - alpha / m: simultaneous
  intervals compatible with Holm's test do not have a simpler form.
- ``bh``: Benjamini-Hochberg (false discovery rate). Its intervals are the
  false-coverage-rate intervals of Benjamini and Yekutieli (2005), level
  1 - R alpha / m with R the number of hypotheses BH rejects (alpha / m
  when it rejects none).
- ``none``: raw p-values and intervals.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import ParameterError

CORRECTIONS = {"holm": "holm", "bh": "fdr_bh", "none": None}


def check_correction(correction: str) -> str:
    if correction not in CORRECTIONS:
        raise ParameterError(f"correction={correction!r} is not one of {', '.join(map(repr, CORRECTIONS))} "
                             "(holm: family-wise error, bh: false discovery rate, none: no adjustment)")
    return correction


def adjust(p_values, correction: str, alpha: float = 0.05) -> tuple[np.ndarray, float]:
    """(adjusted p-values, the alpha of the adjusted intervals) for the finite
    ``p_values``; NaN p-values stay NaN and are not counted in the family."""
    from statsmodels.stats.multitest import multipletests

    check_correction(correction)
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out, alpha
    method = CORRECTIONS[correction]
    if method is None:
        out[ok] = p[ok]
        return out, alpha
    reject, adjusted, _, _ = multipletests(p[ok], alpha=alpha, method=method)
    out[ok] = adjusted
    if correction == "holm":
        return out, alpha / m
    return out, alpha * max(int(reject.sum()), 1) / m


__all__ = ["CORRECTIONS", "adjust", "check_correction"]

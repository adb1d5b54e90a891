"""Landmark tables: the users still at risk at each landmark day, their
exposure frozen there, and their follow-up from the landmark, aggregated into
risk sets per (landmark, covariate pattern, exposed, tenure bin since the
landmark) -- the input of the landmark comparison with inverse probability
weighting at any number of users -- and the per-user rows those risk sets
sum, for the one engine pass of its user-clustered variance.

Rules (as ``workbench.models.survival.landmark_data`` on episodes): a user is
at risk at landmark day d if their observed time (see
:func:`~workbench.tables.survival.survival`) runs past d; ``exposed`` = their
first ``exposure`` event is at or before d; the follow-up is (0, duration - d]
days after d, ending in ``churned`` or censoring.
"""

from __future__ import annotations

import ibis
import pandas as pd

from workbench.errors import ParameterError
from workbench.tables.common import (
    DAY,
    DEFAULT_CHURN,
    EXPOSURES,
    bin_seconds,
    check_choice,
    check_strata,
    constant,
    days,
    flag,
)
from workbench.tables.survival import aggregate_risk_sets, lifetimes


def _check_landmarks(table_fn: str, landmarks) -> list[float]:
    try:
        values = [float(landmarks)] if isinstance(landmarks, (int, float)) else [float(d) for d in landmarks]
    except (TypeError, ValueError):
        raise ParameterError(f"{table_fn}(): landmarks must be a number of days or a list of them, got {landmarks!r}") from None
    values = sorted(set(values))
    if not values or min(values) < 0:
        raise ParameterError(f"{table_fn}(): give one or more landmark days >= 0, e.g. landmarks=(30, 90), got {landmarks!r}")
    return values


def _check_coarsen(table_fn: str, coarsen, covariates: list[str]) -> dict:
    if coarsen is None:
        return {}
    if not isinstance(coarsen, dict):
        raise ParameterError(f"{table_fn}(): coarsen must be a dict of covariate -> bin width, e.g. {{'age': 10}}, got {coarsen!r}")
    for name, width in coarsen.items():
        if name not in covariates:
            raise ParameterError(f"{table_fn}(): coarsen names {name!r}, which is not among the covariates {covariates}")
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise ParameterError(f"{table_fn}(): the bin width of {name!r} in coarsen must be a number > 0, got {width!r}")
    return dict(coarsen)


def _at_landmarks(ds, table_fn, landmarks, exposure, churn, churn_after_days, covariates, coarsen=None):
    """Per (user, landmark) at risk there: user_id, landmark (days), exposed,
    covariates (numeric ones in ``coarsen`` floored to multiples of their
    width), fol_s (seconds of follow-up after the landmark), churned."""
    check_choice(table_fn, "exposure", exposure, EXPOSURES)
    lm_days = _check_landmarks(table_fn, landmarks)
    covariates = check_strata(table_fn, ds, covariates)
    coarsen = _check_coarsen(table_fn, coarsen, covariates)
    life = lifetimes(ds, table_fn, churn=churn, churn_after_days=churn_after_days, exposure=exposure)
    marks = ibis.memtable(pd.DataFrame({"landmark": lm_days, "wb_lm_s": [round(d * DAY) for d in lm_days]}))
    j = life.cross_join(marks)
    j = j.filter(j.dur_s > j.wb_lm_s)
    for name, width in coarsen.items():
        if not j[name].type().is_numeric():
            raise ParameterError(f"{table_fn}(): coarsen needs a numeric covariate; {name!r} is {j[name].type()}")
        j = j.mutate(**{name: ((j[name] / width).floor() * width).cast("float64")})
    return j.select(
        "user_id",
        *covariates,  # positional: before the named columns, as Python passes them anyway
        landmark=j.landmark.cast("float64"),
        exposed=flag(j.exp_s.notnull() & (j.exp_s <= j.wb_lm_s)),
        fol_s=(j.dur_s - j.wb_lm_s).cast("int64"),
        churned=j.churned.cast("int64"),
    ), covariates


def landmark_risk_sets(
    ds,
    *,
    landmarks=(30, 90, 180),
    exposure: str = "adopted",
    churn: str = DEFAULT_CHURN,
    churn_after_days: float = 30,
    bin_days: float = 7,
    covariates=("segment",),
    coarsen: dict | None = None,
) -> ibis.Table:
    """One row per (``tenure_bin`` since the landmark, ``exposed``,
    ``landmark``, covariates...) with ``at_risk``, ``events`` (churns) and
    ``exposure_days``, by the rules of :func:`~workbench.tables.risk_sets`
    applied to each user's follow-up after each landmark (bin b is
    (b*bin_days, (b+1)*bin_days] days after the landmark). ``at_risk`` of bin
    0 counts the users at risk at the landmark in each (covariate pattern,
    exposed) group: the data of a propensity model. Covariates are user
    attributes, grouped as they are (coarsen a continuous one first: the table
    has a row per distinct value): ``coarsen={"age": 10}`` floors a numeric
    covariate to multiples of the width (age 37 -> 30.0), in the engine."""
    bin_s = bin_seconds("landmark_risk_sets", bin_days)
    at, covariates = _at_landmarks(ds, "landmark_risk_sets", landmarks, exposure, churn, churn_after_days, covariates,
                                   coarsen)
    sp = at.select("user_id", "exposed", "landmark", *covariates, start_s=constant(0, "int64"), stop_s=at.fol_s,
                   event=at.churned)
    out = aggregate_risk_sets(sp, bin_s, ["landmark", *covariates])
    return out.select("landmark", "tenure_bin", "exposed", *covariates, "at_risk", "events", "exposure_days").order_by(
        ["landmark", "tenure_bin", "exposed", *covariates])


def landmark_users(
    ds,
    *,
    landmarks=(30, 90, 180),
    exposure: str = "adopted",
    churn: str = DEFAULT_CHURN,
    churn_after_days: float = 30,
    bin_days: float = 7,
    covariates=("segment",),
    coarsen: dict | None = None,
) -> ibis.Table:
    """The per-user rows :func:`landmark_risk_sets` sums (same arguments): one
    row per (user, landmark) at risk there with ``user_id``, ``landmark``,
    ``exposed``, covariates, ``tenure_bin`` (the last bin of the follow-up,
    where it ends), ``last_days`` (the follow-up's days in that bin) and
    ``churned``. Meant to stay in the engine (the
    user-clustered variance of a model fitted on the risk sets is one pass
    over it), not to be pulled into memory at scale."""
    bin_s = bin_seconds("landmark_users", bin_days)
    at, covariates = _at_landmarks(ds, "landmark_users", landmarks, exposure, churn, churn_after_days, covariates,
                                   coarsen)
    last = ((at.fol_s + (bin_s - 1)) // bin_s - 1).cast("int64")  # ceil(follow-up / bin) - 1
    return at.select("user_id", "landmark", "exposed", *covariates, tenure_bin=last,
                     last_days=days(at.fol_s - last * bin_s), churned=at.churned)


__all__ = ["landmark_risk_sets", "landmark_users"]

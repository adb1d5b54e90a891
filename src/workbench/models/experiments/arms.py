"""Checks every experiment model shares: the experiment's name, the control
arm, the treatment arm of a two-arm comparison, and metric names for
``metrics.json``."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from workbench.data.contract import CONTROL_ARM
from workbench.errors import ModelError, ParameterError
from workbench.models.inputs import numeric as _numeric
from workbench.models.inputs import require_columns as _require_columns


def check_experiment(experiment: str, available) -> None:
    """ParameterError naming the experiments there are, if ``experiment`` is not one of them."""
    names = sorted(str(a) for a in available)
    if not isinstance(experiment, str) or experiment not in names:
        raise ParameterError(f"experiment {experiment!r} does not exist in this dataset's assignments; "
                             f"experiments there: {', '.join(map(repr, names)) or 'none'}. Set the experiment parameter to one of them.")


def check_control(arms, where: str) -> list[str]:
    """The arms, sorted, after checking that one is named ``control``."""
    arms = sorted(str(a) for a in arms)
    if not arms:
        raise ModelError(f"{where}: no assigned users; check the experiment name and the observation window.")
    if CONTROL_ARM not in arms:
        raise ModelError(f"{where}: no arm is named '{CONTROL_ARM}' (arms: {', '.join(arms)}). The control arm must be named "
                         f"'{CONTROL_ARM}' in assignments; rename it there.")
    return arms


def check_outcome_arms(outcomes: pd.DataFrame, where: str) -> list[str]:
    """The arms of a one-row-per-user table, checked for a control arm."""
    _require_columns(outcomes, ["arm"], where, "Build it with workbench.tables.experiment_outcomes(ds, experiment).to_pandas().")
    if len(outcomes) == 0:
        raise ModelError(f"{where}: no assigned users; check the experiment name and the observation window.")
    return check_control(outcomes["arm"].astype(str).unique(), where)


def treatment_arm(outcomes: pd.DataFrame, arm: str | None, where: str) -> str:
    """The treatment arm's name (the one arm that is not control, unless ``arm`` names one)."""
    arms = check_outcome_arms(outcomes, where)
    others = [a for a in arms if a != CONTROL_ARM]
    if not others:
        raise ModelError(f"{where}: every user is in '{CONTROL_ARM}'; there is no treatment arm to compare with.")
    if arm is None:
        if len(others) > 1:
            raise ParameterError(f"{where}: the experiment has several treatment arms ({', '.join(others)}); "
                                 "choose one with treatment_arm=...")
        arm = others[0]
    elif arm not in others:
        raise ModelError(f"{where}: treatment arm {arm!r} missing (arms: {', '.join(arms)}).")
    return arm


def two_arm_frame(outcomes, arm, where, columns, observed_only=True):
    """Rows of control and the treatment arm (observed for the whole horizon
    when there is an ``observed`` column), the 0/1 treatment indicator, the
    arm's name and how many rows were left out as unobserved."""
    arm = treatment_arm(outcomes, arm, where)
    _require_columns(outcomes, columns, where)
    df = outcomes.loc[outcomes["arm"].astype(str).isin([CONTROL_ARM, arm])]
    excluded = 0
    if observed_only and "observed" in df.columns:
        obs = _numeric(df, "observed", where) > 0
        excluded = int((~obs).sum())
        df = df.loc[obs]
    z = (df["arm"].astype(str) == arm).to_numpy().astype(float)
    for level, name in ((1.0, arm), (0.0, CONTROL_ARM)):
        if (z == level).sum() < 2:
            raise ModelError(f"{where}: arm {name!r} has {(z == level).sum()} user(s) observed for the whole horizon; "
                             "an estimate needs more (a shorter horizon or a later observation end).")
    return df, z, arm, excluded


def metric_key(name) -> str:
    """A name (an arm, a metric, a segment level) as one part of a dotted metrics.json key."""
    key = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name)).strip("_")
    return key or "_"


def finite(value) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False

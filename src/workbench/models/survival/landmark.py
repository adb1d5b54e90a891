"""Landmark data: the users still at risk at each landmark day, with their
exposure frozen there (no immortal time)."""

from __future__ import annotations

import pandas as pd

from workbench.errors import ModelError, ParameterError
from workbench.models.inputs import as_number_list, require_columns
from workbench.models.survival.cox import EPISODE_COLUMNS


def landmark_data(episodes: pd.DataFrame, *, landmarks, exposure: str = "exposed") -> pd.DataFrame:
    """Users still at risk at each landmark day ``d`` (their follow-up runs past
    ``d``), with ``exposed`` = had their first exposure event at or before ``d``,
    ``dose`` at ``d`` (if the episodes carry it), ``duration`` = time from ``d``
    to churn or censoring, ``churned``, and the user's attributes. One row per
    (landmark, user). The exposure is frozen at the landmark, so later
    co-creation does not move a user between groups (no immortal time)."""
    where = "landmark_data"
    require_columns(episodes, ["user_id", "start", "stop", "churned", exposure], where)
    lms = sorted({float(d) for d in as_number_list(landmarks, "landmarks")})
    if not lms:
        raise ParameterError(f"{where}: give at least one landmark day, e.g. landmarks=[30, 60].")
    if min(lms) < 0:
        raise ParameterError(f"{where}: landmark days must be >= 0, got {lms}.")
    g = episodes.groupby("user_id", sort=False)
    users = g.agg(end=("stop", "max"), churned=("churned", "max"))
    attrs = [c for c in episodes.columns if c not in EPISODE_COLUMNS and c != exposure]
    if attrs:
        users = users.join(g[attrs].first())
    out = []
    for d in lms:
        alive = users.index[users["end"].to_numpy() > d]
        if len(alive) == 0:
            continue
        # the episode holding day d: start <= d < stop
        at = episodes.loc[(episodes["start"] <= d) & (episodes["stop"] > d), ["user_id", exposure] + (["dose"] if "dose" in episodes.columns else [])]
        at = at.drop_duplicates("user_id").set_index("user_id")
        u = users.loc[alive]
        frame = pd.DataFrame({"user_id": u.index, "landmark": d})
        frame["exposed"] = at[exposure].reindex(u.index).fillna(0).astype(int).to_numpy()
        if "dose" in at.columns:
            frame["dose"] = at["dose"].reindex(u.index).fillna(0).to_numpy()
        frame["duration"] = u["end"].to_numpy() - d
        frame["churned"] = u["churned"].to_numpy().astype(int)
        for c in attrs:
            frame[c] = u[c].to_numpy()
        out.append(frame)
    if not out:
        raise ModelError(f"{where}: no user is still at risk at any landmark {lms}; choose earlier landmark days.")
    return pd.concat(out, ignore_index=True)


__all__ = ["landmark_data"]

"""Per-cluster score sums in one engine pass: what a cluster-robust
(sandwich) variance needs from per-user rows when the model itself was fitted
on aggregated cells.

A model fitted on cells c (sums of per-user rows r) has a per-row score that
is linear in the row's outcome y_r and exposure e_r with coefficients fixed by
the cell: ``b_c y_r - a_c e_r - c_c`` (a Poisson rate model: ``b_c = g_c``,
``a_c = g_c rate_c``, e = exposure time, c = 0; a piecewise-exponential
hazard summed over a user's bins up to the last one: y = the event, e = the
time in the last bin, c = the sum over the earlier bins, a cumulative sum
per cell). Here a, b and c already carry the rows of the inverse information
for the coefficients of interest, so user u's influence on them is
``z_u = sum over u's rows of (b_c y_r - a_c e_r - c_c)`` and the
cluster-robust covariance is ``sum over users of z_u z_u^T`` (times a
small-sample factor). The engine joins the small table of cell coefficients to
the rows, sums per user and then over users, so no per-user row leaves it.
"""

from __future__ import annotations

import ibis
import pandas as pd

from workbench.errors import ParameterError
from workbench.tables.common import as_bigint, constant


def cluster_score_products(rows: ibis.Table, cells: pd.DataFrame, keys: list[str], *, outcome: str, exposure: str | None = None,
                           rate: str | None = None, cluster: str = "user_id",
                           table_fn: str = "cluster_score_products") -> ibis.Table:
    """One row: ``clusters``, ``rows`` and ``m_i_j`` (sum over clusters of
    z_i z_j, i <= j) for ``z_k = sum over the cluster's rows of
    b{k} * outcome - a{k} * exposure - c{k}`` (exposure 1 when None; c{k} 0
    when absent), with ``a0``, ``b0``, [``c0``], ``a1``, ... per cell in ``cells`` (one row per value of
    ``keys``; every cell of ``rows`` must be there). With ``rate`` (a column of
    ``cells``: fitted outcome per unit exposure) also ``pearson``: the sum over
    rows of (outcome - rate * exposure)^2 / (rate * exposure). When
    ``exposed`` is a key, ``users_exposed`` / ``users_unexposed``: clusters
    with any row in each state."""
    if not isinstance(cells, pd.DataFrame):
        raise ParameterError(f"{table_fn}(): cells must be a pandas DataFrame (one row per cell), got {type(cells).__name__}")
    n = sum(1 for c in cells.columns if c.startswith("a") and c[1:].isdigit())
    coef = [f"{ab}{k}" for k in range(n) for ab in "ab"]
    consts = [f"c{k}" for k in range(n) if f"c{k}" in cells.columns]
    coef += consts
    missing = [c for c in [*keys, *coef] + ([rate] if rate else []) if c not in cells.columns]
    if missing or n == 0:
        raise ParameterError(f"{table_fn}(): cells need the keys {keys} and columns a0, b0, a1, b1, ...; missing {missing or ['a0', 'b0']}")
    w = cells[[*keys, *coef] + ([rate] if rate else [])].copy()
    schema = rows.schema()
    for k in keys:  # the in-memory table's key types must be the rows' types for the join
        w[k] = w[k].astype(schema[k].to_pandas())
    w = ibis.memtable(w.rename(columns={c: f"wb_{c}" for c in coef + ([rate] if rate else [])}))
    j = rows.join(w, keys)
    y = j[outcome].cast("float64")
    e = j[exposure].cast("float64") if exposure else None
    per_row = {f"wb_z{k}": j[f"wb_b{k}"] * y - (j[f"wb_a{k}"] * e if e is not None else j[f"wb_a{k}"])
               - (j[f"wb_c{k}"] if f"c{k}" in consts else 0.0) for k in range(n)}
    per_row["wb_one"] = constant(1, "int64")
    if rate:
        fitted = j[f"wb_{rate}"] * (e if e is not None else 1.0)
        # rows fitted at rate 0 (a period without any referral, its base rate at minus infinity) add nothing
        per_row["wb_pearson"] = (fitted > 0).ifelse((y - fitted) * (y - fitted) / fitted, 0.0)
    state = "exposed" in keys
    if state:
        per_row["wb_exposed"] = j.exposed.cast("int64")
    j = j.select(cluster, **per_row)
    sums = {f"wb_z{k}": j[f"wb_z{k}"].sum() for k in range(n)}
    sums["wb_rows"] = as_bigint(j.wb_one.sum())
    if rate:
        sums["wb_pearson"] = j.wb_pearson.sum()
    if state:
        sums.update(wb_emax=j.wb_exposed.max(), wb_emin=j.wb_exposed.min())
    per = j.group_by(cluster).aggregate(**sums)
    out = {"clusters": per.count().cast("int64"), "rows": as_bigint(per.wb_rows.sum())}
    for a in range(n):
        for b in range(a, n):
            out[f"m_{a}_{b}"] = (per[f"wb_z{a}"] * per[f"wb_z{b}"]).sum()
    if rate:
        out["pearson"] = per.wb_pearson.sum()
    if state:
        out["users_exposed"] = per.count(where=per.wb_emax == 1).cast("int64")
        out["users_unexposed"] = per.count(where=per.wb_emin == 0).cast("int64")
    return per.aggregate(**out)


def meat_matrix(products: pd.Series, n: int):
    """The k x k matrix of ``m_i_j`` from the one-row result of :func:`cluster_score_products`."""
    import numpy as np

    m = np.zeros((n, n))
    for a in range(n):
        for b in range(a, n):
            m[a, b] = m[b, a] = float(products[f"m_{a}_{b}"])
    return m


__all__ = ["cluster_score_products", "meat_matrix"]

"""User attributes may not be named like the analysis tables' own columns
(contract.RESERVED_ATTRIBUTES): the list must be exactly the names the tables
put beside the attributes, and every other name must work in every table."""

from __future__ import annotations

import shutil

import ibis.expr.operations as ops
import pandas as pd
import pytest

from workbench import tables as wt
from workbench.data import load_dataset
from workbench.data.contract import RESERVED_ATTRIBUTES, RESERVED_INFIX, RESERVED_PREFIXES, reserved
from workbench.errors import DataError
from workbench.tables import experiments as xt
from workbench.tables.common import attribute_columns

PROBE = "zz_probe"


def calls(ds, strata=()):
    """Every analysis table, with the options that change which columns it
    builds; ``strata`` (attribute names) go wherever a table takes attributes
    as strata, covariates or a segment."""
    experiment = ds.assignments.experiment.execute().iloc[0]
    out = {}
    for name, fn in wt.TABLE_FUNCTIONS.items():
        out[name] = fn(ds, experiment) if name == "experiment_outcomes" else fn(ds)
    out["referrals by period"] = wt.referrals(ds, period_days=30)
    out["risk_sets by attribute"] = wt.risk_sets(ds, strata=("segment", *strata))
    out["dose_risk_sets by attribute"] = wt.dose_risk_sets(ds, strata=("segment", *strata))
    out["conversion_risk_sets by attribute"] = wt.conversion_risk_sets(ds, strata=strata)
    out["landmark_risk_sets by attribute"] = wt.landmark_risk_sets(ds, covariates=("segment", *strata))
    out["landmark_users by attribute"] = wt.landmark_users(ds, covariates=("segment", *strata))
    out["referral_counts by attribute"] = wt.referral_counts(ds, strata=("segment", *strata))
    out["repeat_summary by attribute"] = wt.repeat_summary(ds, covariates=("exposed", *strata))
    out["repeat_summary_compressed by attribute"] = wt.repeat_summary_compressed(ds, covariates=("exposed", *strata))
    out["repeat_tracking"] = wt.repeat_tracking(ds)
    out["subscription_survivors"] = wt.subscription_survivors(ds)
    for fn in (xt.experiment_users, xt.experiment_arms, xt.experiment_time_to_event):
        out[fn.__name__] = fn(ds, experiment)
    out["experiment_daily capped"] = xt.experiment_daily(ds, experiment, cap_percentile=99)
    segment = strata[0] if strata else "segment"
    out["experiment_arm_stats by segment"] = xt.experiment_arm_stats(ds, experiment, cap_percentile=99, segment_by=segment)
    return out


def with_attributes(src, dst, **columns):
    shutil.copytree(src, dst)
    users = pd.read_parquet(dst / "users.parquet")
    users = users.assign(**columns)
    users.to_parquet(dst / "users.parquet", index=False)
    return dst


def names_beside_attributes(expr) -> set[str]:
    """Column names of every relation in ``expr`` that carries the probe
    attribute, and of every table joined into one."""
    names = set()
    for rel in expr.op().find(ops.Relation):
        if PROBE in rel.schema.names:
            names |= set(rel.schema.names)
            if isinstance(rel, ops.JoinChain):
                for part in (rel.first, *(link.table for link in rel.rest)):
                    names |= set(part.schema.names)
    return names


def test_the_reserved_list_is_exactly_what_the_tables_put_beside_attributes(tiny_dataset, tmp_path):
    ds = load_dataset(with_attributes(tiny_dataset, tmp_path / "probe", **{PROBE: 1.0}))
    seen = set()
    for expr in calls(ds, strata=(PROBE,)).values():
        seen |= names_beside_attributes(expr)
    own = set(ds.users.columns)  # the users' contract columns and attributes
    by_pattern = {n for n in seen - own if n.startswith(RESERVED_PREFIXES) or RESERVED_INFIX in n}
    added = seen - own - by_pattern
    assert added - RESERVED_ATTRIBUTES == set(), "tables add columns beside the attributes that are not reserved"
    assert RESERVED_ATTRIBUTES - added == set(), "reserved names no table uses any more: drop them from the list"
    for prefix in RESERVED_PREFIXES:
        assert any(n.startswith(prefix) for n in by_pattern), f"no table uses the reserved prefix {prefix} any more"
    assert any(RESERVED_INFIX in n for n in by_pattern)


def test_attributes_named_like_any_table_column_are_refused_or_work(tiny_dataset, tmp_path):
    ds = load_dataset(tiny_dataset)
    outputs = set()
    for expr in calls(ds).values():
        outputs |= set(expr.columns)
    outputs -= set(ds.users.columns)  # the users columns themselves: contract columns and attributes
    refused = sorted(reserved(outputs))
    allowed = sorted(outputs - set(refused))
    assert len(refused) >= 20 and len(allowed) >= 20

    folder = with_attributes(tiny_dataset, tmp_path / "refused", **{n: 1.0 for n in refused})
    with pytest.raises(DataError) as info:
        load_dataset(folder)
    [v] = info.value.violations
    assert v.column == ", ".join(refused) and "used by the analysis tables" in v.rule

    folder = with_attributes(tiny_dataset, tmp_path / "allowed", **{n: 1.0 for n in allowed})
    base = {name: set(expr.columns) for name, expr in calls(ds).items()}
    attributes = set(attribute_columns(ds))
    for name, expr in calls(load_dataset(folder), strata=tuple(allowed[:2])).items():
        df = expr.to_pandas()  # every table builds
        carried = (set(df.columns) - base[name]) & set(allowed)
        if attributes <= base[name]:  # a table that carries the attributes
            assert carried == set(allowed), name
        assert all((df[a] == 1.0).all() for a in carried), f"{name}: an attribute lost its values"


@pytest.mark.parametrize("name", ["churned", "converted", "duration", "exposed", "arm", "retained", "period", "wb_anything"])
def test_ordinary_names_the_issue_found_are_refused_with_the_rename(tiny_dataset, tmp_path, name):
    with pytest.raises(DataError, match=f"rename it in users \\(e.g. {name} to user_{name}\\)"):
        load_dataset(with_attributes(tiny_dataset, tmp_path / name, **{name: 0}))


def test_a_dataset_loaded_without_rule_checks_is_refused_too(tiny_dataset, tmp_path):
    folder = with_attributes(tiny_dataset, tmp_path / "nocheck", churned=0)
    with pytest.raises(DataError, match="attribute name churned"):
        load_dataset(folder, validate=False)

"""The engine tables of the bounded paths, against the per-user tables they
aggregate (themselves checked by hand in test_tables.py): dose risk sets
against episodes, landmark risk sets and landmark users against
landmark_data, referral counts against referrals, naive risk sets against
ever-exposed users, and the one-pass cluster score sums against pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench import tables as wt
from workbench.data import load_dataset
from workbench.errors import ParameterError
from workbench.models import survival as sv
from workbench.tables.influence import cluster_score_products, meat_matrix

from test_tables import write_handmade, write_random


@pytest.fixture(scope="module")
def rnd(tmp_path_factory):
    return load_dataset(write_random(tmp_path_factory.mktemp("random"), n_users=300, seed=7))


@pytest.fixture(scope="module")
def hm(tmp_path_factory):
    return load_dataset(write_handmade(tmp_path_factory.mktemp("handmade")))


def spells_to_risk_sets(sp: pd.DataFrame, keys: list[str], bin_days: float) -> pd.DataFrame:
    """Risk sets by hand from spells (start, stop, event, keys...): every bin a
    spell touches, its time in it, its event in its last bin."""
    rows = []
    for r in sp.itertuples(index=False):
        first, last = int(np.floor(r.start / bin_days)), int(np.ceil(r.stop / bin_days) - 1)
        for b in range(first, last + 1):
            t = min(r.stop, (b + 1) * bin_days) - max(r.start, b * bin_days)
            rows.append((b, *[getattr(r, k) for k in keys], 1, int(r.event and b == last), t))
    cols = ["tenure_bin", *keys, "at_risk", "events", "exposure_days"]
    return pd.DataFrame(rows, columns=cols).groupby(["tenure_bin", *keys], dropna=False).sum().reset_index()


def assert_same_cells(got: pd.DataFrame, want: pd.DataFrame, keys: list[str]):
    m = got.merge(want, on=keys, how="outer", suffixes=("", "_want"), indicator=True)
    assert (m["_merge"] == "both").all(), m[m["_merge"] != "both"].head()
    assert (m["at_risk"] == m["at_risk_want"]).all() and (m["events"] == m["events_want"]).all()
    np.testing.assert_allclose(m["exposure_days"], m["exposure_days_want"], atol=1e-9)


@pytest.mark.parametrize("max_dose,churn,bin_days", [(3, "cancel_or_inactivity", 7), (1, "cancel", 3.5), (2, "inactivity", 30)])
def test_dose_risk_sets_are_the_episodes_split_by_capped_dose(rnd, max_dose, churn, bin_days):
    ep = wt.episodes(rnd, exposure="feedback", churn=churn, churn_after_days=12.5).to_pandas()
    ep["level"] = np.minimum(ep["dose"], max_dose)
    sp = ep.groupby(["user_id", "level"], as_index=False).agg(start=("start", "min"), stop=("stop", "max"), event=("churned", "max"),
                                                              segment=("segment", "first"))
    want = spells_to_risk_sets(sp.rename(columns={"level": "dose"}), ["dose", "segment"], bin_days)
    got = wt.dose_risk_sets(rnd, exposure="feedback", churn=churn, churn_after_days=12.5, max_dose=max_dose, bin_days=bin_days).to_pandas()
    assert list(got.columns) == ["tenure_bin", "dose", "segment", "at_risk", "events", "exposure_days"]
    assert got["dose"].max() == max_dose
    assert_same_cells(got, want, ["tenure_bin", "dose", "segment"])


def test_landmark_tables_are_landmark_data_aggregated(rnd):
    ep = wt.episodes(rnd, exposure="feedback").to_pandas()
    lm = sv.landmark_data(ep, landmarks=[10, 45.5])
    users = wt.landmark_users(rnd, landmarks=(10, 45.5), exposure="feedback", bin_days=7, covariates=("segment", "channel")).to_pandas()
    m = lm.merge(users, on=["user_id", "landmark"], how="outer", suffixes=("", "_t"), indicator=True)
    assert (m["_merge"] == "both").all() and len(m) > 100
    assert (m["exposed"] == m["exposed_t"]).all() and (m["churned"] == m["churned_t"]).all()
    assert (np.ceil(m["duration"] / 7) - 1 == m["tenure_bin"]).all()
    np.testing.assert_allclose(m["last_days"], m["duration"] - 7 * m["tenure_bin"], atol=1e-9)
    assert m["exposed"].sum() > 10
    rs = wt.landmark_risk_sets(rnd, landmarks=(10, 45.5), exposure="feedback", bin_days=7, covariates=("segment", "channel")).to_pandas()
    sp = lm.assign(start=0.0, stop=lm["duration"], event=lm["churned"])
    want = spells_to_risk_sets(sp, ["exposed", "landmark", "segment", "channel"], 7)
    assert_same_cells(rs, want, ["tenure_bin", "exposed", "landmark", "segment", "channel"])
    first = rs[rs.tenure_bin == 0].groupby("landmark")["at_risk"].sum()
    assert first.to_dict() == lm.groupby("landmark").size().to_dict()  # bin 0 counts everyone at risk at the landmark


def test_landmark_exactly_at_a_first_exposure_counts_as_exposed(hm):
    """A first exposure event at exactly the landmark counts (exposed at or before d), as in landmark_data."""
    ep = wt.episodes(hm, exposure="feedback", churn_after_days=20).to_pandas()
    d = float(ep.loc[(ep.exposed == 1) & (ep.start > 0), "start"].min())
    lm = sv.landmark_data(ep, landmarks=[d])
    users = wt.landmark_users(hm, landmarks=(d,), exposure="feedback", churn_after_days=20).to_pandas()
    m = lm.merge(users, on=["user_id", "landmark"], suffixes=("", "_t"))
    assert len(m) == len(lm) == len(users) and (m["exposed"] == m["exposed_t"]).all()
    assert m.loc[m.exposed == 1, "user_id"].isin(ep.loc[(ep.exposed == 1) & (ep.start == d), "user_id"]).any()


def test_naive_risk_sets_expose_ever_exposed_users_from_signup(rnd):
    ep = wt.episodes(rnd, exposure="feedback").to_pandas()
    users = sv.ever_exposed_table(ep)
    sp = users.assign(start=0.0, stop=users["duration"], event=users["churned"], exposed=users["ever_exposed"])
    want = spells_to_risk_sets(sp, ["exposed", "segment"], 7)
    got = wt.risk_sets(rnd, exposure="feedback", naive_ever=True).to_pandas()
    assert_same_cells(got, want, ["tenure_bin", "exposed", "segment"])
    normal = wt.risk_sets(rnd, exposure="feedback").to_pandas()
    assert normal["exposure_days"].sum() == pytest.approx(got["exposure_days"].sum())  # same time, other classification
    with pytest.raises(ParameterError, match="naive_ever must be True or False"):
        wt.risk_sets(rnd, naive_ever="yes")


@pytest.mark.parametrize("period_days", [None, 7])
def test_referral_counts_sum_the_per_user_rows(hm, rnd, period_days):
    for ds in (hm, rnd):
        rows = wt.referrals(ds, period_days=period_days).to_pandas()
        cells = wt.referral_counts(ds, period_days=period_days, strata=("segment",)).to_pandas()
        keys = (["period"] if period_days else []) + ["exposed", "segment"]
        want = rows.groupby(keys, dropna=False).agg(users=("user_id", "size"), exposure_days=("exposure_days", "sum"),
                                                    referrals=("referrals", "sum")).reset_index()
        assert list(cells.columns) == [*keys, "users", "exposure_days", "referrals"]
        m = cells.merge(want, on=keys, how="outer", suffixes=("", "_w"), indicator=True)
        assert (m["_merge"] == "both").all()
        assert (m["users"] == m["users_w"]).all() and (m["referrals"] == m["referrals_w"]).all()
        np.testing.assert_allclose(m["exposure_days"], m["exposure_days_w"], atol=1e-9)


def test_cluster_score_products_equal_pandas(rnd):
    """z_u = sum over u's rows of b y - a e - c, squared and summed over users,
    as the engine computes it, against the same sums in pandas."""
    rows = wt.referrals(rnd, period_days=7)
    df = rows.to_pandas()
    keys = ["period", "exposed"]
    cells = df[keys].drop_duplicates().reset_index(drop=True)
    rng = np.random.default_rng(1)
    for k in range(2):
        cells[f"a{k}"], cells[f"b{k}"], cells[f"c{k}"] = rng.normal(size=(3, len(cells)))
    cells["rate"] = rng.uniform(0.1, 1, len(cells))
    got = cluster_score_products(rows, cells, keys, outcome="referrals", exposure="exposure_days", rate="rate").to_pandas().iloc[0]
    j = df.merge(cells, on=keys)
    z = pd.DataFrame({k: j[f"b{k}"] * j["referrals"] - j[f"a{k}"] * j["exposure_days"] - j[f"c{k}"] for k in range(2)}).groupby(j["user_id"]).sum()
    np.testing.assert_allclose(meat_matrix(got, 2), z.T.to_numpy() @ z.to_numpy(), rtol=1e-10)
    fitted = j["rate"] * j["exposure_days"]
    assert got["pearson"] == pytest.approx((((j["referrals"] - fitted) ** 2) / fitted).sum(), rel=1e-10)
    assert (got["clusters"], got["rows"]) == (df["user_id"].nunique(), len(df))
    assert got["users_exposed"] == df.loc[df.exposed == 1, "user_id"].nunique()
    assert got["users_unexposed"] == df.loc[df.exposed == 0, "user_id"].nunique()
    with pytest.raises(ParameterError, match="missing"):
        cluster_score_products(rows, cells.drop(columns="b1"), keys, outcome="referrals")


def test_bad_arguments_of_the_new_tables(rnd):
    with pytest.raises(ParameterError, match="max_dose must be a positive whole number"):
        wt.dose_risk_sets(rnd, max_dose=0)
    with pytest.raises(ParameterError, match="landmark days >= 0"):
        wt.landmark_risk_sets(rnd, landmarks=(-1,))
    with pytest.raises(ParameterError, match="landmarks must be"):
        wt.landmark_users(rnd, landmarks="soon")
    with pytest.raises(ParameterError, match="not among the user attributes"):
        wt.landmark_risk_sets(rnd, covariates=("height",))
    with pytest.raises(ParameterError, match="not among the user attributes"):
        wt.referral_counts(rnd, strata=("height",))


def test_landmark_tables_coarsen_a_numeric_covariate_in_the_engine(rnd):
    kw = dict(landmarks=(10, 45.5), exposure="feedback", bin_days=7)
    raw = wt.landmark_users(rnd, covariates=("age_years",), **kw).to_pandas()
    users = wt.landmark_users(rnd, covariates=("age_years",), coarsen={"age_years": 10}, **kw).to_pandas()
    m = raw.merge(users, on=["user_id", "landmark"], suffixes=("", "_c"))
    assert len(m) == len(raw) == len(users)
    assert (m["age_years_c"] == np.floor(m["age_years"] / 10) * 10).all() and set(users["age_years"]) <= {10.0, 20.0, 30.0, 40.0, 50.0, 60.0}
    rs = wt.landmark_risk_sets(rnd, covariates=("age_years",), coarsen={"age_years": 10}, **kw).to_pandas()
    first = rs[rs.tenure_bin == 0].groupby(["landmark", "age_years", "exposed"])["at_risk"].sum()
    assert first.to_dict() == users.groupby(["landmark", "age_years", "exposed"]).size().to_dict()
    with pytest.raises(ParameterError, match="coarsen names 'segment', which is not among the covariates"):
        wt.landmark_risk_sets(rnd, covariates=("age_years",), coarsen={"segment": 2}, **kw)
    with pytest.raises(ParameterError, match="must be a number > 0"):
        wt.landmark_users(rnd, covariates=("age_years",), coarsen={"age_years": 0}, **kw)
    with pytest.raises(ParameterError, match="coarsen needs a numeric covariate"):
        wt.landmark_users(rnd, covariates=("segment",), coarsen={"segment": 2}, **kw)

"""CDNOW converted into the dataset contract."""

from pathlib import Path

import pandas as pd

from workbench.data import load_dataset
from workbench.data.cdnow import convert_cdnow

RAW = Path(__file__).resolve().parents[1] / "data" / "raw" / "cdnow"


def test_master_file_converts_with_all_customers_and_purchases(tmp_path):
    ds = load_dataset(convert_cdnow(sample=False, out=tmp_path / "cdnow"))
    assert ds.row_counts() == {"users": 23570, "events": 69659}
    assert ds.event_counts() == {"purchase": 69659}
    # signup is the first purchase; first purchases all fall in 1997 Q1
    signups = ds.users.signup_at
    assert signups.min().execute() == pd.Timestamp("1997-01-01")
    assert signups.max().execute() < pd.Timestamp("1997-04-01")
    assert ds.observation_end == pd.Timestamp("1998-06-30")
    total = ds.events.amount.sum().execute()
    raw = pd.read_csv(RAW / "CDNOW_master.txt", sep=r"\s+")
    assert abs(total - raw["dollar_value"].sum()) < 1e-6


def test_sample_keeps_same_day_purchases_as_separate_events(tmp_path):
    ds = load_dataset(convert_cdnow(sample=True, out=tmp_path / "cdnow-sample"))
    assert ds.row_counts() == {"users": 2357, "events": 6919}
    e = ds.events
    per_day = e.group_by(["user_id", e.event_at.date().name("day")]).aggregate(n=e.count())
    assert int(per_day.filter(per_day.n > 1).count().execute()) > 0  # same-day rows kept
    assert ds.name == "cdnow-sample" and ds.meta["currency"] == "USD"


def test_builtin_name_builds_on_first_use(tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "proj"
    (root / "data" / "raw").mkdir(parents=True)
    shutil.copytree(RAW, root / "data" / "raw" / "cdnow")
    monkeypatch.setenv("WORKBENCH_ROOT", str(root))
    ds = load_dataset("cdnow-sample")
    assert ds.path == root / "data" / "processed" / "cdnow-sample"
    assert ds.row_counts()["users"] == 2357

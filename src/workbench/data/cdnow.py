"""CDNOW purchase records converted into the dataset contract.

``users``: one row per customer, ``signup_at`` = first purchase day.
``events``: one ``purchase`` row per raw record (same-day records stay
separate; the analysis tables decide how to count them), ``amount`` = the
dollar value. The number of CDs is kept as a user-level total attribute.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from workbench.errors import DataError, Violation

OBSERVATION_END = "1998-06-30"


def raw_folder() -> Path:
    from workbench.data.paths import project_root

    return project_root() / "data" / "raw" / "cdnow"


def read_cdnow(path, *, sample: bool) -> pd.DataFrame:
    """Raw CDNOW file as columns user_id, date, cds, amount."""
    path = Path(path)
    if not path.exists():
        raise DataError([Violation("cdnow", None, f"raw file {path} not found: the repository ships it under data/raw/cdnow/", 0)])
    names = ["user_id", "sample_id", "date", "cds", "amount"] if sample else ["user_id", "date", "cds", "amount"]
    df = pd.read_csv(path, sep=r"\s+", header=None if sample else 0, names=names, dtype={"user_id": str, "date": str})
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    return df[["user_id", "date", "cds", "amount"]]


def cdnow_tables(raw: pd.DataFrame) -> dict[str, pd.DataFrame]:
    users = (
        raw.groupby("user_id", sort=True)
        .agg(signup_at=("date", "min"), total_cds=("cds", "sum"))
        .reset_index()
    )
    users["signup_at"] = users["signup_at"].astype("datetime64[us]")
    events = pd.DataFrame(
        {
            "user_id": raw["user_id"].to_numpy(),
            "event_at": raw["date"].astype("datetime64[us]").to_numpy(),
            "event_type": "purchase",
            "amount": raw["amount"].astype(float).to_numpy(),
        }
    )
    return {"users": users, "events": events}


def convert_cdnow(*, sample: bool, out, source=None) -> Path:
    """Write the CDNOW master (or 1/10 sample) file as a contract dataset folder."""
    out = Path(out)
    source = Path(source) if source else raw_folder() / ("CDNOW_sample.txt" if sample else "CDNOW_master.txt")
    tables = cdnow_tables(read_cdnow(source, sample=sample))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for name, df in tables.items():
            df.to_parquet(tmp / f"{name}.parquet", index=False)
        meta = {
            "name": "cdnow-sample" if sample else "cdnow",
            "description": ("1/10 sample (2,357 customers) of " if sample else "")
            + "CDNOW purchase records: customers who first bought in 1997 Q1, purchases to 1998-06-30.",
            "source": "Bruce Hardie's CDNOW data, as shipped in the lifetimes 0.11.3 package",
            "citation": "Fader, Hardie and Lee (2005), Counting your customers the easy way, Marketing Science 24(2), 275-284.",
            "currency": "USD",
            "observation_end": OBSERVATION_END,
            "notes": "Signup is the first purchase. No usage, co-creation or experiment data.",
        }
        (tmp / "dataset.yml").write_text(yaml.safe_dump(meta, sort_keys=False))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out

"""A realistic export in a foreign shape, generated deterministically.

A product's event export as analysts receive it: columns ``customer, ts,
type, revenue``; event types ``login, order, idea_submitted, idea_shipped,
unsubscribe`` plus two the workbench has no use for (``email_sent``,
``newsletter_open``); US-format local times in New York (``03/10/2024 14:05``,
including times in the hours daylight saving skips and repeats); refunds as
negative revenue on ``order`` rows; an empty revenue on most non-orders and a
``0.00`` on some; no users table. Built from the simulator (same seed, same
bytes), so the mapped dataset has known structure.

    python tests/export_fixture.py export.csv [--users 250] [--seed 7]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

TYPES = {"active": "login", "purchase": "order", "feedback": "idea_submitted", "adopted": "idea_shipped", "cancel": "unsubscribe"}
TIMEZONE = "America/New_York"
FORMAT = "%m/%d/%Y %H:%M"


def export_frame(users: int = 250, seed: int = 7) -> pd.DataFrame:
    """The export as a DataFrame of text columns, in file order."""
    from workbench.data.simulate import simulate

    ds = simulate(users=users, seed=seed, progress=False)
    rng = np.random.default_rng(seed)
    e = ds.events.copy()
    e["event_at"] = e["event_at"].dt.floor("min")
    # refunds: a tenth of the orders, a full or partial refund a day or two later
    orders = e[e.event_type == "purchase"]
    picked = orders.sample(frac=0.1, random_state=seed)
    refunds = picked.assign(
        event_at=picked.event_at + pd.to_timedelta(rng.integers(60, 3 * 1440, len(picked)), unit="min"),
        amount=-(picked.amount * rng.choice([1.0, 0.5], len(picked))).round(2),
    )
    # mail the company sent: not user activity, dropped by the mapping
    mails = e[e.event_type == "active"].sample(frac=0.05, random_state=seed + 1)
    mails = mails.assign(event_type=rng.choice(["email_sent", "newsletter_open"], len(mails)), amount=np.nan)
    out = pd.concat([e, refunds, mails], ignore_index=True)
    local = out["event_at"].dt.tz_localize("UTC").dt.tz_convert(TIMEZONE).dt.tz_localize(None)
    # a few clock times in the hour daylight saving skips (spring) and repeats (autumn)
    first = out.groupby("user_id").event_at.transform("min")
    edge = out.index[(out.event_type == "active") & (out.event_at > first)][:4]
    local.loc[edge] = pd.to_datetime(["2024-03-10 02:30", "2024-03-10 02:45", "2024-11-03 01:15", "2024-11-03 01:45"])
    revenue = out["amount"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    zero = (out.event_type == "active") & (rng.random(len(out)) < 0.2)
    revenue[zero] = "0.00"
    frame = pd.DataFrame({
        "customer": out["user_id"].str.replace("u", "cust-", regex=False),
        "ts": local.dt.strftime(FORMAT),
        "type": out["event_type"].map(lambda t: TYPES.get(t, t)),
        "revenue": revenue,
    })
    order = np.lexsort((frame["type"].to_numpy(), local.to_numpy(), frame["customer"].to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


#: the mapping of this export onto the contract (what `workbench import` proposes, with the time zone given)
MAPPING = {
    "events": {
        "file": "export.csv",
        "columns": {"user_id": "customer", "event_at": "ts", "event_type": "type", "amount": "revenue"},
        "event_types": {"active": ["login"], "purchase": ["order"], "feedback": ["idea_submitted"],
                        "adopted": ["idea_shipped"], "cancel": ["unsubscribe"]},
        "timestamps": {"format": FORMAT, "timezone": TIMEZONE},
        "refunds": "net",
    },
    "users": {"derive": "first_event"},
}


def write_mapped_export(folder, users: int = 250, seed: int = 7) -> Path:
    """A dataset folder holding the export and a dataset.yml that maps it."""
    import yaml

    folder = Path(folder)
    write_export(folder / "export.csv", users, seed)
    (folder / "dataset.yml").write_text(yaml.safe_dump({"name": "acme", "currency": "USD", "source": MAPPING}, sort_keys=False))
    return folder


def write_export(path, users: int = 250, seed: int = 7) -> Path:
    """Write the export CSV to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    export_frame(users, seed).to_csv(path, index=False)
    return path


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--users", type=int, default=250)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    print(write_export(a.out, a.users, a.seed))

"""The dataset in one row: what a reader needs to know first."""

from __future__ import annotations

import ibis

from workbench.tables.common import observation_end, observed_events, observed_users, require


def dataset_totals(ds) -> ibis.Table:
    """One row: ``users`` (signed up by the observation end), ``first_signup``,
    ``events``, ``customers`` (users with a purchase), ``purchases``,
    ``revenue`` (sum of purchase amounts, 0 without purchases),
    ``amount_mean``, ``amount_median`` and ``amount_p90`` (purchase amounts;
    null without purchases). Events after the observation end are ignored,
    as in every other table."""
    require(ds, "dataset_totals", "users", "events")
    end = observation_end(ds, "dataset_totals")
    u = observed_users(ds, end)
    e = observed_events(ds, end)
    is_purchase = e.event_type == "purchase"
    p = e.filter(is_purchase)
    users = u.aggregate(users=u.count().cast("int64"), first_signup=u.signup_at.min())
    events = e.aggregate(
        events=e.count().cast("int64"),
        purchases=e.count(where=is_purchase).cast("int64"),
        revenue=ibis.coalesce(e.amount.sum(where=is_purchase), 0.0).cast("float64"),
    )
    buyers = p.select("user_id").distinct()
    customers = buyers.aggregate(customers=buyers.count().cast("int64"))
    amounts = p.aggregate(
        amount_mean=p.amount.mean().cast("float64"),
        amount_median=p.amount.quantile(0.5).cast("float64"),
        amount_p90=p.amount.quantile(0.9).cast("float64"),
    )
    out = users.cross_join(events).cross_join(customers).cross_join(amounts)
    return out.select(
        "users", "first_signup", "events", "customers", "purchases", "revenue", "amount_mean", "amount_median", "amount_p90"
    )

"""Distributions the data overview draws: events per user and purchase
amounts on a log scale."""

from __future__ import annotations

import numbers

import ibis

from workbench.data.contract import EVENT_TYPES
from workbench.errors import ParameterError
from workbench.tables.common import check_choice, constant, observation_end, observed_events, require


def events_per_user(ds, *, event_type: str | None = None) -> ibis.Table:
    """One row per count ``n`` >= 1: ``n`` (events per user, of
    ``event_type`` or of any type) and ``users`` (users with exactly ``n``
    such events). Users without any have no row; events after the
    observation end are ignored."""
    if event_type is not None:
        check_choice("events_per_user", "event_type", event_type, EVENT_TYPES)
    require(ds, "events_per_user", "events")
    e = observed_events(ds, observation_end(ds, "events_per_user"))
    if event_type is not None:
        e = e.filter(e.event_type == event_type)
    per_user = e.group_by("user_id").aggregate(n=e.count().cast("int64"))
    out = per_user.group_by("n").aggregate(users=per_user.count().cast("int64"))
    return out.order_by("n")


def purchase_amounts(ds, *, bins_per_decade: int = 8) -> ibis.Table:
    """Purchases with a positive amount in equal bins of log10(amount):
    ``bin`` (floor(``bins_per_decade`` x log10(amount))), ``low`` and
    ``high`` (the bin's amounts, 10^(bin / k) to 10^((bin + 1) / k)) and
    ``purchases``. Only bins with purchases have rows; purchases after the
    observation end are ignored."""
    k = bins_per_decade
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ParameterError(f"purchase_amounts(): bins_per_decade must be a whole number >= 1, got {k!r}")
    require(ds, "purchase_amounts", "events")
    e = observed_events(ds, observation_end(ds, "purchase_amounts"))
    p = e.filter((e.event_type == "purchase") & (e.amount > 0))
    p = p.mutate(bin=(p.amount.log10() * int(k)).floor().cast("int64"))
    out = p.group_by("bin").aggregate(purchases=p.count().cast("int64"))
    out = out.mutate(
        low=constant(10.0, "float64").pow(out.bin.cast("float64") / int(k)),
        high=constant(10.0, "float64").pow((out.bin + 1).cast("float64") / int(k)),
    )
    return out.select("bin", "low", "high", "purchases").order_by("bin")

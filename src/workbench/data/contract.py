"""The dataset contract as data: tables, columns, types and rules.

See docs/dataset-contract.md for the prose version. ``validate`` in
:mod:`workbench.data.dataset` checks every rule listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENT_TYPES = ("active", "purchase", "feedback", "adopted", "cancel")
CONTROL_ARM = "control"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # "string", "timestamp", "float", "date"
    required: bool = True
    not_null: bool = False
    minimum: float | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


USERS = TableSpec(
    "users",
    (
        Column("user_id", "string", not_null=True),
        Column("signup_at", "timestamp", not_null=True),
        Column("channel", "string", required=False),
        Column("segment", "string", required=False),
        Column("referred_by", "string", required=False),
    ),
)
EVENTS = TableSpec(
    "events",
    (
        Column("user_id", "string", not_null=True),
        Column("event_at", "timestamp", not_null=True),
        Column("event_type", "string", not_null=True),
        Column("amount", "float", required=False, minimum=0.0),
    ),
)
ASSIGNMENTS = TableSpec(
    "assignments",
    (
        Column("user_id", "string", not_null=True),
        Column("experiment", "string", not_null=True),
        Column("arm", "string", not_null=True),
        Column("assigned_at", "timestamp", not_null=True),
    ),
)
KPIS = TableSpec(
    "kpis",
    (
        Column("period", "date", not_null=True),
        Column("unit", "string", required=False),
        Column("users", "float", not_null=True, minimum=0.0),
        Column("new_users", "float", required=False, minimum=0.0),
        Column("customers", "float", required=False, minimum=0.0),
        Column("revenue", "float", required=False, minimum=0.0),
    ),
)

TABLES: dict[str, TableSpec] = {t.name: t for t in (USERS, EVENTS, ASSIGNMENTS, KPIS)}

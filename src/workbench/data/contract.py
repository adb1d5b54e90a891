"""The dataset contract as data: tables, columns, types and rules, the
files a dataset folder holds, and the column names user attributes may not use.

See docs/dataset-contract.md for the prose version. :mod:`workbench.data.checks`
checks every rule listed here.
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

# ------------------------------------------------------------------ files
#: a table is <name>.parquet or <name>.csv (exactly one of the two)
FORMATS = ("parquet", "csv")
META_FILE = "dataset.yml"
#: files a dataset folder may hold beside its tables without a notice (the
#: simulator's planted truth, source notes); hidden files (.name) are skipped too
COMPANION_FILES = ("truth.json", "README.md", "SOURCE.md")

# ------------------------------------------------------------------ attributes
#: Names the analysis tables (workbench.tables) give to columns that sit next
#: to the user attributes, or join them: an attribute of the same name would
#: clash ("Duplicate column name") or be silently shadowed. Validation refuses
#: users columns with these names, starting with one of RESERVED_PREFIXES or
#: holding RESERVED_INFIX (the experiment tables' <metric>__<sum> columns), and
#: the tables check strata and covariates against the same rule (reserved()).
#: tests/test_reserved_names.py fails when a table adds a column not covered.
RESERVED_ATTRIBUTES = frozenset(
    """
    T T_d _events active_days adopted adopted_s arm asg_s assigned_at at_risk
    cancel_at churn_cause churn_days churn_event churned cocreated_before_conversion
    converted customer_at_assignment day days_to_convert dose dur_s duration end_at
    event events exp_s exposed exposure_days feedback feedback_s first_adopted_at
    first_day first_exp_at first_feedback_at first_purchase_at first_purchase_s
    first_spend fol_s followup_days frequency frequency_holdout frequency_holdout_sq_sum
    frequency_holdout_sum idea_days idea_event idea_s is_last known_retained_s known_s
    landmark last_at last_day last_days level metric monetary_holdout monetary_value
    duration_holdout n n_days next_s obs_s observed observed_days period pre_active
    pre_active_days pre_adopted pre_feedback pre_purchases pre_revenue pre_activity
    purchase_days purchase_event purchase_s purchases recency recency_d referrals
    retained retained_observed revenue signup_s spend_cal start start_s stop stop_s
    t_s tenure_bin took_part user_id_right users
    """.split()
)
#: the tables' internal prefix (every table may use it for working columns)
RESERVED_PREFIX = "wb_"
#: prefixes of whole families of table columns: wb_ (working columns), w_ and
#: p_ (an experiment's window and pre-window counts), cap_ (caps), sum_ (sums)
RESERVED_PREFIXES = (RESERVED_PREFIX, "w_", "p_", "cap_", "sum_")
RESERVED_INFIX = "__"


def reserved(names) -> list[str]:
    """The names among ``names`` that a user attribute may not have."""
    return [n for n in names if n in RESERVED_ATTRIBUTES or n.startswith(RESERVED_PREFIXES) or RESERVED_INFIX in n]

"""``workbench import``: propose a dataset.yml for an export or a warehouse table.

:func:`propose_mapping` looks at a CSV/Parquet export (or a table on a
backend) and proposes the ``source`` mapping onto the contract: which
columns hold the user, the time, the event type and the amount (by their
names and types), which of the export's event types mean ``active``,
``purchase``, ``feedback``, ``adopted`` and ``cancel`` (the others are
dropped and counted), the timestamp format (the first common format that
parses a sample of every distinct value), and how to treat refunds.
:func:`import_dataset` writes the dataset folder -- the export copied in and
a commented dataset.yml -- only after the dataset validates; otherwise it
writes nothing and says why.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import yaml

from workbench.data import parsing
from workbench.data.backends import BackendSpec, connect, read_file, read_table, refuse_credentials
from workbench.data.contract import EVENT_TYPES
from workbench.data.credentials import redact
from workbench.errors import DataError, Violation

#: column names that usually hold each contract column (compared without case, spaces, - or _)
COLUMN_NAMES = {
    "user_id": ("userid", "user", "customerid", "customer", "custid", "clientid", "client", "accountid", "account",
                "memberid", "member", "visitorid", "personid", "uid", "buyerid", "id"),
    "event_at": ("eventat", "timestamp", "ts", "eventtime", "time", "datetime", "occurredat", "createdat", "eventdate",
                 "date", "at", "when"),
    "event_type": ("eventtype", "type", "event", "action", "kind", "eventname", "activity", "name"),
    "amount": ("amount", "revenue", "value", "price", "total", "ordervalue", "sales", "spend", "gmv", "netrevenue"),
}
USER_NAMES = {
    "user_id": COLUMN_NAMES["user_id"],
    "signup_at": ("signupat", "signup", "signupdate", "signedupat", "registeredat", "registrationdate", "createdat",
                  "joinedat", "joined", "firstseen", "created"),
}
#: words in an export's event type that suggest a contract type; checked in this order
TYPE_WORDS = (
    ("cancel", ("cancel", "unsubscrib", "churn", "closeaccount", "deleteaccount", "terminat", "deactivat")),
    ("adopted", ("shipped", "adopted", "accepted", "implemented", "released", "merged")),
    ("purchase", ("order", "purchase", "buy", "bought", "payment", "paid", "transaction", "checkout", "sale", "invoice")),
    ("feedback", ("idea", "feedback", "suggest", "submit", "review", "comment", "bug", "complain", "feature")),
    ("active", ("login", "logon", "signin", "session", "visit", "view", "open", "active", "click", "launch", "use")),
)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def contract_type(value: str) -> str | None:
    """The contract event type an export's event type most likely means, or None."""
    if value in EVENT_TYPES:
        return value
    k = _key(value)
    if k.startswith(("email", "mail", "newsletter", "push", "sms", "notification")):
        return None  # things the company sent, not things the user did
    for contract, words in TYPE_WORDS:
        if any(w in k for w in words):
            return contract
    return None


@dataclass
class Proposal:
    """A proposed dataset.yml for one export, with what was guessed and why."""

    source: dict
    name: str
    currency: str | None = None
    backend: dict | None = None
    comments: dict = field(default_factory=dict)  # key path -> a note for the reader
    dropped_types: dict = field(default_factory=dict)

    def to_yaml(self) -> str:
        """The dataset.yml text, with comments on what to check."""
        head = [f"# Proposed by `workbench import` on {_dt.date.today():%Y-%m-%d}. Review every line, then run",
                "#   workbench validate <this folder>",
                "# The mapping is documented in docs/dataset-contract.md (Mapping an export) and docs/backends.md."]
        body = {"name": self.name}
        if self.currency:
            body["currency"] = self.currency
        if self.backend:
            body["backend"] = self.backend
        body["source"] = self.source
        text = yaml.safe_dump(body, sort_keys=False, default_flow_style=None, allow_unicode=True, width=120)
        out, pending = [], dict(self.comments)
        for line in text.splitlines():
            key = line.strip().split(":")[0]
            if key in pending:  # the note goes just above the line it is about
                indent = " " * (len(line) - len(line.lstrip()))
                out.extend(f"{indent}# {c}" for c in pending.pop(key))
            out.append(line)
        return "\n".join(head + out) + "\n"


def _find(columns: list[str], names: tuple, taken: set) -> str | None:
    keyed = {_key(c): c for c in columns if c not in taken}
    for n in names:
        if n in keyed:
            return keyed[n]
    return None


def _pick_columns(t, names: dict, overrides: dict, what: str) -> dict:
    columns = list(t.columns)
    chosen, taken, missing = {}, set(), []
    for target, col in overrides.items():
        if col not in columns:
            raise DataError([Violation("import", f"--column {target}={col}", f"{what} has no column {col!r} (its columns: {', '.join(columns)})", 0)])
        chosen[target] = col
        taken.add(col)
    for target, candidates in names.items():
        if target in chosen:
            continue
        col = _find(columns, candidates, taken)
        if col is None:
            if target != "amount":
                missing.append(target)
            continue
        chosen[target] = col
        taken.add(col)
    if missing:
        raise DataError([Violation("import", m, f"no column of {what} looks like the contract's {m} (columns: {', '.join(columns)}); "
                                   f"name it with --column {m}=COLUMN", 0) for m in missing])
    return chosen


def _timestamp_rule(t, column: str, given_format: str | None, timezone: str | None, comments: list) -> dict:
    c = t[column]
    rule: dict = {}
    if c.type().is_string():
        values = t.filter(c.notnull() & (c.strip() != "")).select(v=c.strip()).distinct().limit(2000).to_pandas()["v"].tolist()
        if given_format:
            if (why := parsing.check_format(given_format)) is not None:
                raise DataError([Violation("import", "--format", f"{given_format!r} {why}", 0)])
            if not parsing.parses_all(given_format, values):
                bad = [v for v in values if not parsing.parses_all(given_format, [v])][:3]
                raise DataError([Violation("import", "--format", f"{given_format!r} does not parse {column!r} (e.g. {', '.join(bad)}); "
                                           + parsing.format_hint(values, tried=given_format), 0)])
            rule["format"] = given_format
        else:
            found = parsing.guess_formats(values)
            if not found:
                raise DataError([Violation("import", column, f"no common timestamp format parses every value of {column!r} "
                                           f"(e.g. {', '.join(values[:3])}); give the pattern with --format (strftime, e.g. '%d/%m/%Y %H:%M')", 0)])
            if found[0] is not None:
                rule["format"] = found[0]
                hint = parsing.format_hint(values)
                if "check whether" in hint:
                    comments.append(f"month-first and day-first both parse every value; {found[0]} was chosen: check the export")
    elif not (c.type().is_timestamp() or c.type().is_date()):
        raise DataError([Violation("import", column, f"column {column!r} has type {c.type()}, which cannot hold a timestamp; name another with --column", 0)])
    if timezone:
        if (why := parsing.check_timezone(timezone)) is not None:
            raise DataError([Violation("import", "--timezone", why, 0)])
        rule["timezone"] = timezone
    elif not (c.type().is_timestamp() and c.type().timezone):
        comments.append("clock times without a UTC offset are read as UTC; if the export writes local time, "
                        "add timezone: (e.g. America/New_York), or re-run with --timezone")
    return rule


def propose_mapping(t, *, what: str, where: dict, name: str, currency: str | None = None, timezone: str | None = None,
                    format: str | None = None, refunds: str | None = None, columns: dict | None = None,
                    users=None, users_where: dict | None = None) -> Proposal:
    """A :class:`Proposal` for the export table ``t`` (an Ibis table; ``what``
    names it in messages, ``where`` is its ``file:``/``table:`` entry)."""
    comments: dict[str, list[str]] = {}
    chosen = _pick_columns(t, COLUMN_NAMES, columns or {}, what)
    events: dict = dict(where)
    events["columns"] = {k: chosen[k] for k in ("user_id", "event_at", "event_type", "amount") if k in chosen}
    # event types: every distinct value, by count
    typ = t[chosen["event_type"]].cast("string")
    counts = t.group_by(v=typ).aggregate(n=t.count()).order_by([ibis.desc("n"), "v"]).limit(500).to_pandas()
    mapping: dict[str, list[str]] = {}
    dropped = {}
    for v, n in zip(counts["v"], counts["n"]):
        if v is None:
            continue
        ct = contract_type(v)
        if ct is None:
            dropped[v] = int(n)
        else:
            mapping.setdefault(ct, []).append(v)
    if not mapping:
        raise DataError([Violation("import", chosen["event_type"], f"none of the event types in {chosen['event_type']!r} "
                                   f"({', '.join(map(str, counts['v'][:8]))}) looks like a contract type ({', '.join(EVENT_TYPES)}); "
                                   "write event_types: in dataset.yml by hand (docs/dataset-contract.md)", 0)])
    events["event_types"] = {k: mapping[k] for k in EVENT_TYPES if k in mapping}
    notes = ["each contract type lists the export's types that mean it; types not listed are dropped and counted"]
    if dropped:
        notes.append("dropped: " + ", ".join(f"{v} ({n:,} rows)" for v, n in dropped.items()))
    comments["event_types"] = notes
    stamp_notes: list[str] = []
    rule = _timestamp_rule(t, chosen["event_at"], format, timezone, stamp_notes)
    if rule:
        events["timestamps"] = rule
    if stamp_notes:
        comments["timestamps" if rule else "columns"] = stamp_notes
    if "amount" in chosen:
        amount = parsing.to_number(t[chosen["amount"]])
        purchase_values = mapping.get("purchase", [])
        negative = 0
        if amount is not None and purchase_values:
            negative = int(t.filter(typ.isin(purchase_values) & (amount < 0)).count().execute())
        if negative:
            events["refunds"] = refunds or "net"
            comments["refunds"] = [f"{negative:,} purchase rows have a negative amount (refunds): net subtracts each from the "
                                   "user's latest earlier purchase, drop removes them"]
        elif refunds:
            events["refunds"] = refunds
    source = {"events": events}
    if users is None:
        source["users"] = {"derive": "first_event"}
        comments["users"] = ["no users table: each user's signup is their first event, and there are no user attributes"]
    else:
        picked = _pick_columns(users, USER_NAMES, {}, "the users table")
        entry = dict(users_where or {})
        entry["columns"] = picked
        rule = _timestamp_rule(users, picked["signup_at"], None, timezone, [])
        if rule:
            entry["timestamps"] = rule
        source["users"] = entry
    return Proposal(source=source, name=name, currency=currency, comments=comments, dropped_types=dropped)


def import_dataset(source, out, *, backend_url: str | None = None, password_env: str | None = None, name: str | None = None,
                   currency: str | None = None, timezone: str | None = None, format: str | None = None,
                   refunds: str | None = None, columns: dict | None = None, users=None, force: bool = False):
    """Propose a mapping for ``source`` (a CSV/Parquet file, or with
    ``backend_url`` a table name on that backend), write ``out`` (the file
    copied in, and dataset.yml) if the result validates, and return
    ``(proposal, validation report)``. Writes nothing on any error."""
    from workbench.data.dataset import validate_dataset

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise DataError([Violation("import", "--out", f"{out} already holds files; choose a new folder or pass --force to replace it", 0)])
    if refunds is not None and refunds not in ("net", "drop"):
        raise DataError([Violation("import", "--refunds", f"must be net or drop, got {refunds!r}", 0)])
    users_path = Path(users) if users is not None else None
    if backend_url is None:
        src = Path(source)
        if not src.is_file() or src.suffix not in (".csv", ".parquet"):
            raise DataError([Violation("import", "SOURCE", f"{src} is not a .csv or .parquet file (for a warehouse table give --backend URL)", 0)])
        if users_path is not None and (not users_path.is_file() or users_path.suffix not in (".csv", ".parquet")):
            raise DataError([Violation("import", "--users", f"{users_path} is not a .csv or .parquet file", 0)])
        con = connect()
        table = read_file(con, src)
        where, what = {"file": src.name}, src.name
        backend = None
        users_t = read_file(con, users_path) if users_path is not None else None
        users_where = {"file": users_path.name} if users_path is not None else None
    else:
        refuse_credentials(backend_url, "--backend")
        spec = BackendSpec(url=backend_url, password_env=password_env)
        con = spec.connect()
        try:
            table = read_table(con, str(source))
        except Exception as exc:
            raise DataError([Violation("import", "SOURCE", f"table {source} cannot be read on {redact(backend_url)}: "
                                       f"{redact(str(exc).strip().splitlines()[0] if str(exc).strip() else exc)}", 0)]) from None
        where, what = {"table": str(source)}, f"table {source}"
        backend = {"url": backend_url, **({"password_env": password_env} if password_env else {})}
        users_t = read_table(con, str(users)) if users is not None else None
        users_where = {"table": str(users)} if users is not None else None
    proposal = propose_mapping(table, what=what, where=where, name=name or out.name, currency=currency, timezone=timezone,
                               format=format, refunds=refunds, columns=columns, users=users_t, users_where=users_where)
    proposal.backend = backend
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    work.chmod(0o777 & ~umask)
    try:
        if backend_url is None:
            shutil.copy2(source, work / Path(source).name)
            if users_path is not None:
                shutil.copy2(users_path, work / users_path.name)
        (work / "dataset.yml").write_text(proposal.to_yaml())
        try:
            report = validate_dataset(work)
        except DataError as exc:
            err = DataError(exc.violations, f"the proposed mapping of {what}")
            err.proposal = proposal.to_yaml()
            raise err from None
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        work.rename(out)
        report = dataclasses.replace(report, path=out)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return proposal, report


__all__ = ["Proposal", "contract_type", "import_dataset", "propose_mapping"]

"""The ``workbench`` command: a thin front over the package.

Each subcommand is a ``_cmd_<name>(args)`` function registered in
:func:`build_parser`; the work itself lives in the layers. Errors the
workbench raises on purpose are printed as one clear message; a contract
violation exits with status 2, any other workbench error with status 1.
The report commands (run, batch, index, compare) exit 1 when a run or a job
failed, 2 when they refused their input or could not write their files
(nothing is run, nothing half-written), and 130 when interrupted.
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
import warnings

from workbench.errors import DataError, WorkbenchError, WorkbenchWarning


def _refusals_exit_2(cmd):
    """A report command: a workbench error or an OS error (a full disk, a
    folder given for a file) is one line on stderr and exit status 2."""

    @functools.wraps(cmd)
    def wrapped(args) -> int:
        try:
            return cmd(args)
        except WorkbenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            print(f"error: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
            return 2

    return wrapped


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


# --------------------------------------------------------------------- data
def _cmd_validate(args) -> int:
    from workbench.data import validate_dataset

    report = validate_dataset(args.path)
    print(report.describe())
    return 0


def _add_validate(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="check a dataset folder against the contract",
        description="Check a dataset folder (or its dataset.yml, or a built-in name: sample, cdnow, cdnow-sample) "
        "against the dataset contract, on the backend its dataset.yml names, after applying its source mapping. "
        "Prints every violation at once and exits 2 if any; otherwise prints what the dataset holds, what the "
        "mapping dropped or derived, which analyses it supports, and notes on what is valid but left out or not "
        "read (rows after observation_end, files the contract does not name).",
    )
    p.add_argument("path", help="dataset folder or dataset.yml, or a built-in dataset name")
    p.set_defaults(func=_cmd_validate)


def _cmd_import(args) -> int:
    from workbench.data.importer import import_dataset

    columns = {}
    for item in args.column or []:
        target, sep, col = item.partition("=")
        if not sep or not target or not col:
            print(f"error: --column takes CONTRACT=COLUMN (e.g. user_id=customer), got {item!r}", file=sys.stderr)
            return 2
        columns[target.strip()] = col.strip()
    try:
        proposal, report = import_dataset(
            args.source, args.out, backend_url=args.backend, password_env=args.password_env, name=args.name,
            currency=args.currency, timezone=args.timezone, format=args.format, refunds=args.refunds,
            columns=columns, users=args.users, force=args.force)
    except DataError as exc:
        if getattr(exc, "proposal", None):
            print(f"the proposed dataset.yml (not written):\n\n{exc.proposal}", file=sys.stderr)
        raise
    print(proposal.to_yaml())
    print(report.describe())
    print(f"wrote {args.out}/dataset.yml: review it (every guess is commented), then `workbench validate {args.out}`")
    return 0


def _add_import(sub) -> None:
    p = sub.add_parser(
        "import",
        help="propose a dataset.yml for an export (CSV/Parquet) or a warehouse table, and validate it",
        description="Inspect an export -- a CSV or Parquet file, or with --backend a table on a database -- and propose "
        "how it maps onto the dataset contract: the columns holding the user, time, event type and amount (by name and "
        "type), which event types mean active, purchase, feedback, adopted and cancel (others are dropped and counted), "
        "the timestamp format (a common format that parses every value), refunds (negative amounts) and, without a users "
        "table, users derived from their first events. The dataset folder (the export copied in and a commented "
        "dataset.yml) is written only if it validates; otherwise nothing is written and every problem is listed. "
        "See docs/dataset-contract.md (Mapping an export) and docs/backends.md.",
    )
    p.add_argument("source", metavar="SOURCE", help="export.csv / export.parquet, or with --backend a table name (schema.table)")
    p.add_argument("--out", required=True, metavar="FOLDER", help="the dataset folder to write (must be new or empty)")
    p.add_argument("--name", help="the dataset's name (default: the folder's name)")
    p.add_argument("--currency", help="currency of the amounts, e.g. USD")
    p.add_argument("--timezone", metavar="TZ", help="time zone of clock times without a UTC offset, e.g. America/New_York (default UTC)")
    p.add_argument("--format", metavar="STRFTIME", help="timestamp format, e.g. '%%m/%%d/%%Y %%H:%%M' (default: guessed from the values)")
    p.add_argument("--refunds", choices=["net", "drop"], help="negative purchase amounts: net against the latest earlier purchase (default) or drop")
    p.add_argument("--column", action="append", metavar="CONTRACT=COLUMN", help="name a column the guess misses, e.g. --column user_id=client_ref (repeatable)")
    p.add_argument("--users", metavar="FILE_OR_TABLE", help="a users table (default: derive users from their first events)")
    p.add_argument("--backend", metavar="URL", help="a database URL without password (postgresql://analyst@host/db); SOURCE is then a table")
    p.add_argument("--password-env", metavar="NAME", help="environment variable holding the database password")
    p.add_argument("--force", action="store_true", help="replace --out if it already holds files")
    p.set_defaults(func=_cmd_import)


def _cmd_simulate(args) -> int:
    from workbench.data.simulate import parse_assignments, simulate

    overrides = parse_assignments(args.set)
    ds = simulate(users=args.users, seed=args.seed, out=args.out, force=args.force, progress=not args.quiet,
                  chunk_users=args.chunk_users, **overrides)  # fmt: skip
    print(ds.describe())
    print(f"wrote {args.out} (tables, dataset.yml, truth.json)")
    return 0


def _add_simulate(sub) -> None:
    from workbench.data.simulate import CHUNK_USERS

    p = sub.add_parser(
        "simulate",
        help="write a simulated dataset with planted truth",
        description="Simulate a product's user base (Bass signups, segments, attributes, activity, ideas, churn by "
        "cancel or silence, conversion, repeat purchases, referrals, a co-creation invitation, an onboarding "
        "experiment, an A/A test, a market KPI panel) and stream it to a dataset folder, a chunk of users at a "
        "time, with truth.json holding every planted value. Same seed, same files. See docs/simulator.md.",
    )
    p.add_argument("--users", type=int, default=20_000, help="number of users (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="dataset folder to write (must be new or empty)")
    p.add_argument("--force", action="store_true", help="replace --out if it already holds files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--chunk-users",
        type=int,
        default=CHUNK_USERS,
        help=f"users drawn and held in memory at a time (default {CHUNK_USERS}); part of what fixes the files' bytes",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override a planted parameter, e.g. --set churn_hazard_ratio_adopted=0.5 (repeatable)",
    )
    p.set_defaults(func=_cmd_simulate)


# --------------------------------------------------------------------- reports
@_refusals_exit_2
def _cmd_run(args) -> int:
    from workbench.reports.notebooks import describe_notebook, describe_notebooks

    if args.help or args.list:
        if args.help:
            print(args._parser.format_help())
        print(describe_notebook(args.notebook) if args.notebook else describe_notebooks())
        return 0
    if not args.notebook:
        print(f"error: give a NOTEBOOK to run; the project's notebooks:\n\n{describe_notebooks()}", file=sys.stderr)
        return 2
    from workbench.reports.runner import run_notebook

    result = run_notebook(
        args.notebook,
        texts=dict(args.parameter),
        params_file=args.parameters_file,
        reports_dir=args.reports,
        progress=not args.quiet,
        cell_timeout=args.cell_timeout,
    )
    print(result.report)
    if not result.ok and args.quiet:  # --quiet hides progress, never why a run failed
        print(f"FAILED: {result.error}", file=sys.stderr)
    return 0 if result.ok else 1


def _add_run(sub) -> None:
    p = sub.add_parser(
        "run",
        add_help=False,
        help="run one report notebook into reports/<notebook>/<run-id>/",
        description="Check the parameters against the notebook's parameters cell (before any kernel starts), "
        "execute it with papermill in the project root, and write the executed notebook, a self-contained "
        "report.html, metrics.json and manifest.json into reports/<notebook>/<run-id>/. Prints the report's "
        "path; exits 1 if the notebook failed (its partial notebook and report are kept) and 2 if the "
        "parameters were refused (types and the rules in the parameters' comments; no kernel is started) "
        "or the run's files could not be written. "
        "`workbench run NOTEBOOK --help` lists that notebook's parameters.",
    )
    p.add_argument("notebook", nargs="?", metavar="NOTEBOOK", help="a name in notebooks/ (data_overview) or a path to an .ipynb")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="set a parameter (repeatable); the value is converted to the declared type")
    p.add_argument("-f", "--parameters-file", metavar="PARAMS.yaml", help="a YAML file of NAME: VALUE lines (-p overrides it)")
    p.add_argument("--reports", metavar="DIR", help="where runs go (default: <project root>/reports)")
    p.add_argument("--cell-timeout", type=_positive_seconds, metavar="SECONDS", help="fail the run if one cell takes longer (default: no limit)")
    p.add_argument("--quiet", action="store_true", help="no progress output (a failure is still reported)")
    p.add_argument("--list", action="store_true", help="list the project's notebooks and their parameters")
    p.add_argument("-h", "--help", action="store_true", help="show this help (and NOTEBOOK's parameters) and exit")
    p.set_defaults(func=_cmd_run, _parser=p)


@_refusals_exit_2
def _cmd_batch(args) -> int:
    from workbench.reports.batch import load_batch, run_batch

    if args.dry_run:
        batch = load_batch(args.config)
        print(f"batch {batch.name} ({batch.path}): {len(batch.jobs)} run(s), all parameters checked")
        for job in batch.jobs:
            print(f"  {job.number:>3}  {job.name:<28} {job.describe_parameters()}")
        return 0
    result = run_batch(args.config, workers=args.workers, reports_dir=args.reports, progress=not args.quiet,
                       only=args.only, cell_timeout=args.cell_timeout)
    print(result.summary(), flush=True)
    if result.interrupted:
        return 130
    return 0 if result.ok else 1


def _add_batch(sub) -> None:
    p = sub.add_parser(
        "batch",
        help="run the report jobs of a batch config in parallel (default batches/default.yml)",
        description="Run every job of a batch config (default: batches/default.yml; a bare name means "
        "batches/NAME.yml) in parallel worker processes. All notebooks and parameters are checked first. "
        "A failing job (or a worker that dies) does not stop the others; a summary table is printed at the end, "
        "reports/index.html is rebuilt, and the exit status is 1 if any job failed, 2 if the config was refused "
        "(nothing runs). Ctrl-C (or SIGTERM) stops every worker and kernel at once, still prints the summary "
        "and rebuilds the index, and exits 130.",
    )
    p.add_argument("config", nargs="?", metavar="CONFIG", help="batch config file or name (default: batches/default.yml)")
    p.add_argument("-j", "--workers", type=_positive_int, metavar="N", help="worker processes (default: number of cores)")
    p.add_argument("--only", action="append", metavar="NOTEBOOK", help="run only this notebook's jobs (repeatable)")
    p.add_argument("--reports", metavar="DIR", help="where runs go (default: <project root>/reports)")
    p.add_argument("--cell-timeout", type=_positive_seconds, metavar="SECONDS", help="fail a run if one cell takes longer")
    p.add_argument("--dry-run", action="store_true", help="check the config and list the runs without running them")
    p.add_argument("--quiet", action="store_true", help="no progress output, only the summary")
    p.set_defaults(func=_cmd_batch)


@_refusals_exit_2
def _cmd_index(args) -> int:
    from workbench.reports.index import build_index, incomplete_runs, prune_incomplete, scan_runs

    if args.prune:
        for path in prune_incomplete(args.reports):
            print(f"removed unfinished run folder {path}")
    path = build_index(args.reports)
    runs, skipped = scan_runs(path.parent)
    failed = sum(r.status != "succeeded" for r in runs)
    print(f"{path}: {len(runs)} run(s), {failed} failed")
    for folder, why in skipped:
        print(f"skipped {folder}: {why}", file=sys.stderr)
    left = incomplete_runs(path.parent)
    if left:
        print(f"{len(left)} unfinished run folder(s) not listed (interrupted or still running); "
              "`workbench index --prune` removes those whose process has ended")
    return 0


def _add_index(sub) -> None:
    p = sub.add_parser(
        "index",
        help="rebuild reports/index.html from the runs' manifests",
        description="Rebuild reports/index.html, the list of every finished run (notebook, parameters, status, "
        "when, headline, links), from reports/*/*/manifest.json. Runs and batches do this themselves.",
    )
    p.add_argument("--reports", metavar="DIR", help="the reports folder (default: <project root>/reports)")
    p.add_argument("--prune", action="store_true", help="delete unfinished run folders whose process has ended")
    p.set_defaults(func=_cmd_index)


@_refusals_exit_2
def _cmd_compare(args) -> int:
    from workbench.reports.compare import compare_runs

    cmp = compare_runs(args.run_a, args.run_b, reports_dir=args.reports)
    if args.json:
        print(cmp.table.reset_index().to_json(orient="records", indent=2))
    else:
        print(cmp.to_text(all_rows=args.all))
    return 0


def _add_compare(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="show how the recorded metrics changed between two runs",
        description="Compare metrics.json (and the parameters) of two runs. A run is a run folder, "
        "NOTEBOOK/RUN_ID, a run id or a unique prefix of one, NOTEBOOK (its latest run) or NOTEBOOK~N "
        "(N runs before its latest). Example: workbench compare data_overview~1 data_overview",
    )
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--all", action="store_true", help="also list metrics that did not change")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON records")
    p.add_argument("--reports", metavar="DIR", help="the reports folder (default: <project root>/reports)")
    p.set_defaults(func=_cmd_compare)


# --------------------------------------------------------------------- tables
def _all_tables() -> dict:
    """The engine tables, then the tables that fit a model."""
    from workbench.models.exports import MODEL_TABLES
    from workbench.tables import TABLE_FUNCTIONS

    return {**TABLE_FUNCTIONS, **MODEL_TABLES}


def _describe_all_tables() -> str:
    from workbench.models import exports
    from workbench.tables.export import describe_tables

    return (describe_tables() + "\n\ntables that fit a model (see docs/clv.md):\n"
            + describe_tables(exports.MODEL_TABLES, exports.ROWS))


def _cmd_tables(args) -> int:
    from workbench.data import load_dataset
    from workbench.tables.export import build_table, check_options, write_table

    if args.list:
        print(_describe_all_tables())
        return 0
    if not args.name or not args.dataset or not args.out:
        print("error: give NAME DATASET --out FILE (or --list); the tables:\n" + _describe_all_tables(), file=sys.stderr)
        return 2
    skip = {"command", "func", "name", "dataset", "out", "backend", "list"}
    options = {k: v for k, v in vars(args).items() if k not in skip}
    functions = _all_tables()
    check_options(args.name, options, functions)  # before the (slow) load
    ds = load_dataset(args.dataset, backend=args.backend)
    df = build_table(args.name, ds, functions=functions, **options)
    df = df.to_pandas() if hasattr(df, "to_pandas") else df
    out = write_table(df, args.out)
    print(f"wrote {args.name}: {len(df):,} rows x {len(df.columns)} columns to {out}")
    return 0


def _names(text: str) -> tuple:
    return tuple(s.strip() for s in text.split(",") if s.strip() and s.strip().lower() != "none")


def _widths(text: str) -> dict:
    """``age=10,income=5000`` -> {"age": 10.0, "income": 5000.0}."""
    out = {}
    for item in (s.strip() for s in text.split(",") if s.strip()):
        name, sep, width = item.partition("=")
        try:
            out[name.strip()] = float(width)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected COLUMN=WIDTH pairs, comma-separated, e.g. age=10; got {item!r}")
    return out


def _numbers(text: str) -> tuple:
    try:
        return tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, e.g. 30,90,180; got {text!r}") from None


def _yes_no(text: str) -> bool:
    if text.lower() in ("yes", "true", "1"):
        return True
    if text.lower() in ("no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def _add_tables(sub) -> None:
    p = sub.add_parser(
        "tables",
        help="write an analysis table (KPIs, repeat-purchase summary, survival, ...) to CSV or Parquet",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compute one analysis table from a dataset in the engine (DuckDB unless --backend)\n"
        "and write it to FILE (.parquet or .csv; written to a temporary file, then renamed).\n"
        "Only the options a table takes are accepted; the others keep their defaults\n"
        "(see docs/tables.md for every column).\n\n"
        "example: workbench tables repeat_summary cdnow-sample --calibration-end 1997-09-30 --out summary.csv\n"
        "         workbench tables customers cdnow-sample --horizon 52 --discount-rate 0.1 --out customers.parquet\n\n"
        "tables and their options:\n" + _describe_all_tables(),
    )
    S = argparse.SUPPRESS
    p.add_argument("name", nargs="?", metavar="NAME", help="the analysis table (listed below, or --list)")
    p.add_argument("dataset", nargs="?", metavar="DATASET", help="dataset folder or dataset.yml, or a built-in name (sample, cdnow, cdnow-sample)")
    p.add_argument("--out", metavar="FILE", help="where to write: FILE.parquet or FILE.csv")
    p.add_argument("--list", action="store_true", help="list the tables and their options, then exit")
    p.add_argument("--backend", metavar="URL", default=None,
                   help="Ibis backend URL without a password, overriding the dataset.yml's backend (default: the one it names, else in-process DuckDB)")
    p.add_argument("--period", default=S, choices=["day", "week", "month", "year"],
                   help="calendar period (kpis: week, cohort_retention: month, repeat_opportunities: month)")
    p.add_argument("--time-unit", default=S, choices=["day", "week"], help="unit of recency and T (default week)")
    p.add_argument("--calibration-end", default=S, metavar="DATE", help="last day of calibration, e.g. 1997-09-30 (default: observation end)")
    p.add_argument("--holdout-end", default=S, metavar="DATE", help="last day of the holdout (default: observation end)")
    p.add_argument("--churn", default=S, choices=["cancel", "inactivity", "cancel_or_inactivity"],
                   help="churn rule: cancel events only, inactivity only, or whichever comes first (default cancel_or_inactivity)")
    p.add_argument("--churn-after-days", default=S, type=float, metavar="DAYS",
                   help="days of inactivity before the observation end that count as churn (default 30)")
    p.add_argument("--exposure", default=S, choices=["feedback", "adopted"], help="the co-creation event that exposes a user")
    p.add_argument("--bin-days", default=S, type=float, metavar="DAYS", help="width of a tenure bin in days (default 7)")
    p.add_argument("--strata", default=S, type=_names, metavar="COLS",
                   help="user attributes to stratify by, comma-separated (default segment; none: no strata)")
    p.add_argument("--experiment", default=S, metavar="NAME", help="experiment name in assignments (experiment_outcomes)")
    p.add_argument("--horizon-days", default=S, type=float, metavar="DAYS", help="retention horizon after assignment (default 90)")
    p.add_argument("--period-days", default=S, type=float, metavar="DAYS",
                   help="referrals: also split by calendar periods of this many days from the first signup")
    p.add_argument("--event-type", default=S, metavar="TYPE",
                   help="events_per_user: count only this event type (active, purchase, feedback, adopted, cancel; default: any)")
    p.add_argument("--bins-per-decade", default=S, type=int, metavar="K", help="purchase_amounts: log10 bins per factor of ten (default 8)")
    p.add_argument("--covariates", default=S, type=_names, metavar="COLS",
                   help="repeat summaries: user attributes and/or 'exposed' (co-creator by the calibration end) as columns; "
                        "landmark tables: user attributes of the propensity model (default segment); comma-separated")
    p.add_argument("--model", default=S, choices=["auto", "bgnbd", "pareto_nbd", "mbgnbd"],
                   help="customers: the purchase model; auto (default) chooses on the holdout after --calibration-end")
    p.add_argument("--horizon", default=S, type=float, metavar="UNITS", help="customers: CLV horizon in --time-unit units (default 52)")
    p.add_argument("--discount-rate", default=S, type=float, metavar="RATE", help="customers: annual discount rate of CLV (default 0.1)")
    p.add_argument("--level", default=S, type=float, metavar="LEVEL", help="customers: confidence level of the intervals (default 0.95)")
    p.add_argument("--naive-ever", default=S, type=_yes_no, metavar="yes|no",
                   help="risk_sets: exposed from signup for everyone who ever co-created (the naive, biased contrast; default no)")
    p.add_argument("--max-dose", default=S, type=int, metavar="N", help="dose_risk_sets: dose levels 0..N, N meaning N or more (default 3)")
    p.add_argument("--landmarks", default=S, type=_numbers, metavar="DAYS",
                   help="landmark tables: landmark days, comma-separated (default 30,90,180)")
    p.add_argument("--coarsen", default=S, type=_widths, metavar="COL=WIDTH",
                   help="landmark tables: bin numeric covariates in the engine, e.g. age=10 (comma-separated pairs)")
    p.set_defaults(func=_cmd_tables)


# --------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Research workbench: users -> customers -> revenue, and co-creation -> retention.",
    )
    from workbench import __version__

    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in _COMMANDS:
        add(sub)
    return parser


_COMMANDS = [_add_validate, _add_import, _add_simulate, _add_run, _add_batch, _add_index, _add_compare, _add_tables]


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _note(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning printed as one ``note:`` line (the workbench's own) or as Python prints it."""
    if issubclass(category, WorkbenchWarning):
        print(f"note: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.getsignal(signal.SIGTERM)
    if args.command in ("run", "batch") and previous is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)  # `kill PID` ends a run as Ctrl-C does
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", WorkbenchWarning)
            warnings.showwarning = _note
            return int(args.func(args) or 0)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    finally:
        if signal.getsignal(signal.SIGTERM) is _sigterm_as_interrupt:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

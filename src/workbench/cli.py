"""The ``workbench`` command: a thin front over the package.

Each subcommand is a ``_cmd_<name>(args)`` function registered in
:func:`build_parser`; the work itself lives in the layers. Errors the
workbench raises on purpose are printed as one clear message; a contract
violation exits with status 2, any other workbench error with status 1.
"""

from __future__ import annotations

import argparse
import sys

from workbench.errors import DataError, WorkbenchError


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
        description="Check a dataset folder (or a built-in name: sample, cdnow, cdnow-sample) "
        "against the dataset contract. Prints every violation at once and exits 2 if any; "
        "otherwise prints what the dataset holds and which analyses it supports.",
    )
    p.add_argument("path", help="dataset folder, or a built-in dataset name")
    p.set_defaults(func=_cmd_validate)


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


_COMMANDS = [_add_validate]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

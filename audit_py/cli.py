"""The `audit-py` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import demo
from .schema import migrate


def _dsn_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"),
                        help=f"{help_text} (default: $DATABASE_URL)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audit-py", description="Immutable audit log in PostgreSQL.")
    commands = parser.add_subparsers(dest="command", required=True)

    migrate_cmd = commands.add_parser("migrate", help="apply the bundled migrations to a database")
    _dsn_option(migrate_cmd, "libpq connection string or URI of the database to migrate")

    demo_cmd = commands.add_parser(
        "demo", help="show the log at work, on a throwaway server unless --dsn is given")
    # Not $DATABASE_URL: a demo must not migrate a database its user did not name.
    demo_cmd.add_argument("--dsn", help="run against this database instead of a throwaway server; "
                                        "it is migrated, and the demo's own entries are rolled back")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "migrate":
        if not args.dsn:
            print("audit-py migrate: give --dsn or set DATABASE_URL", file=sys.stderr)
            return 2
        applied = migrate(args.dsn)
        print(f"applied: {', '.join(applied)}" if applied else "already up to date")
        return 0
    return demo.run(args.dsn)


if __name__ == "__main__":
    sys.exit(main())

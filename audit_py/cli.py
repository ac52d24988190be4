"""The `audit-py` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

import psycopg

from . import demo, digest, ledger
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

    seal_cmd = commands.add_parser("seal", help="seal finished entries into each company's hash chain")
    _dsn_option(seal_cmd, "database to seal, as the owner of the log")
    seal_cmd.add_argument("--watch", type=float, metavar="SECONDS", help="seal again every SECONDS, until stopped")

    verify_cmd = commands.add_parser("verify", help="verify the chains in Python, recomputing every hash")
    _dsn_option(verify_cmd, "database to verify, as audit_reader or above")
    verify_cmd.add_argument("--company", type=UUID, action="append", help="verify only this company (repeatable)")
    verify_cmd.add_argument("--digest", type=Path, metavar="FILE", help="also prove the chains extend this digest")
    verify_cmd.add_argument("--public-key", type=Path, metavar="PEM", help="the key the digest must be signed with")

    digest_cmd = commands.add_parser("digest", help="write the head of every chain as JSON, to keep elsewhere")
    _dsn_option(digest_cmd, "database to take the digest of")
    digest_cmd.add_argument("--out", type=Path, metavar="FILE", help="write here instead of standard output")
    digest_cmd.add_argument("--key", type=Path, metavar="PEM", help="sign with this Ed25519 private key")

    keygen_cmd = commands.add_parser("keygen", help="make an Ed25519 key pair for signing digests")
    keygen_cmd.add_argument("--out", type=Path, required=True, metavar="FILE",
                            help="private key file (mode 0600); the public key goes to FILE.pub")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return demo.run(args.dsn)
    if args.command == "keygen":
        print(f"public key: {digest.generate_key(args.out)}")
        return 0
    if not args.dsn:
        print(f"audit-py {args.command}: give --dsn or set DATABASE_URL", file=sys.stderr)
        return 2
    if args.command == "migrate":
        applied = migrate(args.dsn)
        print(f"applied: {', '.join(applied)}" if applied else "already up to date")
        return 0
    try:
        with psycopg.connect(args.dsn) as conn:
            return COMMANDS[args.command](conn, args)
    except digest.DigestError as error:
        print(f"audit-py {args.command}: {error}", file=sys.stderr)
        return 2


def _seal(conn: psycopg.Connection[tuple[object, ...]], args: argparse.Namespace) -> int:
    while True:
        blocks = ledger.seal(conn)
        for company_id, block_no, entry_count in blocks:
            print(f"sealed block {block_no} of company {company_id}: {entry_count} entries", flush=True)
        if args.watch is None:
            if not blocks:
                print("nothing to seal")
            return 0
        time.sleep(args.watch)


def _verify(conn: psycopg.Connection[tuple[object, ...]], args: argparse.Namespace) -> int:
    trusted = digest.load_public_key(args.public_key) if args.public_key else None
    held = None
    if args.digest:
        held, trust = digest.read(args.digest, trusted)
        print(f"digest {args.digest}: {trust}")
    company_ids = args.company or ledger.companies(conn)
    verdicts = [ledger.verify(conn, company_id) for company_id in company_ids]
    if held is not None:
        verdicts += ledger.check_digest(conn, held, args.company)
    for verdict in verdicts:
        print(("OK       " if verdict.ok else "TAMPERED ") + verdict.report)
    if not company_ids:
        print("nothing to verify: the log is empty")
    return 0 if all(v.ok for v in verdicts) else 1


def _digest(conn: psycopg.Connection[tuple[object, ...]], args: argparse.Namespace) -> int:
    key = digest.load_private_key(args.key) if args.key else None
    text = json.dumps(digest.document(digest.take(conn), key), indent=2, sort_keys=True) + "\n"
    if args.out:
        args.out.write_text(text)
        print(f"digest written to {args.out}" + (" (signed)" if key else ""))
    else:
        sys.stdout.write(text)
    return 0


COMMANDS = {"seal": _seal, "verify": _verify, "digest": _digest}


if __name__ == "__main__":
    sys.exit(main())

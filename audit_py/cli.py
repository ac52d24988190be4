"""The `audit-py` command line."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID

import psycopg

from . import citus, demo, digest, ledger, offline, reading
from .errors import AuditError
from .schema import MigrationRefused, migrate, rollback
from .server import ServerError
from .service import AuditService
from .sharded_tail import Position


def _instant(text: str) -> datetime:
    """An ISO 8601 time; one without an offset is UTC, whatever the server's or session's time zone."""
    instant = datetime.fromisoformat(text)
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=timezone.utc)


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value <= 86400:  # NaN and infinity too
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, up to a day (86400), not {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _trust_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--trust-owner", action="append", default=[], metavar="ROLE",
                         help="a role whose code the copied tables run, trusted as a superuser (README: Shard moves)")


def _position(text: str) -> int | Position:
    """tail's position: a transaction id, or on a log sharded on Citus origin:txid for each worker."""
    return Position.parse(text) if ":" in text else _count(text)


def _version() -> str:
    try:
        return importlib.metadata.version("audit-py")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def _dsn_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"),
                        help=f"{help_text} (default: $DATABASE_URL)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audit-py", description="Immutable audit log in PostgreSQL.")
    parser.add_argument("--version", action="version", version=f"audit-py {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    migrate_cmd = commands.add_parser("migrate", help="apply the bundled migrations to a database")
    _dsn_option(migrate_cmd, "libpq connection string or URI of the database to migrate")

    citus_cmd = commands.add_parser(
        "citus-install", help="on a Citus coordinator: migrate, then shard the log by company (README: Scaling out)")
    _dsn_option(citus_cmd, "libpq connection string or URI of the coordinator's database, as the installing login")
    citus_cmd.add_argument("--superuser-dsn", help="the same database as a superuser, which distributing needs"
                                                   " (default: --dsn)")

    add_worker_cmd = commands.add_parser(
        "citus-add-worker", help="on a Citus coordinator: make a new worker part of the sharded log"
                                 " (README: Scaling out)")
    _dsn_option(add_worker_cmd, "libpq connection string or URI of the coordinator's database, as a superuser")
    add_worker_cmd.add_argument("--host", required=True, help="the worker's host, as the coordinator reaches it")
    add_worker_cmd.add_argument("--port", type=int, default=5432, help="the worker's port (default: 5432)")
    _trust_option(add_worker_cmd)

    rebalance_cmd = commands.add_parser(
        "citus-rebalance", help="on a Citus coordinator: spread the log's shards evenly over the workers"
                                " (README: Scaling out)")
    _dsn_option(rebalance_cmd, "libpq connection string or URI of the coordinator's database, as a superuser")
    rebalance_cmd.add_argument("--mode", choices=("block_writes", "force_logical", "auto"), default="block_writes",
                               help="Citus's shard_transfer_mode (default: block_writes; README: Shard moves)")
    _trust_option(rebalance_cmd)

    uninstall_cmd = commands.add_parser(
        "uninstall", help="roll back every migration: the log, its functions and (unless still used) its roles")
    _dsn_option(uninstall_cmd, "database to remove the log from, as the login that installed it")
    uninstall_cmd.add_argument("--destroy-entries", action="store_true",
                               help="confirm that the log's entries go with it (export them first)")

    demo_cmd = commands.add_parser(
        "demo", help="show the log at work, on a throwaway server unless --dsn is given")
    # Not $DATABASE_URL: a demo must not migrate a database its user did not name.
    demo_cmd.add_argument("--dsn", help="run against this database instead of a throwaway server; "
                                        "it is migrated, and the demo's own entries are rolled back")

    seal_cmd = commands.add_parser("seal", help="seal finished entries into each company's hash chain")
    _dsn_option(seal_cmd, "database to seal, as a login granted audit_admin")
    seal_cmd.add_argument("--watch", type=_positive, metavar="SECONDS", help="seal again every SECONDS, until stopped")

    verify_cmd = commands.add_parser("verify", help="verify the chains in Python, recomputing every hash")
    _dsn_option(verify_cmd, "database to verify, as audit_reader or above")
    verify_cmd.add_argument("--company", type=UUID, action="append", help="verify only this company (repeatable)")
    verify_cmd.add_argument("--digest", type=Path, metavar="FILE", help="also prove the chains extend this digest")
    verify_cmd.add_argument("--public-key", type=Path, metavar="PEM", help="the key the digest must be signed with")
    verify_cmd.add_argument("--export", type=Path, metavar="FILE",
                            help="verify a JSON lines export and its FILE.chain.json offline, without a database")

    digest_cmd = commands.add_parser("digest", help="write the head of every chain as JSON, to keep elsewhere")
    _dsn_option(digest_cmd, "database to take the digest of")
    digest_cmd.add_argument("--out", type=Path, metavar="FILE", help="write here instead of standard output")
    digest_cmd.add_argument("--key", type=Path, metavar="PEM", help="sign with this Ed25519 private key")

    log_cmd = commands.add_parser("log", help="a company's entries, newest first, a page at a time")
    _dsn_option(log_cmd, "database to read, as audit_reader (or audit_tenant_reader, for its company)")
    log_cmd.add_argument("--company", type=UUID, required=True)
    log_cmd.add_argument("--franchise", type=UUID)
    log_cmd.add_argument("--user", type=UUID)
    log_cmd.add_argument("--action")
    log_cmd.add_argument("--entity", help="entity kind, e.g. invoice")
    log_cmd.add_argument("--entity-id", type=UUID, help="with --entity: that entity's whole history, oldest first")
    log_cmd.add_argument("--since", type=_instant, metavar="ISO-TIME", help="from this time on")
    log_cmd.add_argument("--until", type=_instant, metavar="ISO-TIME", help="before this time")
    log_cmd.add_argument("--limit", type=int, default=100, help="entries per page (default 100)")
    log_cmd.add_argument("--after", metavar="CURSOR", help="the next page: the cursor the previous page printed")
    log_cmd.add_argument("--json", action="store_true", help="JSON lines even on a terminal (the default when piped)")

    tail_cmd = commands.add_parser("tail", help="entries as their transactions end, in order")
    _dsn_option(tail_cmd, "database to read")
    tail_cmd.add_argument("--follow", "-f", action="store_true", help="keep waiting for new entries")
    tail_cmd.add_argument("--company", type=UUID, help="this company only")
    tail_cmd.add_argument("--from-position", type=_position, metavar="POSITION",
                          help="start from a position printed earlier, instead of from now")
    tail_cmd.add_argument("--lines", "-n", type=_count, default=10, metavar="N",
                          help="start with the N latest entries (default 10), unless --from-position")
    tail_cmd.add_argument("--poll", type=_positive, default=0.5, metavar="SECONDS",
                          help="how often to look (default 0.5)")
    tail_cmd.add_argument("--notice-after", type=_positive, default=60, metavar="SECONDS",
                          help="say which open transactions hold entries back once they have for this long"
                               " (default 60)")

    export_cmd = commands.add_parser("export", help="stream a company's entries to a file, oldest first")
    _dsn_option(export_cmd, "database to read")
    export_cmd.add_argument("--company", type=UUID, required=True)
    export_cmd.add_argument("--since", type=_instant, metavar="ISO-TIME")
    export_cmd.add_argument("--until", type=_instant, metavar="ISO-TIME")
    export_cmd.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export_cmd.add_argument("--out", type=Path, required=True, metavar="FILE",
                            help="the file to write (with FILE.chain.json beside it, for jsonl); - for standard output")

    keygen_cmd = commands.add_parser("keygen", help="make an Ed25519 key pair for signing digests")
    keygen_cmd.add_argument("--out", type=Path, required=True, metavar="FILE",
                            help="private key file (mode 0600); the public key goes to FILE.pub")
    return parser


# What each command needs of its login, for the line that says it lacks it.
NEEDS = {"migrate": "the database's owner, with CREATEROLE", "citus-install": "a superuser of the coordinator",
         "citus-add-worker": "a superuser of the coordinator", "citus-rebalance": "a superuser of the coordinator",
         "uninstall": "the login that installed the log",
         "seal": "audit_admin", "verify": "audit_reader",
         "digest": "audit_reader", "log": "audit_reader or audit_tenant_reader", "tail": "audit_reader",
         "export": "audit_reader or audit_tenant_reader", "demo": "the database's owner"}


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 done, 1 the command's negative finding (tampering, for verify), 2 could not do it."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and let no flush at exit complain of it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # noqa: BLE001 - turned into one line below, or raised again
        message = _one_line(args.command, error)
        if message is None:
            raise
        print(f"audit-py {args.command}: {message}", file=sys.stderr)
        return 2


def _one_line(command: str, error: Exception) -> str | None:
    """What went wrong and what to do, for the errors a user can cause; None for a bug."""
    first = ledger._first_line(error)
    if isinstance(error, AuditError) and isinstance(error.__cause__, psycopg.Error):
        hint = error.__cause__.diag.message_hint
        return f"{error}. {hint}" if hint else str(error)
    if isinstance(error, (digest.DigestError, AuditError, ServerError, reading.Unsupported, citus.CitusError,
                          MigrationRefused)):
        return str(error)
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return f"{first}: this login needs {NEEDS.get(command, 'a role of the log')}"
    if isinstance(error, (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction,
                          psycopg.errors.InvalidSchemaName)):
        return f"no audit log in this database, or an older one ({first}): run `audit-py migrate` first"
    if isinstance(error, psycopg.OperationalError):
        return f"could not connect ({first})"
    if isinstance(error, psycopg.ProgrammingError) and "connection" in first:
        return f"not a connection string ({first})"
    if isinstance(error, psycopg.Error):
        return first
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    if isinstance(error, ValueError) and command in ("digest", "verify", "keygen"):
        return f"not a key ({first})"
    return None


def _libpq(dsn: str) -> str:
    """The DSN as libpq takes it: yoyo's postgresql+psycopg:// is a postgresql:// URI."""
    for scheme in ("postgresql+psycopg://", "postgres+psycopg://"):
        if dsn.startswith(scheme):
            return "postgresql://" + dsn[len(scheme):]
    return dsn


def _run(args: argparse.Namespace) -> int:
    if getattr(args, "dsn", None):
        args.dsn = _libpq(args.dsn)
    elif hasattr(args, "dsn") and args.command != "demo" and any(
            os.environ.get(name) for name in ("PGHOST", "PGDATABASE", "PGSERVICE", "PGUSER", "PGPORT")):
        args.dsn = " "  # libpq's own defaults: the PG* variables, ~/.pgpass
    if args.command == "demo":
        return demo.run(args.dsn)
    if args.command == "verify" and args.export:
        return _verify_export(args)
    if args.command == "keygen":
        _check_out(args)
        print(f"public key: {digest.generate_key(args.out)}")
        return 0
    if not args.dsn:
        print(f"audit-py {args.command}: give --dsn or set DATABASE_URL", file=sys.stderr)
        return 2
    _check_out(args)
    if args.command == "migrate":
        applied = migrate(args.dsn, on_notice=lambda message: print(message, file=sys.stderr))
        print(f"applied: {', '.join(applied)}" if applied else "already up to date")
        return 0
    if args.command == "citus-install":
        applied, distributed = citus.install(
            args.dsn, args.superuser_dsn and _libpq(args.superuser_dsn),
            on_notice=lambda message: print(message, file=sys.stderr))
        print(f"applied: {', '.join(applied)}" if applied else "already up to date")
        print("distributed by company_id" if distributed else "already distributed")
        return 0
    if args.command == "citus-add-worker":
        added = citus.add_worker(args.dsn, args.host, args.port, args.trust_owner)
        print(f"{'added' if added else 'already a node, made part of the log again'}: {args.host}:{args.port}")
        return 0
    if args.command == "citus-rebalance":
        print(f"shards moved: {citus.rebalance(args.dsn, args.mode, args.trust_owner)}")
        return 0
    if args.command == "uninstall":
        removed = rollback(args.dsn, destroy_entries=args.destroy_entries)
        print(f"rolled back: {', '.join(removed)}" if removed else "nothing to roll back: no migration is applied")
        return 0
    if args.command == "tail":
        return _tail(args)
    try:
        with psycopg.connect(args.dsn) as conn:
            return COMMANDS[args.command](conn, args)
    except psycopg.Error as error:
        if args.command not in ("verify", "digest"):
            raise
        # An alert must tell "could not verify" (2) from "tampered" (1), in one line.
        print(f"audit-py {args.command}: could not verify: {_one_line(args.command, error)}", file=sys.stderr)
        return 2


def _check_out(args: argparse.Namespace) -> None:
    """An output file's directory must exist before the work that fills it starts."""
    out = getattr(args, "out", None)
    if out is not None and str(out) != "-" and not out.parent.is_dir():
        raise FileNotFoundError(2, "no such directory", str(out.parent))


def _seal(conn: psycopg.Connection[tuple[object, ...]], args: argparse.Namespace) -> int:
    # audit.seal() says, in a NOTICE, what holds it back when entries have waited long.
    conn.add_notice_handler(lambda notice: print(notice.message_primary, file=sys.stderr, flush=True))
    while True:
        blocks = ledger.seal(conn)
        for company_id, block_no, entry_count in blocks:
            print(f"sealed block {block_no} of company {company_id}: {entry_count} entries", flush=True)
        if args.watch is None:
            if not blocks:
                print("nothing to seal")
            return 0
        time.sleep(args.watch)


def _held_digest(args: argparse.Namespace) -> dict[str, object] | None:
    """The digest given with --digest, read and judged; DigestError when it must not be trusted."""
    if not args.digest:
        if args.public_key:
            raise digest.DigestError("--public-key checks the signature of a --digest file: give one")
        return None
    trusted = digest.load_public_key(args.public_key) if args.public_key else None
    held, trust = digest.read(args.digest, trusted)
    print(f"digest {args.digest}: {trust}")
    return held


def _verify(conn: psycopg.Connection[tuple[object, ...]], args: argparse.Namespace) -> int:
    held = _held_digest(args)
    run = ledger.verify_all(conn, args.company)
    verdicts = run.verdicts + (ledger.check_digest(run, held, args.company) if held is not None else [])
    for verdict in verdicts:
        print(verdict.line)
    if len(run.verdicts) == 1 and run.verdicts[0].ok:
        print("nothing to verify: the log is empty")
    return ledger.Run(verdicts).exit_code


def _verify_export(args: argparse.Namespace) -> int:
    if not args.export.is_file():
        raise FileNotFoundError(2, "no such file", str(args.export))
    try:
        held = _held_digest(args)
    except digest.DigestError as error:
        print(f"audit-py verify: {error}", file=sys.stderr)
        return 2
    verdicts = offline.verify_export(args.export, held)
    for verdict in verdicts:
        print(verdict.line)
    return ledger.Run(verdicts).exit_code


def _digest(conn: psycopg.Connection[tuple[object, ...]], args: argparse.Namespace) -> int:
    key = digest.load_private_key(args.key) if args.key else None
    # Built here from chains just verified: never from a database function's word.
    run = ledger.verify_all(conn)
    if run.exit_code != 0:
        for verdict in run.verdicts:
            if not verdict.ok:
                print(verdict.line, file=sys.stderr)
        print("audit-py digest: not taken: the log did not verify", file=sys.stderr)
        return run.exit_code
    text = json.dumps(digest.document(ledger.take_digest(conn, run), key), indent=2, sort_keys=True) + "\n"
    if args.out:
        args.out.write_text(text)
        print(f"digest written to {args.out}" + (" (signed)" if key else ""))
    else:
        sys.stdout.write(text)
    return 0


def _log(conn: psycopg.Connection[tuple[object, ...]], args: argparse.Namespace) -> int:
    audit = AuditService(conn)
    reading.name_company(conn, args.company)
    if args.entity_id is not None:
        if args.entity is None:
            print("audit-py log: --entity-id needs --entity", file=sys.stderr)
            return 2
        entries, cursor = audit.history(args.entity, args.entity_id), None
    else:
        page = audit.search(args.company, args.franchise, args.user, args.action, args.entity, args.since,
                            args.until, args.limit, args.after)
        entries, cursor = page.entries, page.next
    if args.json or not sys.stdout.isatty():
        for record in entries:
            print(reading.as_json(record))
    else:
        reading.as_table(entries, sys.stdout)
    if cursor:
        print(f"more: --after {cursor}", file=sys.stderr)
    return 0


def _tail(args: argparse.Namespace) -> int:
    stop = None if args.follow else iter([True])
    as_json = not sys.stdout.isatty()
    position = [args.from_position]  # where the last poll reached, printed at the end to resume from

    try:
        for record, _ in reading.follow(args.dsn, args.company, args.from_position, args.poll, args.lines,
                                        stop, args.notice_after, retry_connect=args.follow,
                                        polled=lambda reached: position.__setitem__(0, reached)):
            if as_json:
                print(reading.as_json(record), flush=True)
            else:
                reading.as_table([record], sys.stdout)
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    if position[0] is not None:
        print(f"resume with: --from-position {position[0]}", file=sys.stderr)
    return 0


def _export(conn: psycopg.Connection[tuple[object, ...]], args: argparse.Namespace) -> int:
    progress = sys.stderr if sys.stderr.isatty() else None
    to_stdout = str(args.out) == "-"
    written = reading.export(conn, args.company, args.since, args.until, args.format,
                             None if to_stdout else args.out, progress)
    if to_stdout:
        print(f"{written} entries written to standard output, without their chain (it needs a file)",
              file=sys.stderr)
        return 0
    chain = f", and the company's chain to {offline.chain_path(args.out)}" if args.format == "jsonl" else ""
    print(f"{written} entries written to {args.out}{chain}")
    return 0


COMMANDS = {"seal": _seal, "verify": _verify, "digest": _digest, "log": _log, "export": _export}


if __name__ == "__main__":
    sys.exit(main())

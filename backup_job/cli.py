"""Command line of the backup job.

    python -m backup_job backup --kind full|schema --bucket B [--prefix P] [--reason TEXT]
        [--mode auto|single|parallel] [--jobs N] [--parallel-table-mb MB]
        [--compression zstd|pg_dump] [--compress-level L] [--compress-threads N]
    python -m backup_job restore-check --bucket B [--prefix P] [--object O] [--kind full|schema]
    python -m backup_job restore --bucket B [--prefix P] [--object O] [--table S.T ...]
        [--replace | --into-schema S | --merge-missing] [--keep-owners] [--target-kind K] [--jobs N]
    python -m backup_job list --bucket B [--prefix P] [--all] [--json]
    python -m backup_job export-dns --zone-id Z --bucket B [--prefix P] [--api-token-file F]

The database URL (for restore-check: the scratch database's) comes from
`--database-url`, a mounted secret file (`--database-url-file`, or the
`DATABASE_URL_FILE` / `SCRATCH_DATABASE_URL_FILE` / `TARGET_DATABASE_URL_FILE`
variable - Cloud Run mounts Secret Manager secrets as files), or
`DATABASE_URL` / `SCRATCH_DATABASE_URL` / `TARGET_DATABASE_URL` (restore).
It is never logged and never put on a child's command line.

Every command but `list` prints exactly one JSON log line (Cloud Logging reads
`severity`), which log-based metrics count by `event` and `result`: on success,
on failure, on SIGTERM, and on an argument error (argparse's usage text then
goes to stderr). `list` prints its listing, or one `error:` line on stderr.
Exit codes are listed in backup_job.errors.ExitCode.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
from typing import Any, NoReturn

from backup_job import backup_args, check, database, dns_export, dump, restore
from backup_job import storage as layout
from backup_job.errors import COMMANDS, ExitCode, JobError, Terminated, end_run, handle_sigterm, printable
from core.contracts import (
    BUCKET_OPTION,
    EXPORT_LOG_KIND,
    KIND_OPTION,
    ZONE_OPTION,
    BackupKind,
    Command,
    JobEnv,
    LogField,
)

KINDS = tuple(kind.value for kind in BackupKind)


def _redacted(text: str) -> str:
    """`text` without the password of any database URL or `password=` keyword in it (a mistyped flag's value
    is echoed by argparse)."""
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1[password]@", text)
    return re.sub(r"(password\s*=\s*)\S+", r"\1[password]", text, flags=re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors also end with the job's JSON line on stdout, so a log-based metric counts
    them; argparse's usage text stays on stderr. Subcommand parsers are of this class too."""

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but arguments nobody knows are reported with the subcommand they came with."""
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}", getattr(parsed, "command", None))
        return parsed

    def error(self, message: str, command: str | None = None) -> NoReturn:
        message = printable(_redacted(message))
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr, flush=True)
        command = command or self.prog.rsplit(" ", 1)[-1]
        raise SystemExit(end_run(command if command in COMMANDS else None, ExitCode.USAGE, f"{message} (see --help)",
                                 as_json=True))


def _backup_choice(parser: argparse.ArgumentParser, verb: str) -> None:
    """--object / --kind: which backup a restoring command takes."""
    parser.add_argument("--object", help=f"the dump object to {verb} (default: the newest valid one)")
    parser.add_argument(KIND_OPTION, choices=KINDS, default=BackupKind.FULL.value,
                        help="kind of the newest backup to pick (default %(default)s)")


def _database_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--database-url", help=f"libpq URL of the {what} (prefer the file or variable)")
    parser.add_argument("--database-url-file", help=f"file holding the {what}'s URL (a mounted secret)")


def _storage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(BUCKET_OPTION, default=os.environ.get(JobEnv.BUCKET), help=f"bucket (default ${JobEnv.BUCKET})")
    parser.add_argument(
        "--prefix", default=os.environ.get(JobEnv.PREFIX, ""), help=f"object prefix (default ${JobEnv.PREFIX})"
    )


def build_parser() -> argparse.ArgumentParser:
    """The job's argument parser."""
    parser = _Parser(prog="python -m backup_job", description="Database backups to Cloud Storage.")
    commands = parser.add_subparsers(dest="command", required=True)

    backup = commands.add_parser(Command.BACKUP.value, help="dump the database into the bucket")
    backup.add_argument(KIND_OPTION, choices=KINDS, required=True)
    backup.add_argument("--reason", help="take an ad-hoc backup (before a deploy or schema change) for this reason")
    backup_args.add_arguments(backup)
    _database_arguments(backup, "database to back up")
    _storage_arguments(backup)

    check = commands.add_parser(Command.RESTORE_CHECK.value, help="restore a backup into a scratch database and verify it")
    _backup_choice(check, "check")
    _database_arguments(check, "empty scratch database")
    _storage_arguments(check)

    restore_cmd = commands.add_parser(Command.RESTORE.value,
                                      help="restore a verified backup into a database (whole or tables)")
    _backup_choice(restore_cmd, "restore into the target")
    restore_cmd.add_argument("--table", action="append", default=[], metavar="[SCHEMA.]TABLE",
                             help="restore only this table, named as SQL names it (quote names with capitals, "
                                  "spaces or dots: 'public.\"Order Items\"'); repeatable, any schemas; a "
                                  "partitioned table comes with its partitions")
    ways = restore_cmd.add_mutually_exclusive_group()
    ways.add_argument("--replace", action="store_true",
                      help="whole restore: drop and restore what exists; --table: restore a table in place, or "
                           "recreate it (and what the target lost with it) when it is gone")
    ways.add_argument("--into-schema", metavar="SCHEMA",
                      help="with --table: restore the tables beside the live ones, as SCHEMA.<table>")
    ways.add_argument("--merge-missing", action="store_true",
                      help="with --table: insert back, in one transaction, the dump's rows whose key the live "
                           "table lacks (the plan's data-deletion procedure)")
    restore_cmd.add_argument("--keep-owners", action="store_true",
                             help="keep the dump's object owners (they must exist); default: the target URL's role "
                                  "owns what the restore creates")
    restore_cmd.add_argument("--target-kind", choices=restore.TARGET_KINDS, default="auto",
                             help="supabase: leave the definitions of Supabase's managed schemas (auth, storage, ...) "
                                  "to the project and restore their rows; postgres: restore everything; auto "
                                  "(default): supabase when the target has the table auth.users")
    restore_cmd.add_argument("--jobs", type=int, default=restore.DEFAULT_JOBS,
                             help="pg_restore workers of a whole restore: 1 streams the dump into one transaction, "
                                  "N > 1 spools it to a temporary file (memory on Cloud Run) for pg_restore -j N "
                                  "(default %(default)s)")
    _database_arguments(restore_cmd, "target database")
    _storage_arguments(restore_cmd)

    export = commands.add_parser(Command.EXPORT_DNS.value, help="store the Cloudflare zone (BIND) with a manifest")
    export.add_argument(ZONE_OPTION, required=True, help="Cloudflare zone id")
    export.add_argument("--api-token-file", help="file holding a read-only DNS API token (a mounted secret); "
                                                 f"else ${JobEnv.CLOUDFLARE_API_TOKEN.file} or "
                                                 f"${JobEnv.CLOUDFLARE_API_TOKEN}")
    _storage_arguments(export)

    listing = commands.add_parser(Command.LIST.value, help="list complete backups, newest first")
    listing.add_argument("--all", action="store_true", help="also list dumps with no manifest (incomplete runs)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    _storage_arguments(listing)
    return parser


def _require_bucket(args: argparse.Namespace) -> str:
    if not args.bucket:
        raise JobError(ExitCode.USAGE, f"no bucket: pass {BUCKET_OPTION} or set {JobEnv.BUCKET}")
    args.prefix = layout.check_prefix(args.prefix)
    return layout.check_bucket(args.bucket)


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _human_age(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h {rest // 60}m"


def _list(args: argparse.Namespace) -> dict[str, Any]:
    bucket_name = _require_bucket(args)
    bucket = layout.client().bucket(bucket_name)
    found = layout.scan(bucket, args.prefix)
    complete, incomplete = found.complete, found.incomplete
    now = layout.utc_now()
    rows = [
        {
            "object": b.object, "kind": b.kind, "trigger": b.manifest.get("trigger"),
            "finishedAt": b.manifest["finishedAt"],
            "storedAt": layout.iso(b.stored_at) if b.stored_at else None,
            "ageSeconds": round((now - (b.stored_at or b.finished_at)).total_seconds()),
            "sizeBytes": b.size_bytes, "complete": True,
            # The writing host's clock ran ahead: its finishedAt is not to be trusted (the order uses storedAt).
            "futureFinishedAt": b.clock_skew_seconds is not None,
            "clockSkewSeconds": round(b.clock_skew_seconds) if b.clock_skew_seconds is not None else None,
        }
        for b in complete
    ]
    # An invalid backup is always shown: somebody has to look at it.
    rows += [{"object": name, "complete": False, "invalid": why} for name, why in found.invalid]
    if args.all:
        rows += [{"object": name, "complete": False} for name in incomplete]
    if args.json:
        print(json.dumps(rows, indent=2))
        return {}
    if not rows:
        print(f"no complete backups under gs://{bucket.name}/{args.prefix}")
    for row in rows:
        row = {k: printable(v) if isinstance(v, str) else v for k, v in row.items()}
        if row["complete"]:
            skew = (f"  CLOCK AHEAD: finishedAt is {row['clockSkewSeconds']} s after the bucket stored it"
                    if row["futureFinishedAt"] else "")
            print(f"{row['object']}  {row['kind']:<6}  {_human_age(row['ageSeconds']):>8} ago  "
                  f"{_human_bytes(row['sizeBytes']):>10}{skew}")
        elif "invalid" in row:
            print(f"{row['object']}  INVALID ({row['invalid']}: never used)")
        else:
            print(f"{row['object']}  INCOMPLETE (no manifest: never used)")
    return {}


def _run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the parsed command; return the fields its success line reports."""
    if args.command == Command.LIST:
        return _list(args)
    bucket = _require_bucket(args)
    if args.command == Command.BACKUP:
        db = database.Database.resolve(args.database_url, args.database_url_file, JobEnv.DATABASE_URL)
        request = backup_args.request_from(args, bucket)
        manifest = dump.run_backup(db, request)
        return {"object": manifest["object"], "bytes": manifest["sizeBytes"], "sha256": manifest["sha256"],
                "trigger": manifest["trigger"], "reason": args.reason}
    if args.command == Command.EXPORT_DNS:
        manifest = dns_export.run_export(args.zone_id, bucket, args.prefix, dns_export.resolve_token(args.api_token_file))
        return {"object": manifest["object"], "bytes": manifest["sizeBytes"], "sha256": manifest["sha256"],
                "records": manifest["records"]}
    if args.command == Command.RESTORE:
        db = database.Database.resolve(args.database_url, args.database_url_file, JobEnv.TARGET_DATABASE_URL)
        wanted = restore.RestoreRequest(
            tables=tuple(args.table), replace=args.replace, into_schema=args.into_schema,
            merge_missing=args.merge_missing, jobs=args.jobs, keep_owners=args.keep_owners,
            target_kind=args.target_kind,
        )
        report = restore.run_restore(db, bucket, args.prefix, args.object, args.kind, wanted)
        return {"object": report["object"], "bytes": report["bytes"], "tables": report["tables"],
                "rows": report["rows"], "mode": report.get("mode"), "restored": report.get("restored")}
    db = database.Database.resolve(args.database_url, args.database_url_file, JobEnv.SCRATCH_DATABASE_URL)
    report = check.run_restore_check(db, bucket, args.prefix, args.object, args.kind)
    return {"object": report["object"], "bytes": report["bytes"], "tables": report["tables"], "rows": report["rows"]}


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code, after its one last line (backup_job.errors.end_run)."""
    previous = handle_sigterm()
    try:
        return _main(argv)
    finally:
        if previous is not None:  # None: a handler not set from Python, which cannot be put back
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    started = time.monotonic()
    command: str | None = None
    fields: dict[str, Any] = {}
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        fields = {LogField.KIND.value: getattr(args, "kind", EXPORT_LOG_KIND)}
        fields.update(_run(args))
        code, message = ExitCode.OK, f"{command} succeeded"
    except JobError as exc:
        code, message = exc.code, str(exc)
        fields.update(exc.details)
    except Terminated:
        code, message = ExitCode.TERMINATED, (f"{command or 'the job'} stopped by SIGTERM (task timeout or cancel); "
                                              "nothing was completed")
    except Exception as exc:  # noqa: BLE001 - a bug still gets its log line, so the failure is counted
        code, message = ExitCode.FAILED, type(exc).__name__
    return end_run(command, code, message, durationSeconds=round(time.monotonic() - started, 3), **fields)

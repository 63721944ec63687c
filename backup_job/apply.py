"""Running what a table restore selected of an archive on the job's own connection, in its transaction.

pg_restore writes the SQL of the selected entries (`--file=-`); the job runs
it as one script, and streams each table's rows from pg_restore's output into
COPY (backup_job.archive splits them exactly). The definitions need only the
archive's table of contents; the rows are read in one pass over the whole dump,
whose sha256 and size are checked against the manifest on the way.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import psycopg
from google.cloud import storage
from psycopg import sql

from backup_job import archive, codec, database, parallel_restore, stream
from backup_job import storage as layout
from backup_job.catalog import Catalog
from backup_job.dump import pg_binary
from backup_job.errors import ExitCode, JobError
from backup_job.selection import Selection


def copy_columns(relation: dict[str, Any]) -> list[str]:
    """The columns pg_dump's COPY of `relation` lists: all but generated ones, in column order."""
    return [c["name"] for c in relation["columns"] if not c["generated"]]


class ArchiveRun:
    """A table restore's reads of one archive, run in the open transaction of `connection`."""

    def __init__(self, connection: psycopg.Connection, blob: storage.Blob, backup: layout.Backup,
                 catalog: Catalog, request, work: Path):
        self.connection, self.blob, self.backup, self.catalog, self.request = connection, blob, backup, catalog, request
        self.work = work
        self.head, listing = stream.read_head(blob, codec.of(self.backup.manifest))
        # A parallel backup's big tables: their rows are objects of their own (backup_job.by_table), by OID.
        self.objects = {t["oid"]: t for t in backup.manifest.get("tables", [])}
        self.toc = archive.Toc(archive.parse_listing(listing))
        self.selection = Selection(connection, self.toc, catalog)

    def run_sql(self, entries: list[archive.Entry], section: str) -> None:
        """Run pg_restore's SQL for `entries` of one section in this transaction."""
        if not entries:
            return
        listing = self.work / f"{section}.list"
        listing.write_text(archive.use_list(entries))
        command = [pg_binary("pg_restore"), "--file=-", f"--section={section}", f"--use-list={listing}"]
        if not self.request.keep_owners:
            command.append("--no-owner")
        text = archive.script(archive.run_pg_restore(command, self.head, f"write the {section} SQL"))
        try:
            self.connection.execute(text.encode())  # psycopg runs a script of many statements when given no params
        except psycopg.Error as exc:
            raise sql_failure(f"restoring the {section} definitions", exc) from None
        self.connection.execute("SET search_path = pg_catalog")

    def load(self, deliveries: list[tuple[archive.Entry | None, sql.Composable, dict[str, Any]]]
             ) -> stream.HashingPipe:
        """Stream the whole dump once: the rows of `deliveries` (data entry, destination, dumped relation) into
        their destinations; then the sha256 and size of all the bytes read, against the manifest. A delivery
        without a data entry is a big table of a parallel backup: its object is loaded after, and checked too."""
        pipe = self._load_archive([(e, d, r) for e, d, r in deliveries if e is not None])
        for entry, destination, relation in deliveries:
            if entry is None:
                try:
                    parallel_restore.load_object(self.connection, self.blob.bucket, self.objects[relation["oid"]],
                                                 destination)
                except psycopg.Error as exc:
                    raise sql_failure("loading the rows", exc) from None
        return pipe

    def _load_archive(self, deliveries: list[tuple[archive.Entry, sql.Composable, dict[str, Any]]]
                      ) -> stream.HashingPipe:
        listing = self.work / "data.list"
        listing.write_text(archive.use_list(entry for entry, _, _ in deliveries))
        run = stream.Restoring([pg_binary("pg_restore"), "--file=-", f"--use-list={listing}"], self.blob,
                               self.backup.manifest, hold_back=False, stdout=subprocess.PIPE)
        assert run.process.stdout is not None  # opened with PIPE
        outcome: JobError | None = None
        count = 0
        try:
            for block in archive.copy_blocks(run.process.stdout):
                if count >= len(deliveries):
                    raise JobError(ExitCode.DUMP_FAILED, "pg_restore wrote more tables' rows than were selected")
                _, destination, relation = deliveries[count]
                count += 1
                columns = sql.SQL(", ").join(sql.Identifier(c) for c in copy_columns(relation))
                statement = sql.SQL("COPY {} ({}) FROM STDIN").format(destination, columns)
                with self.connection.cursor() as cursor, cursor.copy(statement) as copy:
                    for chunk in block.chunks():
                        copy.write(chunk)
        except psycopg.Error as exc:
            outcome = sql_failure("loading the rows", exc)
        except JobError as exc:
            outcome = exc
        except BaseException:
            run.stop()  # SIGTERM: stop the download too
            raise
        if outcome is not None:
            run.kill()  # the download goes on: a wrong checksum is the better explanation of a failure
        code = run.wait()
        pipe = run.pipe
        if not pipe.matches(self.backup.manifest):
            raise JobError(ExitCode.VERIFICATION_MISMATCH,
                           f"{self.backup.object}: sha256 {pipe.sha256.hexdigest()} ({pipe.size} bytes) differs from "
                           f"the manifest's {self.backup.manifest['sha256']}; nothing was restored")
        if run.failure is not None:
            raise run.failure
        if outcome is not None:
            raise outcome
        if code != 0:
            raise JobError(ExitCode.DUMP_FAILED, f"pg_restore {database.exit_status(code)}: {run.errors[-1000:]}; "
                                                 "nothing was restored")
        if count != len(deliveries):
            raise JobError(ExitCode.DUMP_FAILED, f"pg_restore wrote the rows of {count} tables of "
                                                 f"{len(deliveries)}; nothing was restored")
        return pipe


def sql_failure(action: str, exc: psycopg.Error) -> JobError:
    detail = " ".join(str(exc).split())[:500]
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return JobError(ExitCode.DATABASE_UNREACHABLE, f"the target is read-only: {detail}; nothing was restored")
    if isinstance(exc, psycopg.OperationalError):
        return JobError(ExitCode.DATABASE_UNREACHABLE, f"{action}: the target went away: {detail}")
    return JobError(ExitCode.DUMP_FAILED, f"{action}: {detail}; nothing was restored")


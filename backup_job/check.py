"""`restore-check`: prove a backup restores - checksum, pg_restore into a scratch database, row counts.

The check restores into a database it creates for the purpose, marks with a
comment and drops on every way out, so nothing of a restored - or tampered -
dump stays, the check repeats forever, and even a production URL given by
mistake is never written to. A checksum that differs from the manifest fails
the check whatever pg_restore made of the bytes.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta

import psycopg
from google.cloud import storage
from psycopg import sql

from backup_job import database, parallel_restore, stream
from backup_job import storage as layout
from backup_job.errors import ExitCode, JobError
from backup_job.restore import compare_counts, require_roles
from core.contracts import BackupKind

THROWAWAY_PREFIX = "raptorflow_restore_check_"

# <prefix><UTC %Y%m%dT%H%M%S>_<pid>_<8 hex>: the check creates only names of this shape, with THROWAWAY_MARK as the
# database's comment, and drops only databases that have both.
_THROWAWAY_NAME = re.compile(rf"^{THROWAWAY_PREFIX}(\d{{8}}T\d{{6}})_\d+_[0-9a-f]{{8}}$")

THROWAWAY_MARK = "raptorflow-dr restore-check scratch database: dropped by the check that made it"

# A throwaway database older than the longest a run may last (Cloud Run's 24 h task limit) was left by a killed run.
STALE_AFTER = timedelta(hours=24)



def run_restore_check(
    scratch: database.Database,
    bucket_name: str,
    prefix: str = "",
    object_name: str | None = None,
    kind: str | None = BackupKind.FULL,
    gcs: storage.Client | None = None,
) -> dict:
    """Restore the newest valid backup (or `object_name`) into a database of its own; return a report.

    The scratch URL's role creates `raptorflow_restore_check_<UTC time>_<pid>_<random>`, marks it, restores and
    counts there, and the database is dropped on every way out - so the check runs again and again, a tampered
    dump never reaches a database anyone keeps, and the scratch URL's own database is never written.
    """
    backup, blob = stream.pick(gcs, bucket_name, prefix, object_name, kind)
    admin = scratch.connect()
    admin.autocommit = True
    try:
        _drop_stale(admin)
        require_roles(admin, backup, keep_owners=False)
        target = (f"{THROWAWAY_PREFIX}{layout.utc_now().strftime('%Y%m%dT%H%M%S')}_{os.getpid()}_"
                  f"{secrets.token_hex(4)}")
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))
        except psycopg.errors.InsufficientPrivilege:
            raise JobError(ExitCode.USAGE, "the scratch URL's role may not create databases: restore-check "
                                           "restores into a database of its own and drops it (grant CREATEDB)") from None
        try:
            admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(target),
                                                                         sql.Literal(THROWAWAY_MARK)))
            into = scratch.with_database(target)
            pipe: parallel_restore.Read | stream.HashingPipe
            if backup.manifest.get("mode") == "parallel":
                env = {"PGAPPNAME": f"raptorflow-restore-check-{os.getpid()}"}
                pipe = parallel_restore.by_table(into, blob, backup, ["--no-owner"], env,
                                                 parallel_restore.jobs_for(1), lambda table: True)
            else:
                pipe = stream.restore_into(into, blob, backup, ["--no-owner"], hold_back=False)
            with scratch.with_database(target).connect() as connection:
                restored = database.row_counts(connection)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target)))
    finally:
        admin.close()
    compare_counts(backup, restored)
    return {"object": backup.object, "kind": backup.manifest["kind"], "bytes": pipe.size,
            "sha256": pipe.sha256.hexdigest(), "tables": len(restored), "rows": sum(restored.values())}


def _drop_stale(admin: psycopg.Connection) -> None:
    """Drop throwaway databases that a killed run left behind (older than any run may last): only those whose
    name has the check's exact shape and whose comment is the check's mark."""
    cutoff = (layout.utc_now() - STALE_AFTER).strftime("%Y%m%dT%H%M%S")
    rows = admin.execute("SELECT d.datname, shobj_description(d.oid, 'pg_database') FROM pg_database d "
                         "WHERE d.datname LIKE %s", (THROWAWAY_PREFIX.replace("_", "\\_") + "%",)).fetchall()
    for name, comment in rows:
        match = _THROWAWAY_NAME.match(name)
        if match and comment == THROWAWAY_MARK and match[1] < cutoff:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


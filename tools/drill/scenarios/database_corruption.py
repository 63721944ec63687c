"""database-corruption: the app database's data files overwritten on the primary; the newest dump restored into a
fresh database and the apps repointed at it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from psycopg import sql

from core.contracts import LogField
from tools.drill.harness import DATABASE, Drill, Scenario
from tools.drill.report import ScenarioResult, Yardstick
from tools.drill.world import MISSED, DrillError

NAME = "database-corruption"


def run(drill: Drill) -> ScenarioResult:
    """Overwrite the primary's data files of the app database; restore the latest dump into a fresh database."""
    with drill.us.connect(drill.database) as connection:
        files = [row[0] for row in connection.execute(
            "SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
            "AND c.relkind IN ('r', 'i') AND pg_relation_filepath(c.oid) IS NOT NULL")]
        connection.execute("CHECKPOINT")
    for relative in files:
        for segment in [drill.us.data / relative, *sorted(drill.us.data.glob(relative + ".*"))]:
            overwrite(segment)
    incident = time.monotonic()  # the damage is done: the clock runs from here
    drill.us.stop("fast")
    drill.us.start()
    drill.progress(f"{NAME}: {len(files)} data files of {drill.database} overwritten, server restarted")
    fresh = f"{DATABASE}_restored_{int(time.time())}"
    with drill.us.connect() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(fresh)))
    started = time.monotonic()
    log = drill.restore(fresh, [])
    if log[LogField.EXIT_CODE] != 0:
        raise DrillError(MISSED, f"backup_job restore failed (exit {log[LogField.EXIT_CODE]}): "
                                 f"{log.get(LogField.MESSAGE, '')}")
    restore_seconds = time.monotonic() - started
    damaged = drill.database
    drill.repoint_apps(fresh)
    rto = drill.wait_write(incident, lambda ack: ack.database == fresh)
    with drill.us.connect(fresh) as connection:
        size = connection.execute("SELECT pg_database_size(current_database())").fetchone()
    assert size is not None
    restored_mb = size[0] / 1048576
    drill.throughput["restoreMbPerSecond"] = round(restored_mb / restore_seconds, 1)
    drill.throughput["restoredMb"] = round(restored_mb, 1)
    explained, unexplained, rpo = drill.explain_dump_losses(drill.us, damaged, incident, drill.backup, NAME)
    check = drill.verify(drill.us)
    return ScenarioResult(
        NAME, rto, len(explained) + len(unexplained), rpo, check.ok and not unexplained,
        f"{log['object']} restored into {fresh} in {restore_seconds:.1f} s ({restored_mb:.0f} MB, "
        f"{drill.throughput['restoreMbPerSecond']} MB/s) and the apps repointed; {len(explained)} rows acknowledged "
        f"after the dump began are lost (explained by the dump time), {len(unexplained)} unexplained",
        {"restore": {k: log.get(k) for k in ("object", "bytes", "rows", LogField.DURATION_SECONDS)},
         "restoreSeconds": restore_seconds, "freshDatabase": fresh, "corruptedFiles": len(files),
         "lostExplained": explained, "lostUnexplained": unexplained, "ledger": check.to_json()},
        steps=[drill.restore_step(restore_seconds, f"backup_job restore of {log['object']} into a fresh database")])


def overwrite(path: Path, chunk_bytes: int = 1 << 20) -> None:
    """Replace every byte of a data file with random bytes, in place (its size stays)."""
    remaining = path.stat().st_size
    with path.open("r+b") as handle:
        while remaining > 0:
            handle.write(os.urandom(min(chunk_bytes, remaining)))
            remaining -= chunk_bytes


SCENARIO = Scenario(NAME, run, Yardstick("databaseCorruption", restores_dump=True))

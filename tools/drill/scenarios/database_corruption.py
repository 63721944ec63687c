"""database-corruption: the app database's data files overwritten on the primary; the newest dump restored into a
fresh database and the apps repointed at it.

The damage comes at a random point of the backup cycle, as it would: an offset drawn uniformly inside the plan's
full-dump interval (the shortest gap of the prod plan's full backup schedule, 24 h for a daily dump). A fresh dump
is taken, then the drill waits the offset compressed by the time scale, capped at MAX_OFFSET_WAIT_SECONDS (at time
scale 60 a day is 24 minutes, too long for a small drill). The offset is reported in the plan's clock, and so is
the RPO it means: the offset plus what the dump itself missed (its snapshot is taken after it begins). Beside it,
the worst case: damage just before the next dump loses the whole interval. The measured RPO is that plan-clock
RPO, held to the worst case (the model's estimate for this path); what this run lost on the wall clock is in the
evidence (`wallRpoSeconds`). `RFDR_CORRUPTION_SEED` (an integer) fixes the draw.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

from psycopg import sql

from core.contracts import LogField
from core.recovery_facts import facts
from tools.drill.harness import DATABASE, Drill, Scenario
from tools.drill.report import ScenarioResult, Yardstick
from tools.drill.world import MISSED, USAGE, DrillError

NAME = "database-corruption"
SEED_VARIABLE = "RFDR_CORRUPTION_SEED"
MAX_OFFSET_WAIT_SECONDS = 3.0
"""The longest wall-clock wait for the drawn offset (the offset itself is reported uncapped, in the plan's clock)."""


def dump_interval_minutes(drill: Drill) -> tuple[float, str]:
    """(minutes, cron) of the prod plan's full backup schedule with the shortest gap (the model's dump interval)."""
    found = facts((r["type"], r["inputs"]) for r in drill.plans.prod["resources"])
    active = [b for b in found.full_backups if not b[2]] or found.full_backups
    if not active or min(b[1] for b in active) == float("inf"):
        raise DrillError(MISSED, "the prod plan has no readable full backup schedule to place the damage in")
    cron, minutes, _ = min(active, key=lambda b: b[1])
    return minutes, cron


def offset_in_cycle(drill: Drill) -> dict[str, Any]:
    """Draw the damage's offset inside the dump interval; wait it out (compressed, capped). What was drawn."""
    minutes, cron = dump_interval_minutes(drill)
    seed = os.environ.get(SEED_VARIABLE, "").strip() or None
    if seed is not None and not seed.lstrip("-").isdigit():
        raise DrillError(USAGE, f"{SEED_VARIABLE} must be an integer (it fixes where the damage falls in the cycle)")
    draw = random.Random(None if seed is None else int(seed)).random()
    offset_minutes = draw * minutes
    wait = min(offset_minutes * 60 / drill.options.time_scale, MAX_OFFSET_WAIT_SECONDS)
    time.sleep(wait)
    return {"intervalMinutes": minutes, "cron": cron, "offsetMinutes": round(offset_minutes, 2),
            "waitedSeconds": round(wait, 2), "maxWaitSeconds": MAX_OFFSET_WAIT_SECONDS, "seed": seed,
            "worstCaseRpoMinutes": minutes}


def damage(drill: Drill) -> tuple[int, float]:
    """Overwrite the app database's table and index files on the primary and restart it (checksums then refuse
    the pages): (files overwritten, the monotonic moment the damage was done)."""
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
    return len(files), incident


def run(drill: Drill) -> ScenarioResult:
    """A fresh dump, the damage at a drawn point of the cycle; restore the latest dump into a fresh database."""
    drill.backup = drill.take_backup("us", drill.plans.prod, drill.us, "the cycle's dump")
    cycle = offset_in_cycle(drill)
    corrupted, incident = damage(drill)
    drill.progress(f"{NAME}: {corrupted} data files of {drill.database} overwritten {cycle['offsetMinutes']:.0f} "
                   f"min into the {cycle['intervalMinutes']:.0f}-min dump cycle (plan clock), server restarted")
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
    # In the plan's clock the damage came offsetMinutes after the dump, not the compressed wait.
    cycle["planClockRpoMinutes"] = round(cycle["offsetMinutes"] + max(rpo - cycle["waitedSeconds"], 0.0) / 60, 2)
    check = drill.verify(drill.us)
    result = ScenarioResult(
        NAME, rto, len(explained) + len(unexplained), cycle["planClockRpoMinutes"] * 60, check.ok and not unexplained,
        f"{log['object']} restored into {fresh} in {restore_seconds:.1f} s ({restored_mb:.0f} MB, "
        f"{drill.throughput['restoreMbPerSecond']} MB/s) and the apps repointed; {len(explained)} rows acknowledged "
        f"after the dump began are lost (explained by the dump time), {len(unexplained)} unexplained; the damage "
        f"came {cycle['offsetMinutes']:.0f} min into the {cycle['intervalMinutes']:.0f}-min dump cycle (plan clock, "
        f"waited {cycle['waitedSeconds']:.1f} s): RPO {cycle['planClockRpoMinutes']:.0f} min in the plan's clock, "
        f"worst case {cycle['worstCaseRpoMinutes']:.0f} min (damage just before the next dump)",
        {"restore": {k: log.get(k) for k in ("object", "bytes", "rows", LogField.DURATION_SECONDS)},
         "restoreSeconds": restore_seconds, "freshDatabase": fresh, "corruptedFiles": corrupted,
         "dumpStartedAt": drill.backup["startedAt"], "backupCycle": cycle, "wallRpoSeconds": rpo,
         "lostExplained": explained, "lostUnexplained": unexplained, "ledger": check.to_json()},
        steps=[drill.restore_step(restore_seconds, f"backup_job restore of {log['object']} into a fresh database")])
    result.estimated_rpo_seconds = cycle["worstCaseRpoMinutes"] * 60
    return result


def overwrite(path: Path, chunk_bytes: int = 1 << 20) -> None:
    """Replace every byte of a data file with random bytes, in place (its size stays)."""
    remaining = path.stat().st_size
    with path.open("r+b") as handle:
        while remaining > 0:
            handle.write(os.urandom(min(chunk_bytes, remaining)))
            remaining -= chunk_bytes


SCENARIO = Scenario(NAME, run, Yardstick("databaseCorruption", restores_dump=True, rpo_objective=False,
                                         own_rpo_estimate="the full-dump interval: damage just before the next dump"))
"""The corruption objective's RPO (60 min) is met through PITR (database-corruption-pitr); the dump is the way back
when PITR cannot help, held to the RTO objective, and its RPO (in the plan's clock) to its own worst case."""

"""table-drop: the ledger table dropped on the primary; recreated from the newest dump with
`restore --table public.ledger --replace`. A dropped table is data deleted by mistake, as rows deleted are, and is
measured against that scenario's objectives.
"""

from __future__ import annotations

import signal
import time

from core.contracts import ExitCode, LogField
from tools.drill.harness import REPLACE, Drill, Scenario, utc
from tools.drill.report import ScenarioResult, Yardstick
from tools.drill.world import MISSED, DrillError

NAME = "table-drop"


def run(drill: Drill) -> ScenarioResult:
    """Drop the ledger table on the primary; recreate it from the latest dump in the EU replica bucket with
    `restore --table public.ledger --replace`, the app in maintenance mode meanwhile."""
    incident = time.monotonic()
    with drill.us.connect(drill.database) as connection:
        connection.execute("DROP TABLE ledger")
    dropped_at = utc()  # a write committed after this went into the restored table
    drill.progress(f"{NAME}: DROP TABLE ledger on the primary; backup_job restore --table public.ledger {REPLACE}")
    started = time.monotonic()
    # The app must not write while the table is recreated in the live database: its inserts would land in the
    # empty table the restore creates, and the restored rows and sequence would then collide with them.
    drill.signal_app("us", signal.SIGUSR1)
    try:
        log = drill.restore(drill.database, ["public.ledger"], REPLACE)
    finally:
        drill.signal_app("us", signal.SIGUSR2)
    if log[LogField.EXIT_CODE] != 0:
        raise DrillError(MISSED, f"backup_job restore failed (exit {log[LogField.EXIT_CODE]}): "
                                 f"{log.get(LogField.MESSAGE, '')}")
    restore_seconds = time.monotonic() - started
    rto = drill.wait_write(incident, lambda ack: ack.committed_at > dropped_at)
    explained, unexplained, rpo = drill.explain_dump_losses(drill.us, drill.database, incident, drill.backup, NAME)
    refused = drill.restore(drill.database, ["public.ledger"])
    check = drill.verify(drill.us)
    ok = check.ok and not unexplained and refused[LogField.EXIT_CODE] == ExitCode.USAGE
    return ScenarioResult(
        NAME, rto, len(explained) + len(unexplained), rpo, ok,
        f"ledger recreated from {log['object']} in {restore_seconds:.1f} s; {len(explained)} rows acknowledged "
        f"after the dump began are lost (explained by the dump time), {len(unexplained)} unexplained; a second "
        f"restore without {REPLACE} was refused (exit {refused[LogField.EXIT_CODE]})",
        {"restore": {k: log.get(k) for k in ("object", "bytes", "rows", "mode", LogField.DURATION_SECONDS)},
         "lostExplained": explained, "lostUnexplained": unexplained,
         "dumpStartedAt": drill.backup["startedAt"], "refusedWithoutReplace": {
             LogField.EXIT_CODE: refused[LogField.EXIT_CODE], LogField.MESSAGE: refused.get(LogField.MESSAGE, "")},
         "ledger": check.to_json()},
        steps=[drill.restore_step(restore_seconds, f"backup_job restore --table public.ledger {REPLACE}, the app in "
                                                   "maintenance mode")])


SCENARIO = Scenario(NAME, run, Yardstick("dataDeletion", restores_dump=True))

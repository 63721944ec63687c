"""data-deletion, the plan's scenario 4: rows deleted by mistake while the app keeps writing, merged back from
the newest dump with `restore --table public.ledger --merge-missing`; the app is never stopped.
"""

from __future__ import annotations

import math
import time
from typing import Any

from core.contracts import LogField
from tools.drill import deletion
from tools.drill.harness import MERGE_MISSING, Drill, Scenario, dump_began
from tools.drill.report import ScenarioResult, Yardstick
from tools.drill.world import MISSED, DrillError

NAME = "data-deletion"


def run(drill: Drill) -> ScenarioResult:
    """The plan's scenario 4: rows deleted by mistake (a DELETE with a wrong WHERE) while the app keeps writing,
    merged back from the newest dump in the EU replica bucket with `restore --table public.ledger
    --merge-missing`; the app is never stopped. The RTO runs from the DELETE's commit to the merge's end: the
    app served throughout, so it is how long the deleted rows were missing, not an outage."""
    began = dump_began(drill.backup)
    # The app must be serving when the mistake happens: every write failing from the DELETE on counts against
    # this scenario. A previous scenario can leave the client failing for a while after its own recovery was
    # measured - dns-loss ends when the drill's queries answer, but the client may still hold the negative
    # answer it got during the outage (0.2 s) - so wait for a write issued from now on to be acknowledged: the
    # client then has a working address, and whatever it asks later is answered by the restored zone.
    with drill.ledger.lock:
        issued = drill.ledger.issued
    if drill.wait_write(-math.inf, lambda ack: ack.seq > issued) is None:
        raise DrillError(MISSED, "the app acknowledged no write before the mistaken DELETE")
    # The mistake must hit rows written after the dump began, or it would not show what a merge cannot bring back.
    if drill.wait_write(-math.inf, lambda ack: ack.acked_wall > began and deletion.hit(ack.seq)) is None:
        raise DrillError(MISSED, "no write after the dump began that the mistaken DELETE would hit")
    with drill.us.connect(drill.database) as connection:
        deleted = deletion.mistaken_delete(connection)
    incident = time.monotonic()  # the DELETE has committed: the rows are gone from here
    drill.progress(f"{NAME}: a mistaken delete ({deletion.PREDICATE}) removed {len(deleted)} ledger rows while "
                   f"the app writes; backup_job restore --table public.ledger {MERGE_MISSING}")
    log = drill.restore(drill.database, ["public.ledger"], MERGE_MISSING)
    merged = time.monotonic()
    if log[LogField.EXIT_CODE] != 0:
        raise DrillError(MISSED, f"backup_job restore failed (exit {log[LogField.EXIT_CODE]}): "
                                 f"{log.get(LogField.MESSAGE, '')}")
    merge = merged_table(log, "public.ledger")
    again = drill.restore(drill.database, ["public.ledger"], MERGE_MISSING)
    again_restored = merged_table(again, "public.ledger")["restored"] if again[LogField.EXIT_CODE] == 0 else None
    with drill.us.connect(drill.database) as connection:
        after = deletion.ledger_rows(connection)
    with drill.ledger.lock:
        acks = {seq: a for seq, a in drill.ledger.acks.items() if a.database == drill.database}
        failed = [reason for moment, reason in drill.ledger.failures if incident < moment <= merged]
    written = sum(incident < a.acked_at <= merged for a in acks.values())
    account = deletion.account(deleted, after, int(merge["inDump"]), acks)
    explained, unexplained, rpo = drill.explain_dump_losses(drill.us, drill.database, incident, drill.backup,
                                                            NAME, removed=deleted)
    check = drill.verify(drill.us)
    before_dump = sum(seq in acks and acks[seq].acked_wall < began for seq in deleted)
    restored = int(merge["restored"])
    ok = (check.ok and account.ok and not unexplained and restored == len(account.dumped)
          and again_restored == 0 and written > 0 and not failed)
    rto = merged - incident
    return ScenarioResult(
        NAME, rto, len(explained) + len(unexplained), rpo, ok,
        f"a mistaken delete ({deletion.PREDICATE}) removed {len(deleted)} rows ({before_dump} "
        f"written before the dump began); {MERGE_MISSING} from {log['object']} restored {restored} of the "
        f"{len(account.dumped)} the dump held, {rto:.1f} s after the DELETE, while the app acknowledged {written} "
        f"writes and failed {len(failed)}; {len(explained)} deleted rows written after the dump began are lost "
        f"(explained by the dump time), {len(unexplained)} unexplained; a second merge restored {again_restored}",
        {"predicate": deletion.PREDICATE, "deletedBeforeDumpBegan": before_dump,
         "deletedAfterDumpBegan": len(deleted) - before_dump,
         "merge": {**{k: log.get(k) for k in ("object", "bytes", "mode", LogField.DURATION_SECONDS)},
                   **{k: merge.get(k) for k in ("restored", "skipped", "inDump")}, **account.to_json()},
         "rtoMeasuredAs": "the DELETE's commit to the end of the merge job (the app served throughout)",
         "writesDuringRecovery": {"acknowledged": written, "failed": len(failed), "reasons": sorted(set(failed))},
         "secondMerge": {LogField.EXIT_CODE: again[LogField.EXIT_CODE], "restored": again_restored,
                         LogField.MESSAGE: again.get(LogField.MESSAGE, "")},
         "lostExplained": explained, "lostUnexplained": unexplained,
         "lostAckedAt": {str(seq): acks[seq].acked_wall.isoformat() for seq in explained + unexplained},
         "dumpStartedAt": drill.backup["startedAt"], "ledger": check.to_json()},
        steps=[drill.restore_step(float(log[LogField.DURATION_SECONDS]),
                                  f"backup_job restore --table public.ledger {MERGE_MISSING}, the app writing")])


def merged_table(log: dict[str, Any], table: str) -> dict[str, Any]:
    """The entry of `table` in a merge's JSON line: `restored` (rows inserted), `skipped` and `inDump`."""
    for entry in log.get("restored") or []:
        if entry.get("table") == table:
            return entry
    raise DrillError(MISSED, f"backup_job restore --merge-missing reported no merge of {table}: {log.get('restored')}")


SCENARIO = Scenario(NAME, run, Yardstick("dataDeletion", restores_dump=True))

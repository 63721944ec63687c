"""regional-outage: the US cut off while writes run; recovered by docs/runbooks/failover.md: the EU replica
promoted, DNS switched to the promoted plan, the standby's backups unpaused and its first backup taken.

Runs last: the US does not come back.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tools.drill import plans
from tools.drill.harness import Drill, Scenario, utc
from tools.drill.report import ScenarioResult, Yardstick
from tools.drill.workload import lsn
from tools.drill.world import MISSED, DrillError

NAME = "regional-outage"


def run(drill: Drill) -> ScenarioResult:
    """Cut the US while writes run; follow docs/runbooks/failover.md: promote the EU replica, switch DNS to the
    promoted plan, unpause the standby backups and take the first EU backup."""
    drill.wait_streaming()
    drill.throughput["replicaLagSeconds"] = round(drill.lag.max_lag, 3)
    incident = time.monotonic()
    cut_wall = utc()
    drill.world.cut("us")
    drill.world.kill_site("us")
    drill.lag.stop()
    with drill.eu.connect(drill.database) as connection:
        row = connection.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
    assert row is not None
    replay = row[0]
    drill.progress(f"{NAME}: us cut and stopped; eu replica replayed up to {replay}")
    if not drill.plans.failover_diff.safe:
        raise DrillError(MISSED, "tools.failover's diff says the promotion is UNSAFE: the runbook stops here")
    drill.eu.promote()
    changes = switch_dns(drill)
    drill.progress(f"eu promoted; {len(changes)} DNS records switched to the promoted plan through the API")
    rto = drill.wait_write(incident, lambda ack: ack.site == "eu")
    # STAND-IN for Cloud Scheduler starting the Cloud Run job: once the promoted plan unpauses the standby's
    # full-backup schedule, the drill runs that job's backup_job command itself.
    if plans.schedule_paused(drill.plans.promoted, "db-backup-full"):
        raise DrillError(MISSED, "the promoted plan leaves the standby full backup paused")
    first_backup = drill.take_backup("eu", drill.plans.promoted, drill.eu, "first backup of the promoted standby")
    dns_after = drill.zone.answers(plans.dns_records(drill.plans.promoted))
    # The US comes back for the post-mortem (still cut off): which of its commits never reached the EU?
    drill.us.start()
    us_rows = drill.ledger_rows(drill.us)
    drill.us.stop("fast")
    eu_rows = drill.ledger_rows(drill.eu)
    lost = sorted(set(us_rows) - set(eu_rows))
    with drill.ledger.lock:
        acks = dict(drill.ledger.acks)
        for seq in lost:
            drill.ledger.explained_lost[seq] = f"{NAME}: committed in the US after the replica's last replayed WAL"
    replay_at = lsn(replay)
    def wal(seq: int) -> dict[str, Any]:
        return {"seq": seq, "lsnBefore": acks[seq].lsn_before, "lsnAfter": acks[seq].lsn_after}
    lost_acked = [wal(seq) for seq in lost if seq in acks]
    kept_acked = [wal(seq) for seq in sorted(acks) if seq in eu_rows and acks[seq].site == "us"]
    # A write whose commit ended at or before the replayed position must have reached the EU.
    unexplained = [seq for seq in lost if seq in acks and lsn(acks[seq].lsn_after) <= replay_at]
    rpo = max(0.0, cut_wall.timestamp() - min(us_rows[s] for s in lost).timestamp()) if lost else 0.0
    check = drill.verify(drill.eu)
    return ScenarioResult(
        NAME, rto, len(lost), rpo, check.ok and not unexplained,
        f"{len(lost)} rows committed in the US after the replica's last replayed WAL ({replay}) are lost "
        f"(asynchronous replication); the first write through {drill.zone.hostname} reached the EU "
        f"{rto if rto is None else round(rto, 2)} s after the cut; first EU backup {first_backup['object']}",
        {"replayLsn": replay, "lostSeqs": lost, "lostAcked": lost_acked,
         "keptAckedTail": kept_acked[-50:], "lostUnexplained": unexplained,
         "usRows": len(us_rows), "euRows": len(eu_rows), "dnsChanges": changes, "dnsAfterPromotion": dns_after,
         "firstEuBackup": first_backup["object"],
         "failoverDiff": [{"type": c.type, "name": c.name} for c in drill.plans.failover_diff.changed], "ledger": check.to_json()})


def switch_dns(drill: Drill) -> list[dict[str, Any]]:
    """STAND-IN for `pulumi up` of the promoted plan: PATCH each Cloudflare record whose content, TTL or proxied
    flag differs, through the API stand-in (the Pulumi CLI and provider are not available offline)."""
    current = {(r["name"], r["type"]): r for r in drill.zone.cloudflare.listing()}
    changes = []
    for record in plans.dns_records(drill.plans.promoted):
        existing = current.get((record["name"], record["type"]))
        wanted = {"content": record["content"], "ttl": record["ttl"], "proxied": record["proxied"]}
        if existing is None:
            raise DrillError(MISSED, f"{record['name']} is not in the zone: a promotion only updates records")
        if any(existing.get(k) != v for k, v in wanted.items()):
            drill.zone.call("PATCH", f"/{existing['id']}", json.dumps(wanted).encode())
            changes.append({"name": record["name"], "from": existing["content"], "to": record["content"]})
    return changes


SCENARIO = Scenario(NAME, run, Yardstick("regionalOutage", replica=True))

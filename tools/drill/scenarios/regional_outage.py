"""regional-outage: the US cut off while writes run; recovered by docs/runbooks/failover.md: the EU replica
promoted, then the operator's `python -m tools.failover promote --stack dr --yes` (the promoted plan applied by
the stand-in Pulumi CLI: DNS records, Vercel variables, schedules; the Vercel redeploy; the health report), and
the standby's first backup taken.

Leaves the US cut off and the EU serving: only `failback`, which runs after it, gives the US back.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from core.recovery_model import APPLY, DETECT, PROPAGATE, REDEPLOY, RESTORE
from tools.drill import plans, promotion
from tools.drill.dns import served_ttl
from tools.drill.harness import Drill, Scenario, utc
from tools.drill.report import MODEL_FACTOR, ScenarioResult, Step, Yardstick
from tools.drill.workload import MIN_CACHE_SECONDS, lsn
from tools.drill.world import ADDRESSES, MISSED, DrillError
from tools.failover_switch import EXIT_NO_HOSTNAMES, EXIT_PULUMI_FAILED, EXIT_REDEPLOY_FAILED, EXIT_UNHEALTHY

NAME = "regional-outage"
BASELINE_PERIODS = 10
"""Check periods within which every P0 check must pass before the cut (an incident still open would not page
again; the scenario before may have just redeployed the apps)."""
PAGE_SLACK_SECONDS = 10.0
FAILED_TERM = {EXIT_PULUMI_FAILED: APPLY, EXIT_NO_HOSTNAMES: APPLY, EXIT_REDEPLOY_FAILED: REDEPLOY,
               EXIT_UNHEALTHY: PROPAGATE}
"""The term a failed `tools.failover promote` stopped in, by its documented exit code (tools/failover.py)."""


def run(drill: Drill) -> ScenarioResult:
    """Cut the US while writes run; follow docs/runbooks/failover.md: promote the EU replica, run the failover
    command, take the first EU backup. Each step is timed by its term."""
    drill.wait_streaming()
    drill.throughput["replicaLagSeconds"] = round(drill.lag.max_lag, 3)
    scale = drill.options.time_scale
    if not drill.monitor.wait_passing("p0", timeout=BASELINE_PERIODS * max(c.period_seconds for c in
                                                                          drill.monitor.checks.values()) / scale):
        newest = {(p.check, p.region): p for p in drill.monitor.probes}
        failing = sorted(f"{check} from {region}: {p.detail}" for (check, region), p in newest.items() if not p.passed)
        raise DrillError(MISSED, f"the monitor's P0 uptime checks did not all pass before the cut ({'; '.join(failing)})")
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
    expected = drill.monitor.expected_detect_seconds(severity="p0")
    page = drill.monitor.wait_page("p0", since=incident, timeout=MODEL_FACTOR * expected / scale + PAGE_SLACK_SECONDS)
    if page is None:
        raise DrillError(MISSED, f"no P0 page within {MODEL_FACTOR:g}x the {expected:.0f} s the plan's alert settings "
                                 "imply (term detect)")
    detected = page.fired_at - incident
    steps = [Step(DETECT, f"cut -> P0 page ({page.policy}; the plan implies {drill.monitor.expected_detect(page)})",
                  detected, detected * scale, True)]
    drill.progress(f"{NAME}: P0 page {page.policy} {detected:.1f} s after the cut")
    if not drill.plans.failover_diff.safe:
        raise DrillError(MISSED, "tools.failover's diff says the promotion is UNSAFE: the runbook stops here")
    began = time.monotonic()
    drill.eu.promote()
    promoted_in = time.monotonic() - began
    steps.append(Step(RESTORE, "the EU replica promoted (pg_ctl promote)", promoted_in, promoted_in))
    # The EU app before the update, asked while the command starts (it plans for seconds before changing anything):
    # its database is writable now, but the deployment it serves still names the US.
    before: dict[str, Any] = {}
    asking = threading.Thread(target=lambda: before.update(drill.app_health("eu")), name="rfdr-eu-health", daemon=True)
    asking.start()
    drill.progress(f"eu promoted in {promoted_in:.1f} s; running {' '.join(promotion.COMMAND)}")
    done = promotion.promote(drill)
    asking.join(30)
    evidence: dict[str, Any] = {"replayLsn": replay, "writesThrough": drill.zone.hostname, "euAppHealth": {"afterPromotion": before},
                                "page": {**page.to_json(), "expectedSeconds": drill.monitor.expected_detect_seconds(page)},
                                "failoverDiff": [{"type": c.type, "name": c.name} for c in drill.plans.failover_diff.changed]}
    up = done.state.get("up")
    if up:
        steps.append(Step(APPLY, "pulumi up of the promoted plan (the stand-in CLI: plan, diff, apply)",
                          up["seconds"], up["seconds"]))
        evidence["applied"] = [{k: c[k] for k in ("type", "name", "inputs")} for c in up["changes"]]
    redeploys = drill.vercel.redeploys()
    if redeploys:
        evidence["redeploy"] = redeploys[-1].to_json()
        ready = redeploys[-1].ready_at
        if ready is not None:
            took = ready - redeploys[-1].requested_at
            steps.append(Step(REDEPLOY, f"Vercel deployment {redeploys[-1].id} requested -> READY (app restarted)",
                              took, took))
    decision = float(plans.objectives(drill.plans.dr)["decisionMinutes"]) * 60
    if done.failure is not None:
        term = FAILED_TERM.get(done.command.exit_code, APPLY)
        return ScenarioResult(NAME, None, 0, 0.0, False, "the failover command failed", evidence,
                              failure=f"term {term}: {done.failure}", steps=steps, commands=[done.command],
                              decision_seconds=decision)
    rto = drill.wait_write(incident, lambda ack: ack.site == "eu")
    evidence["euAppHealth"]["afterRedeploy"] = drill.app_health("eu")
    changed = done.dns_changed_at(drill.zone.hostname, drill.plans.promoted)
    answered = next((at for at, address in drill.writer.answers if address == ADDRESSES["eu"]
                     and changed is not None and at >= changed), None)
    cached = client_cache_seconds(drill)
    if changed is not None and answered is not None:
        waited = answered - changed
        steps.append(Step(PROPAGATE, f"{drill.zone.hostname}'s record changed -> the client's first answer naming "
                                       "the EU (its TTL compressed; the rest, such as a request timing out, real)",
                          waited, ttl_plan_seconds(waited, cached, scale), True))
    ready_at = redeploys[-1].ready_at if redeploys else None
    plan_clock = None if rto is None else critical_path(
        rto, detected, scale, None if changed is None else changed - incident,
        None if answered is None else answered - incident, None if ready_at is None else ready_at - incident, cached)
    # STAND-IN for Cloud Scheduler starting the Cloud Run job: once the update unpauses the standby's full-backup
    # schedule (the stand-in CLI keeps the paused flags), the drill runs that job's backup_job command itself.
    if done.state["schedules"].get("db-backup-full", True):
        raise DrillError(MISSED, "the update left the standby full backup paused")
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
    evidence.update({"lostSeqs": lost, "lostAcked": lost_acked, "keptAckedTail": kept_acked[-50:],
                     "lostUnexplained": unexplained, "usRows": len(us_rows), "euRows": len(eu_rows),
                     "dnsAfterPromotion": dns_after, "firstEuBackup": first_backup["object"], "ledger": check.to_json()})
    return ScenarioResult(
        NAME, rto, len(lost), rpo, check.ok and not unexplained,
        f"{len(lost)} rows committed in the US after the replica's last replayed WAL ({replay}) are lost "
        f"(asynchronous replication); {' '.join(promotion.COMMAND)} exited 0; the first write through "
        f"{drill.zone.hostname} reached the EU {rto if rto is None else round(rto, 2)} s after the cut; first EU "
        f"backup {first_backup['object']}", evidence, steps=steps, commands=[done.command], decision_seconds=decision,
        plan_clock_seconds=plan_clock)


def client_cache_seconds(drill: Drill) -> float:
    """How long, on the wall, the client keeps the answer for the name it writes through: the record's TTL in the
    promoted plan, compressed by the time scale (as tools/drill/workload.py caches it)."""
    record = next(r for r in plans.dns_records(drill.plans.promoted) if r["name"] == drill.zone.hostname)
    return max(served_ttl(record) / drill.options.time_scale, MIN_CACHE_SECONDS)


def ttl_plan_seconds(waited: float, cached: float, scale: float) -> float:
    """The plan-clock length of a wait for a DNS answer to change: the drill compresses only the TTL (the first
    `cached` wall seconds), so those count `scale` times and anything beyond them (a request timing out before the
    client asks again, the server reloading its zone) counts as it was measured."""
    return min(waited, cached) * scale + max(0.0, waited - cached)


def critical_path(written: float, detected: float, scale: float, changed: float | None, answered: float | None,
                  ready: float | None, cached: float) -> float:
    """The RTO in the plan's clock, from wall seconds after the cut: the first EU write at `written`, the P0 page
    at `detected` (a compressed wait), the record changed at `changed`, the client's first EU answer at `answered`
    (a TTL of `cached` wall seconds compressed, see ttl_plan_seconds) and the redeploy READY at `ready` (real
    work). The first write needs both the answer and the redeploy, which run side by side after the change: in the
    plan's clock the detection and the TTL take their plan length, and the write comes when the later of the two is
    done - nothing counted twice, and the real work between the steps (the tool's start-up, its `config set`)
    counted once, as measured."""
    shift = detected * (scale - 1)
    if changed is None or answered is None or ready is None:
        return shift + written
    gate = max(answered, ready)
    return shift + max(changed + ttl_plan_seconds(answered - changed, cached, scale), ready) + max(0.0, written - gate)


SCENARIO = Scenario(NAME, run, Yardstick("regionalOutage", replica=True))

"""database-corruption-pitr: the same damage as database-corruption, recovered the way the plan counts on: Supabase
point-in-time recovery to the last good second before the damage, with `python -m tools.pitr restore` against the
PITR stand-in (tools/drill/pitr.py), run in rfdr-net as an operator's machine would.

The operator waits until the archived WAL reaches the target (the window's latest point follows WAL-G's archive
interval, here archive_timeout: the model's pitr.rpoMinutes compressed by the time scale), then restores; the
command waits until the project is ACTIVE_HEALTHY. The apps keep their database URL and reconnect by themselves.
RTO runs from the damage to the first write acknowledged after the command returned, the WAL wait included; RPO is
from the target to the damage, measured against the model's PITR figure. Lost: every acknowledged write after the
target (a restore to a whole second keeps every commit at or before it). The EU replica cannot follow a primary
that went back in time: it is cloned again afterwards, for the scenarios that follow.
"""

from __future__ import annotations

import math
import os
import sys
import time

from core.recovery_model import RESTORE
from tools import pitr as command
from tools.drill import build, pitr
from tools.drill.harness import RECOVERY_TIMEOUT_SECONDS, Drill, Scenario
from tools.drill.report import CommandRun, ScenarioResult, Step, Yardstick
from tools.drill.scenarios.database_corruption import damage
from tools.drill.world import MISSED, DrillError, in_namespace, scrub
from tools.drill.world import run as run_process

NAME = "database-corruption-pitr"
POLL_SECONDS = 0.2
NOT_COMPARED = ("the model's restore term is a dump restore (size / restoreMbPerSecond); a PITR restore replays the "
                "WAL since the base backup and has no term of its own yet")


def wait_archived(drill: Drill, target: int, timeout: float) -> float:
    """Seconds until the stand-in's window reaches `target` (DrillError after `timeout`)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        earliest, latest = drill.supabase.window()
        if earliest is not None and latest is not None and latest >= target:
            return time.monotonic() - began
        time.sleep(POLL_SECONDS)
    raise DrillError(MISSED, f"the archived WAL did not reach {pitr.utc_text(target)} within {timeout:.0f} s")


def run_command(drill: Drill, target: int) -> CommandRun:
    """`python -m tools.pitr restore` to `target`, in rfdr-net, the token in its environment only."""
    settings = drill.supabase.settings
    argv = ["python", "-m", "tools.pitr", "restore", "--project-ref", settings.ref, "--to", pitr.utc_text(target),
            "--api-url", pitr.api_url(), "--timeout-seconds", f"{RECOVERY_TIMEOUT_SECONDS:g}",
            "--poll-seconds", f"{POLL_SECONDS:g}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE", "STORAGE_EMULATOR", "XDG_STATE"))}
    # The receipts go with the world (the command's default state folder, under XDG_STATE_HOME).
    env.update({command.TOKEN_VARIABLE: settings.token, "XDG_STATE_HOME": str(drill.world.folder / "state")})
    began = time.monotonic()
    result = run_process(in_namespace("net", [sys.executable, *argv[1:]]), timeout=RECOVERY_TIMEOUT_SECONDS + 30, env=env,
                 check=False, cwd=build.project_root())
    return CommandRun(tuple(argv), result.returncode, time.monotonic() - began,
                      scrub((result.stdout + result.stderr).strip()))


def run(drill: Drill) -> ScenarioResult:
    """Damage the app database; restore the cluster to the last good second before it through tools.pitr."""
    good = time.time()  # nothing is damaged yet: every commit up to here is good
    corrupted, incident = damage(drill)
    incident_wall = time.time() - (time.monotonic() - incident)
    target = math.floor(good)
    drill.progress(f"{NAME}: {corrupted} data files of {drill.database} overwritten; PITR to {pitr.utc_text(target)}")
    rpo_minutes = float((drill.supabase.settings.archive_timeout_seconds * drill.options.time_scale) / 60)
    waited = wait_archived(drill, target, RECOVERY_TIMEOUT_SECONDS)
    requested_wall = time.time()
    ran = run_command(drill, target)
    returned = time.monotonic()
    if ran.exit_code != 0:
        raise DrillError(MISSED, f"tools.pitr restore exited {ran.exit_code}: {ran.report.splitlines()[-1:]}")
    rto = drill.wait_write(incident, lambda ack: ack.acked_at > returned)
    explained, unexplained, kept_after = losses(drill, target, requested_wall)
    drill.eu.reclone_from(drill.us)
    drill.wait_streaming()
    check = drill.verify(drill.us)
    rpo = max(0.0, incident_wall - target)
    # The plan's archive cadence (archive_timeout, compressed) counts at its plan length; a wait beyond it is the
    # stand-in's upload backlog on this machine (a large restore just before writes a lot of WAL), counted as measured.
    cadence = min(waited, float(drill.supabase.settings.archive_timeout_seconds))
    steps = [Step(RESTORE, f"wait until the archived WAL reaches the target (archive_timeout "
                           f"{drill.supabase.settings.archive_timeout_seconds} s = {rpo_minutes:g} min, compressed)",
                  cadence, cadence * drill.options.time_scale, compressed=True, not_compared=NOT_COMPARED),
             *([Step(RESTORE, "the archive's upload backlog beyond its cadence (the stand-in's, as measured)",
                     waited - cadence, waited - cadence, not_compared=NOT_COMPARED)] if waited > cadence else []),
             Step(RESTORE, "tools.pitr restore: base backup + WAL replay to the target, until ACTIVE_HEALTHY",
                  ran.wall_seconds, ran.wall_seconds, not_compared=NOT_COMPARED)]
    restored = drill.supabase.restores[-1] if drill.supabase.restores else {}
    return ScenarioResult(
        NAME, rto, len(explained) + len(unexplained), rpo, check.ok and not unexplained and not kept_after,
        f"the cluster restored to {pitr.utc_text(target)} ({rpo:.1f} s before the damage) by tools.pitr in "
        f"{ran.wall_seconds:.1f} s after {waited:.1f} s waiting for the archive; {len(explained)} rows acknowledged "
        f"after the target are lost (explained by the target time), {len(unexplained)} unexplained; the EU replica "
        "cloned again",
        {"target": pitr.utc_text(target), "targetUnix": target, "damagedAt": pitr.utc_text(incident_wall),
         "corruptedFiles": corrupted, "archiveWaitSeconds": round(waited, 2), "standInRestore": restored,
         "archiveTimeoutSeconds": drill.supabase.settings.archive_timeout_seconds,
         "lostExplained": explained, "lostUnexplained": unexplained, "keptAfterTarget": kept_after,
         "ledger": check.to_json()},
        steps=steps, commands=[ran])


def losses(drill: Drill, target: int, requested: float) -> tuple[list[int], list[int], list[int]]:
    """(explained, unexplained, kept after the target): acknowledged writes missing after the restore - explained
    when acknowledged after the target - and rows present that were written after the target and before the
    restore was requested (none may be: the restore keeps nothing committed after its target)."""
    with drill.ledger.lock:
        acked = [a for a in drill.ledger.acks.values() if a.seq not in drill.ledger.explained_lost]
    rows = drill.ledger_rows(drill.us)
    lost = [a for a in acked if a.seq not in rows]
    explained = sorted(a.seq for a in lost if a.acked_wall.timestamp() > target)
    unexplained = sorted({a.seq for a in lost} - set(explained))
    with drill.ledger.lock:
        for seq in explained:
            drill.ledger.explained_lost[seq] = f"{NAME}: acknowledged after the PITR target {pitr.utc_text(target)}"
    kept_after = sorted(seq for seq, committed in rows.items() if target < committed.timestamp() < requested)
    return explained, unexplained, kept_after


SCENARIO = Scenario(NAME, run, Yardstick("databaseCorruption"))

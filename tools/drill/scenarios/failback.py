"""failback: after the regional outage, the US comes back and the operator runs docs/runbooks/failover.md's
"Fail back": `python -m tools.failback ...` from the internet's namespace, as the failover command runs
(tools/drill/promotion.py), reaching each database host through `ip netns exec rfdr-<site> runuser -u postgres
--` (the drill's `ssh postgres@<host>`). It rewinds (or rebuilds) the old US primary as a replica of the EU,
switches over with writes paused, flips the stack back with `tools.failover demote --stack dr --yes` (the
stand-in Pulumi CLI applies the unpromoted plan; the Vercel stand-in redeploys) and makes the EU a replica of
the US again - while the workload keeps writing through DNS.

Measured: when redundancy is back (the US streaming from the EU), how long writes paused (the last write the EU
acknowledged -> the first the US acknowledged), the total; 0 acknowledged rows lost; the EU streaming from the
US at the end; both apps healthy on the US database after the redeploy.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import sys
import time
from typing import Any

from core.contracts import LogField
from core.recovery_model import APPLY, PROPAGATE, REDEPLOY
from tools.drill import build, plans, postgres, pulumi_apply, pulumi_cli, vercel
from tools.drill.dns import served_ttl
from tools.drill.harness import Drill, Scenario
from tools.drill.promotion import KEPT_VARIABLES, MIN_TIMEOUT_SECONDS, OPERATOR_POLL_SECONDS, STACK, Promotion
from tools.drill.report import CommandRun, ScenarioResult, Step, Yardstick
from tools.drill.scenarios.regional_outage import critical_path, ttl_plan_seconds
from tools.drill.workload import MIN_CACHE_SECONDS
from tools.drill.world import ADDRESSES, MISSED, NAMESPACES, DrillError, in_namespace, in_site, run, scrub

NAME = "failback"
COMMAND = ("python", "-m", "tools.failback")
PHASE_LINE = re.compile(r"^(\S+)\s+([\d.]+) s  (.*)$")
DATABASE_WAIT_SECONDS = 600.0
"""The tool's timeout for its database waits (server start, catch-up, streaming): real work, never compressed; the
tool's own default (a standby started after a rewind replays from the last common checkpoint first)."""


def heal(drill: Drill) -> None:
    """The US region is back: its link up, and its app stand-in serving the current production deployment (the
    redeploy restarts only the apps that run)."""
    run(["ip", "-n", NAMESPACES["us"], "link", "set", "rfdr-us0", "up"])
    deployment = drill.vercel.production
    if deployment is None:
        raise DrillError(MISSED, "the Vercel stand-in has no production deployment for the US app to serve")
    path = drill.world.secret_file(f"deployment-{deployment.id}.json",
                                   json.dumps({"id": deployment.id, "env": deployment.variables}))
    drill.world.spawn("us", "app-us", [
        sys.executable, "-m", "tools.drill.app", "--site", "us", "--port", str(build.APP_PORT),
        "--deployment-file", str(path), "--url-variable", vercel.URL_VARIABLE, "--key-variable", vercel.KEY_VARIABLE,
        "--tls-port", str(build.APP_TLS_PORT), "--tls-cert", str(drill.tls.certificate), "--tls-key",
        str(drill.tls.key)], cwd=build.project_root())
    deadline = time.monotonic() + build.APP_START_TIMEOUT_SECONDS
    while in_site("net", build.probe, "us", "/deployment", timeout=30).get("deployment") != deployment.id:
        if time.monotonic() > deadline:
            raise DrillError(MISSED, "the US app stand-in did not come back after the US link")
        time.sleep(0.1)


def passfile(drill: Drill) -> str:
    """A libpq passfile both database hosts and the operator read (each would have its own in production)."""
    folder = drill.world.folder / "failback"
    folder.mkdir(mode=0o700, exist_ok=True)
    owner = pwd.getpwnam("postgres")
    os.chown(folder, owner.pw_uid, owner.pw_gid)
    path = folder / "pgpass"
    path.write_text(f"*:{postgres.PORT}:*:{postgres.ROLE}:{drill.us.password}\n")
    path.chmod(0o600)
    os.chown(path, owner.pw_uid, owner.pw_gid)
    return str(path)


def argv(drill: Drill, timeout: float) -> list[str]:
    """The runbook's command for the drill's two sites."""
    secret = passfile(drill)
    words: list[str] = [*COMMAND]
    for site in ("us", "eu"):
        cluster = drill.us if site == "us" else drill.eu
        words += [f"--{site}", f"host={cluster.address} port={postgres.PORT} user={postgres.ROLE} dbname=postgres "
                               f"passfile={secret}",
                  f"--{site}-data", str(cluster.data),
                  f"--{site}-command", f"ip netns exec {NAMESPACES[site]} runuser -u postgres --"]
    return [*words, "--bindir", str(postgres.bindir()), "--stack", STACK, "--timeout-seconds", f"{timeout:g}",
            "--interval-seconds", f"{OPERATOR_POLL_SECONDS / drill.options.time_scale:g}"]


def failback(drill: Drill, words: list[str], timeout: float) -> tuple[CommandRun, float]:
    """Run the command in rfdr-net with the stand-in Pulumi CLI (its state as the promotion left it); when it
    began (monotonic)."""
    folder = drill.world.folder / "pulumi"
    env = {k: v for k, v in os.environ.items() if k in KEPT_VARIABLES}
    env.update(pulumi_cli.install(folder, build.project_root(), pulumi_cli.load(folder)))
    env["PATH"] += os.pathsep + "/usr/sbin:/sbin"
    env.update({"HOME": str(folder / "home"), "SSL_CERT_FILE": str(drill.tls.ca),
                pulumi_apply.VERCEL_URL_VARIABLE: vercel.base_url(), pulumi_apply.VERCEL_TOKEN_VARIABLE: drill.vercel.token,
                pulumi_apply.CLOUDFLARE_TOKEN_VARIABLE: drill.zone.token})
    began = time.monotonic()
    result = run(in_namespace("net", [sys.executable, *words[1:]]), env=env, check=False, cwd=build.project_root(),
                 timeout=timeout * 8 + 300)
    printed = scrub("\n".join(part.strip() for part in (result.stdout, result.stderr) if part.strip()))
    return CommandRun(tuple(words), result.returncode, time.monotonic() - began, printed), began


def phases(report: str) -> list[tuple[str, float, str]]:
    """The command's timed phase lines: (phase, seconds, what)."""
    found = [PHASE_LINE.match(line) for line in report.splitlines()]
    return [(m[1], float(m[2]), m[3]) for m in found if m]


def run_scenario(drill: Drill) -> ScenarioResult:
    """Heal the US, run the failback command while the workload writes, measure it."""
    with drill.eu.connect() as connection:
        row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
    if row is None or row[0]:
        raise DrillError(MISSED, "the EU is not the primary: failback runs after regional-outage "
                                 "(--scenario regional-outage --scenario failback)")
    heal(drill)
    drill.progress(f"{NAME}: the US link and app are back; running {' '.join(COMMAND)}")
    scale = drill.options.time_scale
    timeout = max(float(plans.objectives(drill.plans.dr)["applyMinutes"]) * 60 / scale, MIN_TIMEOUT_SECONDS,
                  DATABASE_WAIT_SECONDS)
    redeploys_before = len(drill.vercel.redeploys())
    words = argv(drill, timeout)
    command, began = failback(drill, words, timeout)
    done = phases(command.report)
    seconds = {phase: took for phase, took, _ in done}
    evidence: dict[str, Any] = {"phases": [{"phase": p, "seconds": s, "what": w} for p, s, w in done]}
    steps = [drill.restore_step(took, f"{phase}: {what}") for phase, took, what in done
             if phase in ("rewind", "rebuild", "stream", "catch-up", "switchover")]
    if command.exit_code != 0:
        log = drill.us.home / "server.log"  # where the tool's pg_ctl start logs: why a server did not come up
        lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
        evidence["usServerLog"] = [scrub(line) for line in lines[-40:]]
        return ScenarioResult(NAME, None, 0, 0.0, False, "the failback command failed", evidence,
                              failure=f"{' '.join(COMMAND)} exited {command.exit_code}: "
                                      f"{(command.report.splitlines() or ['no message'])[-1]}",
                              steps=steps, commands=[command])
    state = pulumi_cli.load(drill.world.folder / "pulumi")
    up = state.get("up") or {}
    if up:
        steps.append(Step(APPLY, "pulumi up of the unpromoted plan (the stand-in CLI)", up["seconds"], up["seconds"]))
    redeploys = drill.vercel.redeploys()[redeploys_before:]
    ready = redeploys[-1].ready_at if redeploys else None
    if redeploys and ready is not None:
        steps.append(Step(REDEPLOY, f"Vercel deployment {redeploys[-1].id} requested -> READY",
                          ready - redeploys[-1].requested_at, ready - redeploys[-1].requested_at))
    written = drill.wait_write(began, lambda ack: ack.site == "us")
    record = next(r for r in plans.dns_records(drill.plans.dr) if r["name"] == drill.zone.hostname)
    cached = max(served_ttl(record) / scale, MIN_CACHE_SECONDS)
    changed = Promotion(command, state, None).dns_changed_at(drill.zone.hostname, drill.plans.dr)
    answered = next((at for at, address in drill.writer.answers if address == ADDRESSES["us"]
                     and changed is not None and at >= changed), None)
    if changed is not None and answered is not None:
        steps.append(Step(PROPAGATE, f"{drill.zone.hostname}'s record changed -> the client's first answer naming "
                                       "the US (its TTL compressed)", answered - changed,
                          ttl_plan_seconds(answered - changed, cached, scale), True))
    with drill.ledger.lock:
        acks = sorted(drill.ledger.acks.values(), key=lambda a: a.acked_at)
    first_us = next((a for a in acks if a.site == "us" and a.acked_at >= began), None)
    last_eu = max((a.acked_at for a in acks if a.site == "eu" and (first_us is None or a.acked_at < first_us.acked_at)),
                  default=None)
    paused = None if first_us is None or last_eu is None else first_us.acked_at - last_eu
    redundancy = sum(seconds.get(p, 0.0) for p in ("rewind", "rebuild", "stream"))
    with drill.us.connect() as connection:
        streaming = connection.execute("SELECT application_name, state FROM pg_stat_replication").fetchall()
        primary = connection.execute("SELECT NOT pg_is_in_recovery()").fetchone()
    check = drill.verify(drill.us)
    # The acknowledgements first, then the rows: a write acknowledged after the rows were read committed after
    # them too, and must not count as lost.
    with drill.ledger.lock:
        acknowledged = [a.seq for a in drill.ledger.acks.values() if a.seq not in drill.ledger.explained_lost]
    rows = drill.ledger_rows(drill.us)
    lost = sorted(seq for seq in acknowledged if seq not in rows)
    again, _ = failback(drill, words, timeout)  # the runbook's promise: a second run changes nothing
    health = {site: drill.app_health(site) for site in ("us", "eu")}
    serving = drill.vercel.production
    database = vercel.database_host(serving.variables.get(vercel.URL_VARIABLE)) if serving else None
    evidence.update({
        "redundancyBackSeconds": round(redundancy, 2), "writesPausedSeconds": None if paused is None else round(paused, 2),
        "totalSeconds": round(command.wall_seconds, 2), "switchoverSeconds": seconds.get("switchover"),
        "flipSeconds": seconds.get("flip"), "followSeconds": seconds.get("follow"),
        "usPrimary": bool(primary and primary[0]), "replicationOnUs": [{"application": a, "state": s} for a, s in streaming],
        "appHealthAfterRedeploy": health, "productionDatabaseHost": database, "lostAcked": lost, "ledger": check.to_json(),
        "redeploy": redeploys[-1].to_json() if redeploys else None,
        "secondRun": {LogField.EXIT_CODE: again.exit_code, "phases": [p for p, _, _ in phases(again.report)],
                      "report": again.report}})
    plan_clock = None if written is None else critical_path(
        written, 0.0, scale, None if changed is None else changed - began,
        None if answered is None else answered - began, None if ready is None else ready - began, cached)
    healthy = all(h.get("httpStatus") == 200 for h in health.values()) and database == ADDRESSES["us"]
    back = any(s == "streaming" for _, s in streaming)
    path = next(({"rewind": "rewound", "rebuild": "rebuilt"}[p] for p, _, _ in done if p in ("rewind", "rebuild")),
                "already a replica")
    settled = again.exit_code == 0 and not phases(again.report)
    return ScenarioResult(
        NAME, written, len(lost), 0.0,
        check.ok and not lost and back and healthy and settled and bool(primary and primary[0]),
        f"{' '.join(COMMAND)} exited 0: the US {path} and streaming {redundancy:.1f} s after it began, writes paused "
        f"{'?' if paused is None else f'{paused:.1f}'} s (last EU ack -> first US ack), the EU streaming from the US "
        f"after {command.wall_seconds:.1f} s; {len(lost)} acknowledged rows lost; apps "
        f"{'healthy' if healthy else 'NOT healthy'} on the US database; run again: exit {again.exit_code}, "
        f"{len(phases(again.report))} phases", evidence, steps=steps, commands=[command, again],
        plan_clock_seconds=plan_clock)


SCENARIO = Scenario(NAME, run_scenario, Yardstick("failback", replica=True))

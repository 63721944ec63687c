"""The offline plan as the pull-request gate: weakened configs and weakened code fail with the right rule."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from core.limits import OBJECTIVES, RETENTION_DAYS, SECONDS_PER_DAY
from core.recovery_model import TITLES
from core.schedule import max_interval_hours
from policies.raptorflow_policies import POLICIES
from tools.offline import ROOT

RULES = f"policies: {len(POLICIES)} rules"
DUMP_RETENTION_DAYS = RETENTION_DAYS["database-dumps"]


def test_the_repos_own_plans_pass_every_mandatory_rule(run_cli):
    result = run_cli("tools.plan", "prod", "dr")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert f"{RULES}, 0 violations (0 mandatory) in stack dr" in result.stdout
    assert "(0 mandatory) in stack prod" in result.stdout


def test_retention_of_seven_days_is_blocked(run_cli):
    result = run_cli("tools.plan", "prod", "--set", "raptorflow-dr:primary.databaseDumps.retentionDays=7")
    assert result.returncode == 1
    assert ("[mandatory] raptorflow-gcs-backup-bucket-retention  db-dumps-bucket: backup bucket db-dumps-bucket "
            f"(database-dumps) keeps objects 7 days; at least {DUMP_RETENTION_DAYS} days are required") in result.stdout
    assert ("[mandatory] raptorflow-gcs-backup-bucket-lifecycle  db-dumps-bucket: backup bucket db-dumps-bucket "
            f"(database-dumps) deletes objects at 7 days (lifecycle rule 0); its retention is {DUMP_RETENTION_DAYS} "
            "days") in result.stdout
    assert f"{RULES}, 3 violations (2 mandatory)" in result.stdout


def test_daily_dumps_without_pitr_miss_the_corruption_rpo(run_cli, prod_plan):
    result = run_cli("tools.plan", "prod", "--set", "raptorflow-dr:recovery.pitr.enabled=false")
    assert result.returncode == 1
    # Without PITR a corruption loses what the full dump's longest gap holds.
    lost = max_interval_hours(prod_plan.named("db-backup-full-schedule").inputs["schedule"]) * 60
    objective = OBJECTIVES["databaseCorruption"]["rpoMinutes"]
    assert ("[mandatory] raptorflow-objectives-rpo  recovery: database corruption: worst-case data loss "
            f"{lost:g} min exceeds the {objective} min objective") in result.stdout
    (row,) = [line for line in result.stdout.splitlines() if line.startswith(f"  {TITLES['databaseCorruption']} ")]
    assert "NOT MET" in row, row


def test_json_carries_violations_and_readiness(run_cli):
    result = run_cli("tools.plan", "dr", "--json", "--set", "raptorflow-dr:standby.replicas.userFiles.transfer.eventDriven=false")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    (violation,) = [v for v in document["policy"]["violations"] if v["enforcement"] == "mandatory"]
    assert violation["policy"] == "raptorflow-objectives-rpo" and violation["resource"] == "recovery"
    outage = next(a for a in document["readiness"] if a["scenario"] == "regionalOutage")
    # Without event-driven replication the user files are as old as the daily copy.
    assert (outage["met"], outage["rpoMinutes"], outage["targetRpoMinutes"]) == \
        (False, SECONDS_PER_DAY / 60, OBJECTIVES["regionalOutage"]["rpoMinutes"])


# Code changes a pull request might make, each breaking one rule; all are applied to one copy of the repo and both
# stacks are planned once (each rule names its own resource, so one run tells them apart).
WEAKENINGS = [
    ("prod", "components/backup_bucket.py", 'public_access_prevention="enforced"', 'public_access_prevention="inherited"',
     "raptorflow-gcs-bucket-enforce-public-access-prevention", "db-dumps-bucket"),
    ("dr", "components/failover_record.py", "ttl=host.ttl,", "ttl=3600,", "raptorflow-cloudflare-failover-ttl",
     "dns-api-record"),
    ("dr", "components/bucket_replica.py", '"delete_objects_unique_in_sink": False', '"delete_objects_unique_in_sink": True',
     "raptorflow-sts-transfer-never-deletes", "db-dumps-replica-transfer"),
]


def test_a_pull_request_that_weakens_the_code_is_blocked(tmp_path: Path):
    for item in ("components", "core", "tools", "policies", "__main__.py", "Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.dr.yaml"):
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, tmp_path / item, ignore=shutil.ignore_patterns("__pycache__", "venv"))
        else:
            shutil.copy(source, tmp_path / item)
    for _, path, old, new, _, _ in WEAKENINGS:
        target = tmp_path / path
        text = target.read_text()
        assert old in text, f"{path} no longer contains {old!r}: update this test"
        target.write_text(text.replace(old, new))
    result = subprocess.run([sys.executable, "-m", "tools.plan", "prod", "dr", "--json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    violations = {(plan["stack"], v["policy"], v["resource"]) for plan in json.loads(result.stdout)
                  for v in plan["policy"]["violations"] if v["enforcement"] == "mandatory"}
    for stack, _, _, _, rule, resource in WEAKENINGS:
        assert (stack, rule, resource) in violations, f"{rule} did not block the weakened {resource} in {stack}"

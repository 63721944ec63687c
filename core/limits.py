"""The plan's limits, shared by the program (config defaults and bounds) and the policy pack (thresholds).

Each figure is defined here once: a stack-config default, the bound its validation enforces and the
threshold the rule that polices it applies all read this module.
"""

from __future__ import annotations

from typing import Final, Literal

from core.contracts import DATABASE_DUMPS, USER_FILES, BackupKind, Command, run_kind

SECONDS_PER_DAY = 86_400
# IAM grants reach every Google service within about 2 minutes, sometimes 7 or more
# (https://cloud.google.com/iam/docs/access-change-propagation): the wait after a grant that a create checks at
# once and the provider does not retry (a CMEK bucket or secret, a transfer job).
IAM_PROPAGATION_SECONDS = 120

# Retention the plan requires, per backup role (the `backup-role` label of a backup bucket).
RETENTION_DAYS = {DATABASE_DUMPS.label: 30, USER_FILES.label: 90}

# Cloud Storage soft delete: 0 disables it, otherwise 7..90 days. Backups keep it on.
SOFT_DELETE_DAYS_MIN = 7
SOFT_DELETE_DAYS_MAX = 90

# Cloud KMS: the plan (and CIS 1.10) wants keys rotated at least every 90 days.
KMS_ROTATION_DAYS_MAX = 90

# DNS-only failover records: Cloudflare's minimum TTL is 60 s and the plan's ceiling 300 s.
DNS_TTL_MIN_SECONDS = 60
DNS_TTL_MAX_SECONDS = 300

# The plan's cadence: the longest a scheduled job may go between runs (full dump 02:00 and schema 02:30 UTC daily,
# a restore check monthly, the DNS zone export daily).
MAX_RUN_INTERVAL_HOURS = {
    run_kind(Command.BACKUP, BackupKind.FULL): 24, run_kind(Command.BACKUP, BackupKind.SCHEMA): 24,
    run_kind(Command.RESTORE_CHECK): 31 * 24, run_kind(Command.EXPORT_DNS): 24,
}

# Uptime checks: how often and how long each probe runs, from where (the plan's detection budget).
UPTIME_PERIOD_SECONDS: Final = 60
UPTIME_TIMEOUT_SECONDS = 10
UPTIME_REGIONS: Final = ("USA", "EUROPE", "ASIA_PACIFIC")

# Recovery objectives per scenario (the plan), and the figures the recovery model's estimates start from: the
# program's config defaults, and what the policy pack holds declarations to (objectives no looser, figures no
# more optimistic).
OBJECTIVES: dict[str, dict[str, int | None]] = {
    "databaseCorruption": {"rtoMinutes": 240, "rpoMinutes": 60},
    "regionalOutage": {"rtoMinutes": 120, "rpoMinutes": 15},
    "securityBreach": {"rtoMinutes": 60, "rpoMinutes": None},
    "dataDeletion": {"rtoMinutes": 360, "rpoMinutes": 1440},
}
DATABASE_SIZE_GB = 10
PITR_WINDOW_DAYS = 7
PITR_RPO_MINUTES = 2
DATABASE_REPLICA_LAG_MINUTES = 1
DATABASE_REPLICA_PROMOTE_MINUTES = 15
# Restore throughput of `backup_job restore` (download, sha256, pg_restore), database MB per second, by the kind of
# schema the stack declares (`recovery.schemaKind`). Measured on 2 cores:
# - application (many tables with indexes and foreign keys; text, JSON, numbers): `make drill` restored 1204 MB of
#   such a schema at 36.0 MB/s (2026-11-29), 20.2 and 15.7 MB/s (2026-12-02, the cores shared: docs/drills/
#   2026-12-02-141856.json and -182149.json) and 43.9 MB/s (2026-12-03, idle); `make bench`'s app dataset at
#   38-53 MB/s. The default is the slowest, rounded down; the readiness report takes the worst a drill measured
#   within the last quarter where the stack declares none (tools/readiness.py).
# - bulk (a few large tables of data that does not compress, such as stored files): `make bench`'s random dataset
#   at 99.4 and 88.5 MB/s at 200 and 600 MB (docs/benchmarks-2026-12-02-*.json); rounded down.
SchemaKind = Literal["application", "bulk"]
SCHEMA_KINDS: tuple[SchemaKind, ...] = ("application", "bulk")
SCHEMA_KIND: SchemaKind = "application"
RESTORE_MB_PER_SECOND_BY_SCHEMA_KIND = {"application": 15, "bulk": 85}
RESTORE_MB_PER_SECOND = RESTORE_MB_PER_SECOND_BY_SCHEMA_KIND[SCHEMA_KIND]
DECISION_MINUTES = 15
APPLY_MINUTES = 10
# Vercel applies env var changes only to new deployments: after the flip, `tools.failover promote --yes` redeploys
# the production deployment (a build of the same source, with the new variables) and waits until it is READY. Not
# measured for this app: no real promotion or drill has built it yet. Assumed 10 minutes for the build and its
# queue; Vercel fails a build that runs 45 (https://vercel.com/docs/limits#build-time-per-deployment). Replace it
# with the "deployment <id> READY after N s" line of the first real promotion's report.
VERCEL_REDEPLOY_MINUTES = 10
EVENT_DRIVEN_LAG_MINUTES = 10
# The plan drills its recovery quarterly (docs/drill.md): a quarter is at most 92 days, so a last drill older than
# this is overdue (the readiness table warns).
DRILL_CADENCE_DAYS = 92

ACCESS_LOG_RETENTION_DAYS = 365
"""Days a backup bucket's access logs are kept: the record of who read or wrote backups."""

BACKUP_AGE_MARGIN_HOURS = 6
"""An age alert fires this long after a schedule's longest gap passed without a success."""

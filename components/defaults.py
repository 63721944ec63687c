"""The disaster-recovery plan's values, in one place.

Every number the plan states (schedules, timeouts, objectives) is defined here
once and used as the default of a stack-config field; the stack files may
override them. The limits the policy pack also enforces (retention, soft
delete, key rotation, DNS TTLs) are defined in core/limits.py and used here.
"""

from typing import Final

from core import limits
from core.contracts import BUCKET_ROLES, BackupKind

PROJECT_NAME = "raptorflow-dr"

# Retention the plan requires, per bucket (config key -> backup role).
RETENTION_DAYS = {role.config_key: limits.RETENTION_DAYS[role.label] for role in BUCKET_ROLES}
# Cloud Storage's longest retention period: 3,155,760,000 seconds (100 years).
RETENTION_DAYS_MAX = 36_525

# Cloud Storage soft delete: 0 disables it, otherwise 7..90 days. Backups keep it on.
SOFT_DELETE_DAYS_MIN = limits.SOFT_DELETE_DAYS_MIN
SOFT_DELETE_DAYS_MAX = limits.SOFT_DELETE_DAYS_MAX
SOFT_DELETE_DAYS_DEFAULT = SOFT_DELETE_DAYS_MIN

# Access logs of a backup bucket are kept this long in its log bucket.
ACCESS_LOG_RETENTION_DAYS = limits.ACCESS_LOG_RETENTION_DAYS

# Cloud KMS: the plan (and CIS 1.10) wants keys rotated at least every 90 days.
KMS_ROTATION_DAYS_MAX = limits.KMS_ROTATION_DAYS_MAX
KMS_ROTATION_DAYS_DEFAULT = KMS_ROTATION_DAYS_MAX

# Storage Transfer Service: daily full sync starting at this UTC time.
TRANSFER_START_TIME_UTC = "02:00"

# Labels every labelled resource carries.
MANAGED_BY_LABEL = "pulumi"

# Config namespaces a stack file may use besides the project's own: provider settings.
PROVIDER_NAMESPACES = ("gcp", "cloudflare", "vercel")
# Config namespaces the operator tools keep in a stack file and the program never reads: `rotation`, the journal
# of `python -m tools.rotate` (tools/rotate_config.py), which stays after a rotation (its incident and last step).
TOOL_NAMESPACES = ("rotation",)

SECONDS_PER_DAY = limits.SECONDS_PER_DAY

# Storage Transfer Service wants a first day for a recurring schedule; a day in the
# past starts the daily runs at once. Fixed so that a plan never drifts with the calendar.
TRANSFER_SCHEDULE_START_DATE = {"year": 2026, "month": 1, "day": 1}

# Scheduled database backups (Cloud Run Job + Cloud Scheduler). The plan's times are UTC.
SCHEDULE_TIME_ZONE = "UTC"
BACKUP_SCHEDULES = {
    BackupKind.FULL: "0 2 * * *",  # full logical backup daily 02:00 UTC
    BackupKind.SCHEMA: "30 2 * * *",  # schema-only backup daily 02:30 UTC
}
RESTORE_CHECK_CRON = "0 4 1 * *"  # monthly restore test: the 1st, 04:00 UTC
BACKUP_OBJECT_PREFIX = "supabase"
BACKUP_TASK_TIMEOUT_SECONDS = 3_600
RESTORE_CHECK_TASK_TIMEOUT_SECONDS = 7_200
BACKUP_TASK_RETRIES = 1
BACKUP_MEMORY_MIB = 512
BACKUP_CPU: Final = "1"  # Final keeps the literal type the config field (a Literal) needs
# Cloud Run jobs: the CPU counts a task may have and the memory each allows, MiB
# (https://cloud.google.com/run/docs/configuring/jobs/cpu: 4 vCPU need 2-16 GiB, 6 need 4-24, 8 need 4-32).
CLOUD_RUN_MEMORY_MIB_BY_CPU = {
    "1": (512, 4_096),
    "2": (512, 8_192),
    "4": (2_048, 16_384),
    "6": (4_096, 24_576),
    "8": (4_096, 32_768),
}
SCHEDULER_RETRY_COUNT = 3
# The backup image's Artifact Registry repository in each site's region (components/image_registry.py): its id,
# and its cleanup policies - untagged versions go after 30 days, the 10 most recent versions always stay.
IMAGE_REPOSITORY_ID = "raptorflow"
# The wait after a grant a create checks at once (deploy.iamPropagationSeconds): core/limits says why.
IAM_PROPAGATION_SECONDS = limits.IAM_PROPAGATION_SECONDS
IMAGE_UNTAGGED_DELETE_DAYS = 30
IMAGE_KEEP_VERSIONS = 10
SCHEDULER_ATTEMPT_DEADLINE_SECONDS = 180

# Traffic failover (Cloudflare). DNS-only records: Cloudflare's minimum TTL is 60 s and the
# plan's ceiling 300 s; a failover record should move fast, so the default is the minimum.
DNS_TTL_MIN_SECONDS = limits.DNS_TTL_MIN_SECONDS
DNS_TTL_MAX_SECONDS = limits.DNS_TTL_MAX_SECONDS
DNS_TTL_DEFAULT_SECONDS = DNS_TTL_MIN_SECONDS
HEALTH_PATH = "/health"
LB_MONITOR_INTERVAL_SECONDS = 60
LB_MONITOR_RETRIES = 2
LB_MONITOR_TIMEOUT_SECONDS = 5

# Monitoring (the severities and each alert's figures are in core/alerts.py).
UPTIME_PERIOD_SECONDS: Final = limits.UPTIME_PERIOD_SECONDS
UPTIME_TIMEOUT_SECONDS = limits.UPTIME_TIMEOUT_SECONDS
UPTIME_REGIONS: Final = limits.UPTIME_REGIONS
BACKUP_AGE_MARGIN_HOURS = limits.BACKUP_AGE_MARGIN_HOURS
RUNBOOK_BASE_URL = "https://github.com/raptorflow/raptorflow-dr/blob/main/docs/runbooks"

# Recovery objectives per scenario (the plan), and the figures estimates start from (core/limits.py).
OBJECTIVES: dict[str, dict[str, int | None]] = limits.OBJECTIVES
PITR_WINDOW_DAYS = limits.PITR_WINDOW_DAYS
PITR_RPO_MINUTES = limits.PITR_RPO_MINUTES
DATABASE_REPLICA_LAG_MINUTES = limits.DATABASE_REPLICA_LAG_MINUTES
DATABASE_REPLICA_PROMOTE_MINUTES = limits.DATABASE_REPLICA_PROMOTE_MINUTES
DATABASE_SIZE_GB = limits.DATABASE_SIZE_GB
RESTORE_MB_PER_SECOND = limits.RESTORE_MB_PER_SECOND
SCHEMA_KIND = limits.SCHEMA_KIND
DECISION_MINUTES = limits.DECISION_MINUTES
APPLY_MINUTES = limits.APPLY_MINUTES
EVENT_DRIVEN_LAG_MINUTES = limits.EVENT_DRIVEN_LAG_MINUTES

# Configuration backups.
DNS_EXPORT_CRON = "0 3 * * *"  # daily Cloudflare zone export, 03:00 UTC
DNS_EXPORT_PREFIX = "cloudflare"

"""Every backup-job command runs as often as the plan says: scheduled, and never further apart than its limit."""

from __future__ import annotations

from pulumi_policy import Severity

from core.limits import MAX_RUN_INTERVAL_HOURS
from core.schedule import max_interval_hours

from .._base import (
    KIND_OPTION,
    RUN_JOB,
    SCHEDULER_JOB,
    BackupKind,
    Command,
    Weakening,
    get,
    job_argv,
    job_kind,
    of_type,
    run_job_uri,
    run_jobs_scheduled,
    run_kind,
    scheduled_job,
    stack_policy,
)

FULL_DUMP = run_kind(Command.BACKUP, BackupKind.FULL)
RESTORE_CHECK = run_kind(Command.RESTORE_CHECK)
REQUIRED_WITH_FULL = (run_kind(Command.BACKUP, BackupKind.SCHEMA), RESTORE_CHECK)
"""What a stack that takes full dumps also runs, as the plan says: a schema dump, and the monthly restore check
of a full backup."""

CONFIG = {
    "maxRunIntervalHours": {
        "type": "object",
        "description": "Longest time between two runs, in hours, per backup-job command "
                       f"({', '.join(f'`{kind}`' for kind in MAX_RUN_INTERVAL_HOURS)}).",
        "default": MAX_RUN_INTERVAL_HOURS,
    }
}


def _check(args, violate):
    limits = {**MAX_RUN_INTERVAL_HOURS, **(args.get_config().get("maxRunIntervalHours") or {})}
    scheduled = run_jobs_scheduled(args.resources)
    kinds = {job_kind(j.props) for j in of_type(args.resources, RUN_JOB)}
    if FULL_DUMP in kinds:
        for needed in sorted(set(REQUIRED_WITH_FULL) - kinds):
            violate(f"the stack backs up its database but runs no {needed} job")
    for schedule in of_type(args.resources, SCHEDULER_JOB):
        uri = str(get(schedule.props, "httpTarget.uri") or "")
        target = scheduled_job(schedule.props)
        if get(schedule.props, "httpTarget.body"):
            violate(f"scheduler job {schedule.props.get('name')} sends a body: it can override the job's command "
                    "line and environment", schedule.urn)
        wanted = run_job_uri(str(schedule.props.get("project")), str(schedule.props.get("region")), str(target))
        if target is not None and uri != wanted:
            violate(f"scheduler job {schedule.props.get('name')} calls {uri}, not its own project's job ({wanted})",
                    schedule.urn)
        if target is not None and target not in scheduled:
            violate(f"scheduler job {schedule.props.get('name')} starts {target}, which the stack does not define",
                    schedule.urn)
    for job in of_type(args.resources, RUN_JOB):
        kind, name = job_kind(job.props), job.props.get("name")
        if kind not in limits:
            continue
        schedules = scheduled.get(name) or []
        if not schedules:
            violate(f"{kind} job {name} is started by no scheduler job; it must run at least every "
                    f"{limits[kind]:g} h", job.urn)
        for schedule in schedules:
            cron = str(schedule.props.get("schedule") or "")
            try:
                hours = max_interval_hours(cron)
            except (ValueError, IndexError):
                violate(f"scheduler job {schedule.props.get('name')} has no schedule this rule can read ({cron!r})",
                        schedule.urn)
                continue
            if hours > limits[kind]:
                violate(f"{kind} job {name} runs as far apart as {hours:g} h ({cron}); at most {limits[kind]:g} h "
                        "is allowed", schedule.urn)


POLICY = stack_policy(
    "raptorflow-scheduler-backup-cadence",
    "Each backup-job command is scheduled at the plan's cadence: full and schema dumps and the DNS export at least "
    "daily, the restore check at least monthly.",
    "DR plan schedules",
    Severity.HIGH,
    "keep the plan's crons (databaseBackup.schedules, restoreCheck, dnsExport) or shorten them",
    _check,
    config=CONFIG,
)

WEAKENINGS = [
    Weakening("prod", f"{FULL_DUMP} job db-backup-full runs as far apart as 8760 h (0 2 1 1 *); at most "
              f"{MAX_RUN_INTERVAL_HOURS[FULL_DUMP]:g} h is allowed", "db-backup-full-schedule", {"schedule": "0 2 1 1 *"}),
    Weakening("prod", f"{FULL_DUMP} job db-backup-full is started by no scheduler job; it must run at least every "
              f"{MAX_RUN_INTERVAL_HOURS[FULL_DUMP]:g} h", removed=("db-backup-full-schedule",)),
    Weakening("dr", f"{RESTORE_CHECK} job db-backup-restore-check runs as far apart as 1488 h (0 4 1 */2 *); at most "
              f"{MAX_RUN_INTERVAL_HOURS[RESTORE_CHECK]:g} h is allowed", "db-backup-restore-check-schedule",
              {"schedule": "0 4 1 */2 *"}),
    Weakening("dr", "scheduler job db-backup-dns-export starts db-backup-dns-export, which the stack does not define",
              removed=("db-backup-dns-export",)),
    Weakening("prod", f"the stack backs up its database but runs no {RESTORE_CHECK} job", "db-backup-restore-check",
              {"template.template.containers.0.args": job_argv(Command.RESTORE_CHECK, BackupKind.SCHEMA)}),
    # The last --kind wins, as in argparse: the schema job takes full dumps.
    Weakening("prod", f"the stack backs up its database but runs no {REQUIRED_WITH_FULL[0]} job", "db-backup-schema",
              {"template.template.containers.0.args": [*job_argv(Command.BACKUP, BackupKind.SCHEMA), KIND_OPTION,
                                                       BackupKind.FULL.value]}),
    Weakening("prod", "scheduler job db-backup-full sends a body: it can override the job's command line and "
              "environment", "db-backup-full-schedule", {"httpTarget.body": "eyJvdmVycmlkZXMiOnt9fQ=="}),
]

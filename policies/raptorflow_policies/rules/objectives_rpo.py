"""What is provisioned meets every declared recovery point objective (the recovery model in core/).

The model finds the scheduled full backup by the labels its Cloud Run job carries (`job-command`,
`backup-kind`); the rule first holds those labels to what the job's command line runs, so a relabelled job
cannot make the estimates rosier."""

from __future__ import annotations

from pulumi_policy import Severity

from core.limits import OBJECTIVES
from core.recovery_model import TITLES, assess

from .._base import (
    DELETE,
    KIND_OPTION,
    RECOVERY,
    RUN_JOB,
    SCHEDULED_COMMANDS,
    BackupKind,
    Label,
    Weakening,
    job_command,
    job_option,
    labels,
    of_type,
    run_kind,
    stack_policy,
)


def _minutes(value) -> str:
    return "unbounded" if value is None else f"{value:g} min"


def _labels_say_what_runs(resources, violate) -> None:
    for job in of_type(resources, RUN_JOB):
        command, said = job_command(job.props), labels(job.props)
        if command not in SCHEDULED_COMMANDS and Label.JOB_COMMAND not in said:
            continue
        kind = job_option(job.props, KIND_OPTION)
        runs = {Label.JOB_COMMAND: command, **({Label.BACKUP_KIND: kind} if kind else {})}
        claims = {label: said[label] for label in (Label.JOB_COMMAND, Label.BACKUP_KIND) if label in said}
        if claims != runs:
            shown = ", ".join(f"{label}={value}" for label, value in claims.items()) or "nothing"
            violate(f"job {job.props.get('name')} runs {run_kind(str(command), kind)} but its labels say {shown}: "
                    "the recovery model reads the labels", job.urn)


def _check(args, violate):
    _labels_say_what_runs(args.resources, violate)
    declaration = next((r for r in args.resources if r.resource_type == RECOVERY), None)
    for assessment in assess((r.resource_type, r.props) for r in args.resources):
        if not assessment.rpo_met:
            assert assessment.rpo is not None  # an assessment without an RPO estimate always meets its RPO
            violate(f"{TITLES[assessment.scenario]}: worst-case data loss {_minutes(assessment.rpo.minutes)} exceeds "
                    f"the {_minutes(assessment.target_rpo_minutes)} objective ({assessment.rpo.derivation})",
                    declaration.urn if declaration else None)


POLICY = stack_policy(
    "raptorflow-objectives-rpo",
    "The provisioned schedules and replication meet each declared RPO.",
    "DR plan objectives",
    Severity.HIGH,
    "shorten the schedule, add event-driven replication, or declare the capability (PITR, a replica) you have; keep "
    "the job labels ScheduledDatabaseBackup sets",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "database corruption: worst-case data loss 1440 min exceeds the "
              f"{OBJECTIVES['databaseCorruption']['rpoMinutes']} min objective (database: "
              "full dump every 24 h (0 2 * * *); add an hourly schedule or declare PITR)",
              "recovery", {"pitr.enabled": False}),
    Weakening("dr", "regional outage: worst-case data loss 1440 min exceeds the "
              f"{OBJECTIVES['regionalOutage']['rpoMinutes']} min objective (user files: "
              "user-files copied every 24 h; add event-driven replication)",
              removed=("user-files-replica-replication",)),
    Weakening("prod", f"job db-backup-schema runs backup schema but its labels say {Label.JOB_COMMAND}=backup, "
              f"{Label.BACKUP_KIND}=full: the recovery model reads the labels", "db-backup-schema",
              {f"labels.{Label.BACKUP_KIND}": BackupKind.FULL.value}),
    Weakening("dr", f"job db-backup-full runs backup full but its labels say {Label.JOB_COMMAND}=backup: the "
              "recovery model reads the labels", "db-backup-full", {f"labels.{Label.BACKUP_KIND}": DELETE}),
]

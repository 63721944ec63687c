"""Scheduled jobs run: none is paused, but a standby's own database backups until it is promoted."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import ResourceType, Weakening, paused_until_promoted, run_jobs_scheduled, stack_policy


def _check(args, violate):
    waiting = paused_until_promoted(args.resources)
    for job, schedules in run_jobs_scheduled(args.resources).items():
        for schedule in schedules:
            if schedule.props.get("paused") is True and job not in waiting:
                violate(f"scheduler job {schedule.props.get('name') or schedule.name} is paused: {job} never runs",
                        schedule.urn)


POLICY = stack_policy(
    "raptorflow-scheduler-jobs-running",
    "No scheduled job is paused, except a standby's own database backups while it is not promoted (documented: "
    "the primary's backups count until failover, and promotion resumes them).",
    "DR plan schedules",
    Severity.HIGH,
    "leave `paused` to the program: it pauses only a standby's backups, until promotion",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "scheduler job db-backup-full is paused: db-backup-full never runs", "db-backup-full-schedule",
              {"paused": True}),
    Weakening("dr", "scheduler job db-backup-dns-export is paused: db-backup-dns-export never runs",
              "db-backup-dns-export-schedule", {"paused": True}),
    Weakening("prod", "scheduler job db-backup-full is paused: db-backup-full never runs", "db-backup-full-schedule",
              {"paused": True},
              added=((ResourceType.FAILOVER_RECORD, "looks-like-a-standby",
                      {"fqdn": "api-us.raptorflow.app", "primary": "app-us.raptorflow.app",
                       "standby": "api-us.raptorflow.app", "activeSite": "primary"}),)),
]

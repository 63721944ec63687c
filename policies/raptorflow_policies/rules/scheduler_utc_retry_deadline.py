"""Scheduled jobs run in UTC (the plan's times), with a retry policy and an attempt deadline."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import DELETE, SCHEDULER_JOB, Weakening, get, resource_policy

UTC = ("UTC", "Etc/UTC")


def _check(args, violate):
    if args.resource_type != SCHEDULER_JOB:
        return
    if args.props.get("timeZone") not in UTC:
        violate(f"scheduler job {args.name} runs in {args.props.get('timeZone', 'the default time zone')}, not UTC")
    if int(get(args.props, "retryConfig.retryCount", 0) or 0) < 1:
        violate(f"scheduler job {args.name} has no retry policy")
    if not args.props.get("attemptDeadline"):
        violate(f"scheduler job {args.name} has no attempt deadline")


POLICY = resource_policy(
    "raptorflow-scheduler-utc-retry-deadline",
    "Scheduled jobs run in UTC with a retry policy and an attempt deadline.",
    "DR plan (times are UTC)",
    Severity.MEDIUM,
    'set time_zone="UTC", retry_config.retry_count >= 1 and attempt_deadline',
    _check,
)

WEAKENINGS = [
    Weakening("prod", "scheduler job db-backup-full-schedule runs in America/New_York, not UTC",
              "db-backup-full-schedule", {"timeZone": "America/New_York"}),
    Weakening("prod", "scheduler job db-backup-schema-schedule has no retry policy",
              "db-backup-schema-schedule", {"retryConfig": DELETE}),
    Weakening("prod", "scheduler job db-backup-schema-schedule has no attempt deadline",
              "db-backup-schema-schedule", {"attemptDeadline": DELETE}),
]

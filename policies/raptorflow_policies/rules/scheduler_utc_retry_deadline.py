"""Scheduled jobs run in UTC (the plan's times), with a retry policy and an attempt deadline."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import DELETE, SCHEDULER_JOB, Weakening, duration_seconds, get, number, resource_policy

UTC = ("UTC", "Etc/UTC")
DEADLINE_SECONDS = (15, 1800)
MAX_RETRIES = 5
"""Cloud Scheduler's largest retryCount (RetryConfig reference)."""
"""Cloud Scheduler's range for an HTTP target's attempt deadline (Job.attemptDeadline reference)."""


def _check(args, violate):
    if args.resource_type != SCHEDULER_JOB:
        return
    if args.props.get("timeZone") not in UTC:
        violate(f"scheduler job {args.name} runs in {args.props.get('timeZone', 'the default time zone')}, not UTC")
    retries = number(get(args.props, "retryConfig.retryCount")) or 0.0
    if retries < 1:
        violate(f"scheduler job {args.name} has no retry policy")
    elif retries != int(retries) or retries > MAX_RETRIES:
        violate(f"scheduler job {args.name} retries {retries:g} times; Cloud Scheduler takes a whole number up to "
                f"{MAX_RETRIES}")
    deadline = duration_seconds(args.props.get("attemptDeadline"))
    if deadline is None:
        violate(f"scheduler job {args.name} has no attempt deadline")
    elif not DEADLINE_SECONDS[0] <= deadline <= DEADLINE_SECONDS[1]:
        violate(f"scheduler job {args.name} has an attempt deadline of {deadline:g} s; HTTP targets take "
                f"{DEADLINE_SECONDS[0]}-{DEADLINE_SECONDS[1]} s")


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
    Weakening("prod", "scheduler job db-backup-full-schedule has an attempt deadline of 0 s; HTTP targets take "
              "15-1800 s", "db-backup-full-schedule", {"attemptDeadline": "0s"}),
]

"""Transfer jobs are enabled, scheduled at least daily from a date that has come, and never overwrite: a copy that
stops, or replaces what it holds, is no backup."""

from __future__ import annotations

import datetime

from pulumi_policy import Severity

from .._base import SECONDS_PER_DAY, TRANSFER_JOB, Weakening, duration_seconds, get, number, resource_policy

SAFE_OVERWRITE = ("NEVER", "DIFFERENT")
REPEAT_SECONDS = (3600, SECONDS_PER_DAY)
"""Storage Transfer's shortest repeat (one hour) and the plan's longest (a day)."""


def _valid_past_date(start) -> bool:
    try:
        day = datetime.date(int(start.get("year")), int(start.get("month")), int(start.get("day")))
    except (TypeError, ValueError, AttributeError):
        return False
    return day <= datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=1)


def _check(args, violate):
    if args.resource_type != TRANSFER_JOB:
        return
    repeat = duration_seconds(get(args.props, "schedule.repeatInterval"))
    if repeat is not None and not REPEAT_SECONDS[0] <= repeat <= REPEAT_SECONDS[1]:
        violate(f"transfer job {args.name} repeats every {repeat:g} s; the plan copies at least daily and Storage "
                "Transfer repeats at most hourly")
    start = get(args.props, "schedule.scheduleStartDate") or {}
    if "schedule" in args.props and not _valid_past_date(start):
        violate(f"transfer job {args.name} starts on {start.get('year')}-{start.get('month')}-{start.get('day')}, "
                "which is no date that has come")
    at = get(args.props, "schedule.startTimeOfDay") or {}
    ranges = {"hours": 23, "minutes": 59, "seconds": 59, "nanos": 999_999_999}
    values = {k: number(at.get(k, 0)) for k in ranges}
    if any(v is None or v != int(v) or not 0 <= v <= top for v, top in zip(values.values(), ranges.values(), strict=True)):
        violate(f"transfer job {args.name} starts at {at}, which is no time of day")
    if get(args.props, "schedule.scheduleEndDate"):
        violate(f"transfer job {args.name} stops copying on its scheduleEndDate")
    for spec in ("transferSpec", "replicationSpec"):
        if get(args.props, f"{spec}.objectConditions"):
            violate(f"transfer job {args.name} copies only the objects its {spec}.objectConditions select")
    status = args.props.get("status", "ENABLED")
    if status != "ENABLED":
        violate(f"transfer job {args.name} is {status}: nothing is copied")
    for spec in ("transferSpec", "replicationSpec"):
        if spec not in args.props:
            continue
        overwrite = get(args.props, f"{spec}.transferOptions.overwriteWhen")
        if overwrite not in SAFE_OVERWRITE:
            violate(f"transfer job {args.name} overwrites objects in the sink ({spec}.transferOptions.overwriteWhen "
                    f"is {overwrite or 'unset'}; {' or '.join(SAFE_OVERWRITE)} keep what was copied)")


POLICY = resource_policy(
    "raptorflow-sts-transfer-enabled",
    "Transfer jobs are ENABLED, repeat between hourly and daily from a start date that has come, and overwriteWhen "
    "is NEVER or DIFFERENT (never ALWAYS, never unset).",
    "Storage Transfer TransferOptions reference",
    Severity.HIGH,
    'set status="ENABLED" and transfer_options.overwrite_when="NEVER"',
    _check,
)

WEAKENINGS = [
    Weakening("dr", "transfer job db-dumps-replica-transfer is DISABLED: nothing is copied", "db-dumps-replica-transfer",
              {"status": "DISABLED"}),
    Weakening("dr", "transfer job user-files-replica-replication is DISABLED: nothing is copied",
              "user-files-replica-replication", {"status": "DISABLED"}),
    Weakening("dr", "transfer job db-dumps-replica-replication overwrites objects in the sink "
              "(replicationSpec.transferOptions.overwriteWhen is ALWAYS; NEVER or DIFFERENT keep what was copied)",
              "db-dumps-replica-replication", {"replicationSpec.transferOptions.overwriteWhen": "ALWAYS"}),
    Weakening("dr", "transfer job db-dumps-replica-transfer repeats every 864000 s; the plan copies at least daily and "
              "Storage Transfer repeats at most hourly", "db-dumps-replica-transfer", {"schedule.repeatInterval": "864000s"}),
    Weakening("dr", "transfer job user-files-replica-transfer starts on 20260-1-1, which is no date that has come",
              "user-files-replica-transfer", {"schedule.scheduleStartDate": {"year": 20260, "month": 1, "day": 1}}),
    Weakening("dr", "transfer job db-dumps-replica-transfer copies only the objects its transferSpec.objectConditions "
              "select", "db-dumps-replica-transfer", {"transferSpec.objectConditions": {"includePrefixes": ["x/"]}}),
]

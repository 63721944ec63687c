"""Transfer jobs are enabled and never overwrite: a copy that stops, or replaces what it holds, is no backup."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import TRANSFER_JOB, Weakening, get, resource_policy

SAFE_OVERWRITE = ("NEVER", "DIFFERENT")


def _check(args, violate):
    if args.resource_type != TRANSFER_JOB:
        return
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
    "Transfer jobs are ENABLED, and overwriteWhen is NEVER or DIFFERENT (never ALWAYS, never unset).",
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
]

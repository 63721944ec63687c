"""Storage Transfer jobs never delete: a backup copy is never a mirror."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import TRANSFER_JOB, Weakening, get, resource_policy


def _check(args, violate):
    if args.resource_type != TRANSFER_JOB:
        return
    for spec in ("transferSpec", "replicationSpec"):
        options = get(args.props, f"{spec}.transferOptions") or {}
        if spec in args.props and options.get("deleteObjectsUniqueInSink") is not False:
            violate(f"transfer job {args.name} may delete objects in the sink that the source no longer has "
                    "(deleteObjectsUniqueInSink), turning the backup into a mirror of deletions")
        if spec in args.props and options.get("deleteObjectsFromSourceAfterTransfer") is not False:
            violate(f"transfer job {args.name} may delete the source after copying "
                    "(deleteObjectsFromSourceAfterTransfer)")


POLICY = resource_policy(
    "raptorflow-sts-transfer-never-deletes",
    "Transfer jobs never delete: deleteObjectsUniqueInSink and deleteObjectsFromSourceAfterTransfer are false.",
    "GCS TransferOptions reference",
    Severity.CRITICAL,
    "set both delete options to False explicitly in transfer_options",
    _check,
)

WEAKENINGS = [
    Weakening("dr", "transfer job db-dumps-replica-transfer may delete objects in the sink that the source no longer "
              "has (deleteObjectsUniqueInSink), turning the backup into a mirror of deletions",
              "db-dumps-replica-transfer", {"transferSpec.transferOptions.deleteObjectsUniqueInSink": True}),
    Weakening("dr", "transfer job user-files-replica-replication may delete the source after copying "
              "(deleteObjectsFromSourceAfterTransfer)", "user-files-replica-replication",
              {"replicationSpec.transferOptions.deleteObjectsFromSourceAfterTransfer": True}),
]

"""Creates that check a grant at once wait for the grant to propagate (advisory: it makes a first deploy or a
rebuild reliable, and weakens no protection when missing)."""

from __future__ import annotations

from pulumi_policy import Severity

from core.limits import IAM_PROPAGATION_SECONDS

from .._base import ADVISORY, BUCKET, TRANSFER_JOB, ResourceType, Weakening, duration_seconds, get, stack_policy

SLEEP = "time:index/sleep:Sleep"
SECRET = ResourceType.SECRET


def _waits(resource) -> bool:
    """Whether the create checks a grant the provider does not retry: a CMEK bucket or secret, a transfer job."""
    if resource.resource_type == BUCKET:
        return bool(get(resource.props, "encryption.defaultKmsKeyName"))
    if resource.resource_type == SECRET:
        return any(get(r, "customerManagedEncryption.kmsKeyName")
                   for r in get(resource.props, "replication.userManaged.replicas") or [])
    return resource.resource_type == TRANSFER_JOB


def _check(args, violate):
    minimum = float(args.get_config()["minWaitSeconds"])
    sleeps = {r.urn: r for r in args.resources if r.resource_type == SLEEP}
    for resource in args.resources:
        if not _waits(resource):
            continue
        waits = [sleeps[d.urn] for d in resource.dependencies if d.urn in sleeps]
        longest = max((duration_seconds(w.props.get("createDuration")) or 0 for w in waits), default=0)
        if longest < minimum:
            violate(f"{resource.name} is created {longest:g} s after the grants it needs, not the {minimum:g} s IAM "
                    "takes to propagate (its create fails and the provider does not retry)", resource.urn)


POLICY = stack_policy(
    "raptorflow-deploy-waits-for-iam-propagation",
    "CMEK buckets and secrets and transfer jobs are created only after a wait for IAM propagation after their grants.",
    "IAM access change propagation",
    Severity.LOW,
    "keep deploy.iamPropagationSeconds at the plan's value or above",
    _check,
    enforcement=ADVISORY,
    config={"minWaitSeconds": {"type": "number", "default": IAM_PROPAGATION_SECONDS}},
)

WEAKENINGS = [
    Weakening("dr", f"db-dumps-replica-transfer is created 0 s after the grants it needs, not the {IAM_PROPAGATION_SECONDS} "
              "s IAM takes to propagate (its create fails and the provider does not retry)",
              removed=("db-dumps-replica-grant-propagation",)),
    Weakening("dr", "user-files-replica-replication is created 60 s after the grants it needs, not the "
              f"{IAM_PROPAGATION_SECONDS} s IAM takes to propagate (its create fails and the provider does not retry)",
              "user-files-replica-replication-grant-propagation", {"createDuration": "60s"}),
]

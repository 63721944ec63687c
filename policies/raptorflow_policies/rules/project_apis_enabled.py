"""Every API the stack's resources need is enabled by the stack, and never disabled when a resource goes."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import Label, ResourceType, Weakening, labels, of_type, stack_policy

SERVICE = ResourceType.PROJECT_SERVICE
ALWAYS = ("serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com", "iam.googleapis.com")
"""Enabling APIs, project IAM and service accounts need these whatever else the stack holds."""
BY_TYPE = {
    ResourceType.TRANSFER_JOB: "storagetransfer.googleapis.com",
    "gcp:storage/": "storage.googleapis.com",
    "gcp:kms/": "cloudkms.googleapis.com",
    "gcp:cloudrunv2/": "run.googleapis.com",
    "gcp:cloudscheduler/": "cloudscheduler.googleapis.com",
    "gcp:monitoring/": "monitoring.googleapis.com",
    "gcp:logging/": "logging.googleapis.com",
    "gcp:secretmanager/": "secretmanager.googleapis.com",
    ResourceType.CUSTOM_ROLE: "pubsub.googleapis.com",  # the source bucket's change notices
    "gcp:pubsub/": "pubsub.googleapis.com",
    "gcp:artifactregistry/": "artifactregistry.googleapis.com",
}


def _needed(resources) -> set[str]:
    needed = set(ALWAYS)
    for resource in resources:
        for prefix, api in BY_TYPE.items():
            if resource.resource_type.startswith(prefix):
                needed.add(api)
        if resource.resource_type == ResourceType.TRANSFER_JOB and "replicationSpec" in resource.props:
            needed.add("pubsub.googleapis.com")
        if resource.resource_type == ResourceType.BUCKET and labels(resource.props).get(Label.REPLICA_REGION):
            # A replicated bucket's project sends change notices and is read by the standby's transfer agent.
            needed |= {"storagetransfer.googleapis.com", "pubsub.googleapis.com"}
    return needed


def _check(args, violate):
    services = of_type(args.resources, SERVICE)
    enabled = {s.props.get("service") for s in services}
    for api in sorted(_needed(args.resources) - enabled):
        violate(f"the stack uses {api} but does not enable it (its first deploy on a new project fails)")
    for service in services:
        for flag in ("disableOnDestroy", "disableDependentServices"):
            if service.props.get(flag) is True:
                violate(f"{service.props.get('service')} has {flag} on: removing it from the stack would switch the "
                        "API off under the backups", service.urn)


POLICY = stack_policy(
    "raptorflow-project-apis-enabled",
    "The stack enables every API its resources need, with disableOnDestroy and disableDependentServices off.",
    "Service Usage guidance",
    Severity.HIGH,
    "leave API enablement to ProjectApis (it enables what the stack uses and never disables an API)",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "the stack uses cloudkms.googleapis.com but does not enable it (its first deploy on a new "
              "project fails)", removed=("apis-cloudkms",)),
    Weakening("dr", "run.googleapis.com has disableOnDestroy on: removing it from the stack would switch the API off "
              "under the backups", "apis-run", {"disableOnDestroy": True}),
]

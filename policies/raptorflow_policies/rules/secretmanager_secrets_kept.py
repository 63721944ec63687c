"""Secrets the stack holds cannot be deleted by the API, each has a value (a version), and a version a new value
replaces is disabled, not destroyed (pulumi-gcp's default DELETE) nor left readable (ABANDON): kept, as the plan
keeps config versioned, and enabled again if the new value turns out wrong."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import ResourceType, Weakening, of_type, stack_policy

SECRET = ResourceType.SECRET
VERSION = ResourceType.SECRET_VERSION


KEPT_AS = "DISABLE"


def _check(args, violate):
    for version in of_type(args.resources, VERSION):
        policy = version.props.get("deletionPolicy") or "DELETE"
        if policy != KEPT_AS:
            violate(f"secret version {version.name} has deletionPolicy {policy}: a new value must disable the old "
                    f"version ({KEPT_AS}), neither destroy it nor leave it readable", version.urn)
    versions = {str(v.props.get("secret") or "").rsplit("/secrets/", 1)[-1] for v in of_type(args.resources, VERSION)}
    for secret in of_type(args.resources, SECRET):
        name = secret.props.get("secretId")
        if secret.props.get("deletionProtection") is not True:
            violate(f"secret {name} has deletion protection off: one API call deletes it and every version", secret.urn)
        if secret.props.get("ttl") or secret.props.get("expireTime"):
            violate(f"secret {name} expires (ttl or expireTime): it deletes itself", secret.urn)
        if name not in versions:
            violate(f"secret {name} has no version in the stack: whatever reads it gets nothing", secret.urn)


POLICY = stack_policy(
    "raptorflow-secretmanager-secrets-kept",
    "Every Secret Manager secret of the stack has deletion protection on and a version the stack sets, whose "
    "replaced value is disabled (deletionPolicy DISABLE), never destroyed or left readable.",
    "CKV_GCP_ (Secret Manager), Secret Manager deletion protection",
    Severity.HIGH,
    "keep deletion_protection=True and the secret's SecretVersion (the stack config sets its value), with "
    "deletion_policy=\"DISABLE\"",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "secret db-backup-database-url has deletion protection off: one API call deletes it and every "
              "version", "db-backup-database-url", {"deletionProtection": False}),
    Weakening("dr", "secret db-backup-cloudflare-token has no version in the stack: whatever reads it gets nothing",
              removed=("db-backup-cloudflare-token-value",)),
    Weakening("prod", "secret db-backup-database-url expires (ttl or expireTime): it deletes itself",
              "db-backup-database-url", {"ttl": "86400s"}),
    Weakening("prod", "secret version db-backup-database-url-value has deletionPolicy DELETE: a new value must "
              "disable the old version (DISABLE), neither destroy it nor leave it readable",
              "db-backup-database-url-value", {"deletionPolicy": "DELETE"}),
]

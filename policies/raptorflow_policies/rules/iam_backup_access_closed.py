"""Nobody but the plan's service identities reaches the backups: no people, groups, domains or project
convenience members on backup buckets or their keys, no folder or organization grants of storage or KMS roles, no
keys or impersonation of the job identities."""

from __future__ import annotations

from pulumi_policy import Severity

from core.roles import TRANSFER_SOURCE_NOTIFIER

from .._base import (
    BUCKET,
    RUN_JOB,
    ResourceType,
    Weakening,
    backup_buckets,
    bucket_of,
    get,
    grants,
    is_iam_grant,
    of_type,
    stack_policy,
)

SERVICE_MEMBERS = ("serviceAccount:",)
AUTHORITATIVE = ("IAMBinding", "IAMPolicy")
RUN_JOB_GRANTS = ("gcp:cloudrunv2/jobIamMember:JobIamMember", "gcp:cloudrunv2/jobIamBinding:JobIamBinding",
                  "gcp:cloudrunv2/jobIamPolicy:JobIamPolicy")
ABOVE_PROJECT = ("gcp:folder/", "gcp:organizations/")
REACHING_ROLES = ("roles/storage.", "roles/cloudkms.", "roles/owner", "roles/editor", "roles/viewer")
KEY_TYPES = ("gcp:serviceaccount/key:Key", "gcp:storage/hmacKey:HmacKey")
IMPERSONATION = ("gcp:serviceaccount/iAMMember:IAMMember", "gcp:serviceaccount/iAMBinding:IAMBinding",
                 "gcp:serviceaccount/iAMPolicy:IAMPolicy")


def _check(args, violate):
    backups = backup_buckets(args.resources)
    keys = {get(b.props, "encryption.defaultKmsKeyName") for b in of_type(args.resources, BUCKET)
            if b.props.get("name") in backups} - {None}
    identities = {str(get(j.props, "template.template.serviceAccount")) for j in of_type(args.resources, RUN_JOB)}
    jobs = {j.props.get("name") for j in of_type(args.resources, RUN_JOB)}
    for grant in args.resources:
        kind = grant.resource_type
        on_backup = is_iam_grant(kind) and (bucket_of(grant.props.get("bucket")) in backups
                                           or grant.props.get("cryptoKeyId") in keys)
        on_job = kind in RUN_JOB_GRANTS and grant.props.get("name") in jobs
        if on_backup and kind.endswith(AUTHORITATIVE):
            violate(f"{grant.name} sets the whole IAM {'policy' if kind.endswith('Policy') else 'binding'} of backup "
                    "storage: it silently removes grants the plan makes elsewhere (the standby's copy)", grant.urn)
        for role, member in grants(grant.props) if is_iam_grant(kind) else []:
            if on_backup and not role.startswith("roles/") and not TRANSFER_SOURCE_NOTIFIER.names(role):
                violate(f"{grant.name} grants the custom role {role} on backup storage: what it permits is not "
                        "in the plan", grant.urn)
            if on_job and not member.startswith(SERVICE_MEMBERS):
                violate(f"{grant.name} lets {member} run the backup job {grant.props.get('name')} ({role}): with "
                        "overrides, a run can send the dump anywhere", grant.urn)
            if on_backup and not member.startswith(SERVICE_MEMBERS):
                violate(f"{grant.name} grants {role} on backup storage to {member}: only the plan's service "
                        "identities may reach backups", grant.urn)
            if kind.startswith(ABOVE_PROJECT) and role.startswith(REACHING_ROLES):
                violate(f"{grant.name} grants {role} above the project to {member}: it reaches every backup bucket "
                        "and key", grant.urn)
        account = str(grant.props.get("serviceAccountId") or grant.props.get("serviceAccountEmail") or "")
        if kind in KEY_TYPES and any(account.endswith(i) for i in identities if account):
            violate(f"{grant.name} creates a long-lived key for the job identity {account}", grant.urn)
        if kind in IMPERSONATION and any(account.endswith(i) for i in identities if account):
            violate(f"{grant.name} lets {', '.join(m for _, m in grants(grant.props))} act as the job identity "
                    f"{account}", grant.urn)


POLICY = stack_policy(
    "raptorflow-iam-backup-access-closed",
    "Only the plan's service identities hold roles on backup buckets and their keys; no folder or organization "
    "grant of storage, KMS or basic roles; no service-account or HMAC key for a job identity, and nobody may act "
    "as one.",
    "CIS 1.4 (no user-managed SA keys), CIS 1.6, CKV_GCP_41, least privilege",
    Severity.CRITICAL,
    "grant access to backups through the stack's service accounts only; use workload identity, not keys",
    _check,
)

_WRITER = "db-backup-writer@raptorflow-prod.iam.gserviceaccount.com"
WEAKENINGS = [
    Weakening("prod", "reader-by-domain grants roles/storage.objectViewer on backup storage to domain:example.com: "
              "only the plan's service identities may reach backups",
              added=((ResourceType.BUCKET_IAM_MEMBER, "reader-by-domain",
                      {"bucket": "raptorflow-prod-db-dumps", "role": "roles/storage.objectViewer",
                       "member": "domain:example.com"}),)),
    Weakening("prod", "folder-admin grants roles/storage.admin above the project to user:eve@example.com: it reaches "
              "every backup bucket and key",
              added=(("gcp:folder/iAMMember:IAMMember", "folder-admin",
                      {"folder": "folders/123", "role": "roles/storage.admin", "member": "user:eve@example.com"}),)),
    Weakening("prod", f"writer-key creates a long-lived key for the job identity projects/raptorflow-prod/"
              f"serviceAccounts/{_WRITER}",
              added=(("gcp:serviceaccount/key:Key", "writer-key",
                      {"serviceAccountId": f"projects/raptorflow-prod/serviceAccounts/{_WRITER}"}),)),
    Weakening("prod", f"act-as-writer lets user:eve@example.com act as the job identity projects/raptorflow-prod/"
              f"serviceAccounts/{_WRITER}",
              added=(("gcp:serviceaccount/iAMMember:IAMMember", "act-as-writer",
                      {"serviceAccountId": f"projects/raptorflow-prod/serviceAccounts/{_WRITER}",
                       "role": "roles/iam.serviceAccountTokenCreator", "member": "user:eve@example.com"}),)),
    Weakening("prod", "runner-eve lets user:eve@example.com run the backup job db-backup-full "
              "(roles/run.jobsExecutorWithOverrides): with overrides, a run can send the dump anywhere",
              added=(("gcp:cloudrunv2/jobIamMember:JobIamMember", "runner-eve",
                      {"name": "db-backup-full", "location": "us-central1", "project": "raptorflow-prod",
                       "role": "roles/run.jobsExecutorWithOverrides", "member": "user:eve@example.com"}),)),
    Weakening("prod", "only-checker sets the whole IAM binding of backup storage: it silently removes grants the "
              "plan makes elsewhere (the standby's copy)",
              added=((ResourceType.BUCKET_IAM_BINDING, "only-checker",
                      {"bucket": "raptorflow-prod-db-dumps", "role": "roles/storage.objectViewer",
                       "members": ["serviceAccount:db-backup-checker@raptorflow-prod.iam.gserviceaccount.com"]}),)),
]

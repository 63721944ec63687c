"""Every identity the plan runs as exists and holds what its work needs - a grant removed is a backup that fails."""

from __future__ import annotations

from pulumi_policy import Severity

from core.roles import BACKUP_RUN_WATCHER, TRANSFER_SOURCE_NOTIFIER

from .._base import (
    BUCKET,
    CRYPTO_KEY,
    PROJECT_GRANTS,
    RUN_JOB,
    TRANSFER_JOB,
    Command,
    Label,
    ResourceType,
    Weakening,
    bucket_of,
    get,
    grants,
    image_repository,
    is_iam_grant,
    job_bucket,
    job_command,
    labels,
    of_type,
    run_jobs_scheduled,
    stack_policy,
)

ACCOUNT = ResourceType.SERVICE_ACCOUNT
SECRET = ResourceType.SECRET
SECRET_VERSION = ResourceType.SECRET_VERSION
SECRET_GRANT = ResourceType.SECRET_IAM_MEMBER
CUSTOM_ROLE = ResourceType.CUSTOM_ROLE
IMAGE_READER = "roles/artifactregistry.reader"
RUN_AGENT = "@serverless-robot-prod.iam.gserviceaccount.com"  # pulls every job's image
NOTIFIER_PERMISSIONS = TRANSFER_SOURCE_NOTIFIER.permissions
SECRET_AGENT = "@gcp-sa-secretmanager.iam.gserviceaccount.com"
KEY_USER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
BUCKET_ROLE: dict[str, str] = {Command.BACKUP: "roles/storage.objectCreator", Command.RESTORE_CHECK: "roles/storage.objectViewer"}
RUN_INVOKERS = ("roles/run.invoker", "roles/run.jobsExecutor", "roles/run.jobsExecutorWithOverrides")
TRANSFER_AGENT = "@storage-transfer-service.iam.gserviceaccount.com"
STORAGE_AGENT = "@gs-project-accounts.iam.gserviceaccount.com"


def _held(resources, member: str) -> set[tuple[str, str, str]]:
    """(resource kind, target, role) of every grant to `member` in the stack."""
    held = set()
    for grant in resources:
        if not is_iam_grant(grant.resource_type):
            continue
        target = (bucket_of(grant.props.get("bucket")) or grant.props.get("secretId") or grant.props.get("name")
                  or grant.props.get("cryptoKeyId") or grant.props.get("repository") or "")
        for role, who in grants(grant.props):
            if who == member or (member.startswith("*") and who.endswith(member[1:])):
                held.add((grant.resource_type.split(":")[1].split("/")[0], str(target), role))
    return held


def _has(held, kind: str, target: str, roles) -> bool:
    return any(k == kind and (t == target or t.endswith(f"/secrets/{target}")) and r in roles for k, t, r in held)


def _runners_can_follow_their_runs(resources, need) -> None:
    """Whoever may run a backup job with overrides may also read its executions (`execute --wait` polls them)."""
    watchers = {f"projects/{r.props.get('project')}/roles/{r.props.get('roleId')}" for r in of_type(resources, CUSTOM_ROLE)
                if set(BACKUP_RUN_WATCHER.permissions) <= set(r.props.get("permissions") or ())}
    for grant in resources:
        if not is_iam_grant(grant.resource_type) or not grant.resource_type.startswith("gcp:cloudrunv2/"):
            continue
        for role, member in grants(grant.props):
            if role != "roles/run.jobsExecutorWithOverrides":
                continue
            held = _held(resources, member)
            if not any(k == "cloudrunv2" and t == grant.props.get("name") and r in watchers for k, t, r in held):
                need(f"{member} may run {grant.props.get('name')} but not follow the run (run.executions.get)",
                     f"`gcloud run jobs execute {grant.props.get('name')} --wait`", grant.urn)


def _check(args, violate):
    resources = args.resources
    accounts = {f"{a.props.get('accountId')}@{a.props.get('project')}.iam.gserviceaccount.com"
                for a in of_type(resources, ACCOUNT)}
    schedules = run_jobs_scheduled(resources)
    missing: dict[str, tuple[list[str], str]] = {}  # what is missing -> (who needs it, urn)

    def need(problem: str, who: str, urn: str) -> None:
        missing.setdefault(problem, ([], urn))[0].append(who)

    for job in of_type(resources, RUN_JOB):
        name, command = job.props.get("name"), job_command(job.props)
        identity = get(job.props, "template.template.serviceAccount")
        if not identity:
            continue
        held = _held(resources, f"serviceAccount:{identity}")
        if identity not in accounts:
            need(f"{identity} is not created by the stack", f"job {name}", job.urn)
        bucket = job_bucket(job.props)
        if command in BUCKET_ROLE and bucket and not _has(held, "storage", bucket, (BUCKET_ROLE[command],)):
            need(f"{identity} lacks {BUCKET_ROLE[command]} on {bucket}", f"job {name}", job.urn)
        for volume in get(job.props, "template.template.volumes") or []:
            secret = get(volume, "secret.secret")
            if secret and not _has(held, "secretmanager", secret, ("roles/secretmanager.secretAccessor",)):
                need(f"{identity} may not read the secret {secret}", f"job {name}", job.urn)
        home = image_repository(resources, get(job.props, "template.template.containers.0.image"))
        repository = home.props.get("repositoryId") if home is not None else None
        if repository and not _has(_held(resources, f"*{RUN_AGENT}"), "artifactregistry", repository,
                                   (IMAGE_READER,)):
            need(f"Cloud Run's service agent may not pull from the repository {repository}", f"job {name}", job.urn)
        for schedule in schedules.get(name, []):
            starter = get(schedule.props, "httpTarget.oauthToken.serviceAccountEmail")
            who = f"scheduler job {schedule.props.get('name')}"
            if starter and starter not in accounts:
                need(f"{starter} is not created by the stack", who, schedule.urn)
            if starter and not _has(_held(resources, f"serviceAccount:{starter}"), "cloudrunv2", name, RUN_INVOKERS):
                need(f"{starter} may not start {name}", who, schedule.urn)
    keys = {f"{k.props.get('keyRing')}/cryptoKeys/{k.props.get('name')}" for k in of_type(resources, CRYPTO_KEY)}
    agents = _held(resources, f"*{STORAGE_AGENT}")
    for bucket in of_type(resources, BUCKET):
        key, who = get(bucket.props, "encryption.defaultKmsKeyName"), f"bucket {bucket.props.get('name')}"
        if key and key not in keys:
            need(f"the key {key} is not held by the stack", who, bucket.urn)
        elif key and not _has(agents, "kms", key, (KEY_USER,)):
            need(f"Cloud Storage's service agent may not use the key {key}", who, bucket.urn)
    secret_agents = _held(resources, f"*{SECRET_AGENT}")
    secrets = {s.props.get("secretId") for s in of_type(resources, SECRET)}
    for job in of_type(resources, RUN_JOB):
        for volume in get(job.props, "template.template.volumes") or []:
            secret = get(volume, "secret.secret")
            if secret and secret not in secrets:
                need(f"the secret {secret} is not in the stack", f"job {job.props.get('name')}", job.urn)
    for dependant in [*of_type(resources, SECRET_VERSION), *(g for g in resources if g.resource_type == SECRET_GRANT)]:
        secret = str(dependant.props.get("secret") or dependant.props.get("secretId") or "").rsplit("/", 1)[-1]
        if secret and secret not in secrets:
            need(f"the secret {secret} is not in the stack", dependant.name, dependant.urn)
    for secret in of_type(resources, SECRET):
        for replica in get(secret.props, "replication.userManaged.replicas") or []:
            key = get(replica, "customerManagedEncryption.kmsKeyName")
            who = f"secret {secret.props.get('secretId')}"
            if key and key not in keys:
                need(f"the key {key} is not held by the stack", who, secret.urn)
            elif key and not _has(secret_agents, "kms", key, (KEY_USER,)):
                need(f"Secret Manager's service agent may not use the key {key}", who, secret.urn)
    if any(labels(b.props).get(Label.REPLICA_REGION) for b in of_type(resources, BUCKET)):
        roles = of_type(resources, CUSTOM_ROLE)
        if not any(set(NOTIFIER_PERMISSIONS) <= set(r.props.get("permissions") or ()) for r in roles):
            need("the custom role that lets the standby's transfer agent watch a source bucket is not defined",
                 "event-driven replication of this stack's buckets", next(iter(of_type(resources, BUCKET))).urn)
    transfer = _held(resources, f"*{TRANSFER_AGENT}")
    project_roles = {(role, member.rsplit("@", 1)[-1]) for g in resources if g.resource_type in PROJECT_GRANTS
                     for role, member in grants(g.props)}
    for job in of_type(resources, TRANSFER_JOB):
        for spec in ("transferSpec", "replicationSpec"):
            source = bucket_of(get(job.props, f"{spec}.gcsDataSource.bucketName"))
            sink = bucket_of(get(job.props, f"{spec}.gcsDataSink.bucketName"))
            needs = [(source, "roles/storage.objectViewer"), (source, "roles/storage.legacyBucketReader"),
                     (sink, "roles/storage.objectCreator"), (sink, "roles/storage.objectViewer"),
                     (sink, "roles/storage.legacyBucketReader")]
            for target, role in needs:
                if target and not _has(transfer, "storage", target, (role,)):
                    need(f"the transfer service agent lacks {role} on {target}", f"transfer job {job.name}", job.urn)
            if spec == "replicationSpec" and source:
                if not any(k == "storage" and t == source and TRANSFER_SOURCE_NOTIFIER.names(r) for k, t, r in transfer):
                    need(f"the transfer service agent may not watch {source} for changes (the source notifier role)",
                         f"transfer job {job.name}", job.urn)
                for role, agent in (("roles/storagetransfer.serviceAgent", TRANSFER_AGENT),
                                    ("roles/pubsub.publisher", STORAGE_AGENT)):
                    if (role, agent.lstrip("@")) not in project_roles:
                        need(f"the project grants no {role} to the {agent.lstrip('@').split('.')[0]} agent "
                             "(event-driven replication's notices)", f"transfer job {job.name}", job.urn)
    _runners_can_follow_their_runs(resources, need)
    for problem, (needed_by, urn) in missing.items():
        violate(f"{problem}, which {', '.join(sorted(set(needed_by)))} needs", urn)


POLICY = stack_policy(
    "raptorflow-iam-job-identities-can-work",
    "Every identity a job, schedule or transfer runs as is created by the stack and holds what its work needs: "
    "the backup writer objectCreator on its bucket, the checker objectViewer, each job its mounted secrets, the "
    "scheduler the right to start each job, Cloud Run's service agent the image repository of each job, manual runners "
    "the right to follow the runs they start, Cloud Storage's agent each bucket key (held by the stack), the "
    "transfer agent read on each source and create on each sink.",
    "least privilege, DR plan (backups that run)",
    Severity.HIGH,
    "keep the service accounts and grants ScheduledDatabaseBackup, BackupBucket and BucketReplica create",
    _check,
)

WEAKENINGS = [
    Weakening("dr", "Cloud Run's service agent may not pull from the repository raptorflow, which job "
              "db-backup-dns-export, job db-backup-full, job db-backup-restore-check, job db-backup-schema needs",
              removed=("backup-images-run-agent-reader",)),
    Weakening("prod", "serviceAccount:deploy@raptorflow-prod.iam.gserviceaccount.com may run db-backup-full but not "
              "follow the run (run.executions.get), which `gcloud run jobs execute db-backup-full --wait` needs",
              removed=("db-backup-full-manual-runner-0-watch",)),
    Weakening("prod", "db-backup-checker@raptorflow-prod.iam.gserviceaccount.com lacks roles/storage.objectViewer on "
              "raptorflow-prod-db-dumps, which job db-backup-restore-check needs",
              removed=("db-backup-checker-read-only",)),
    Weakening("prod", "db-backup-scheduler@raptorflow-prod.iam.gserviceaccount.com may not start db-backup-full, which "
              "scheduler job db-backup-full needs", removed=("db-backup-full-scheduler-may-run",)),
    Weakening("prod", "the key projects/raptorflow-prod/locations/us-central1/keyRings/raptorflow-prod-db-dumps-ring/"
              "cryptoKeys/raptorflow-prod-db-dumps-key is not held by the stack, which bucket raptorflow-prod-db-dumps, "
              "bucket raptorflow-prod-db-dumps-logs needs", removed=("db-dumps-key",)),
    Weakening("dr", "the transfer service agent lacks roles/storage.objectCreator on raptorflow-dr-user-files-replica, "
              "which transfer job user-files-replica-replication, transfer job user-files-replica-transfer needs",
              removed=("user-files-replica-sink-objectcreator",)),
    Weakening("prod", "the secret db-backup-database-url is not in the stack, which db-backup-database-url-reader, "
              "db-backup-database-url-value, job db-backup-full, job db-backup-schema needs",
              removed=("db-backup-database-url",)),
    Weakening("dr", "the project grants no roles/pubsub.publisher to the gs-project-accounts agent (event-driven "
              "replication's notices), which transfer job db-dumps-replica-replication, transfer job "
              "user-files-replica-replication needs", removed=("replication-access-source-publisher",)),
]

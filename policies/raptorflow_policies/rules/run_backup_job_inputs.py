"""A backup job reads its database URL from its mounted secret and writes to a backup bucket the stack protects."""

from __future__ import annotations

import re

from pulumi_policy import Severity

from .._base import (
    BUCKET,
    DELETE,
    RUN_JOB,
    Command,
    JobEnv,
    Weakening,
    get,
    job_bucket,
    job_command,
    job_env,
    of_type,
    stack_policy,
)

URL_FILE = JobEnv.DATABASE_URL.file
IMAGE_NAME = "backup-job"
"""The backup job's image, built from backup_job/Dockerfile into the stack project's Artifact Registry."""


def _mounted_secret(props, path: str) -> bool:
    mounts = {m.get("name"): m.get("mountPath") for m in get(props, "template.template.containers.0.volumeMounts") or []}
    secrets = {v.get("name") for v in get(props, "template.template.volumes") or [] if get(v, "secret.secret")}
    return any(name in secrets and mount and path.startswith(mount.rstrip("/") + "/") for name, mount in mounts.items())


def _check(args, violate):
    managed = {b.props.get("name"): b for b in of_type(args.resources, BUCKET)}
    for job in of_type(args.resources, RUN_JOB):
        command, name, env = job_command(job.props), job.props.get("name"), job_env(job.props)
        if command != Command.BACKUP:
            continue
        if not (env.get(URL_FILE) and _mounted_secret(job.props, str(env[URL_FILE]))):
            violate(f"backup job {name} reads no database URL from a mounted secret ({URL_FILE} under a secret "
                    "volume)", job.urn)
        image = str(get(job.props, "template.template.containers.0.image") or "")
        if not re.fullmatch(rf"[a-z0-9-]+-docker\.pkg\.dev/{re.escape(str(job.props.get('project')))}/[a-z0-9-]+/"
                            rf"{IMAGE_NAME}[:@][\w.:-]+", image):
            violate(f"backup job {name} runs the image {image or 'none'}, not the stack project's own {IMAGE_NAME} "
                    "image: another image gets the mounted database URL", job.urn)
        bucket = job_bucket(job.props)
        if bucket not in managed:
            violate(f"backup job {name} writes to {bucket or 'no bucket'}, which this stack does not manage and "
                    "protect", job.urn)


POLICY = stack_policy(
    "raptorflow-run-backup-job-inputs",
    "Each backup job mounts its database secret and writes to a bucket of the stack (which the backup-bucket rules "
    "then hold to retention, CMEK, privacy and deletion protection).",
    "Cloud Run secrets guidance, DR plan",
    Severity.HIGH,
    f"give the job its {URL_FILE} from the mounted secret and {JobEnv.BUCKET} of the stack's backup bucket "
    "(ScheduledDatabaseBackup does both)",
    _check,
)

WEAKENINGS = [
    Weakening("prod", f"backup job db-backup-full reads no database URL from a mounted secret ({URL_FILE} "
              "under a secret volume)", "db-backup-full", {"template.template.volumes": DELETE}),
    Weakening("prod", "backup job db-backup-schema writes to someones-open-bucket, which this stack does not manage "
              "and protect", "db-backup-schema",
              {"template.template.containers.0.envs.0": {"name": JobEnv.BUCKET.value, "value": "someones-open-bucket"}}),
    Weakening("prod", "backup job db-backup-full runs the image docker.io/someone/backup-job:latest, not the stack "
              "project's own backup-job image: another image gets the mounted database URL", "db-backup-full",
              {"template.template.containers.0.image": "docker.io/someone/backup-job:latest"}),
]

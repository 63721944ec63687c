"""The backup job's images live in a repository the stack holds, kept like the backups they restore."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import (
    REPOSITORY,
    RUN_JOB,
    SCHEDULED_COMMANDS,
    Weakening,
    get,
    image_repository,
    job_command,
    of_type,
    stack_policy,
)


def _check(args, violate):
    repositories = of_type(args.resources, REPOSITORY)
    for repository in repositories:
        props, name = repository.props, repository.name
        problems = []
        if not repository.opts.protect:
            problems.append("not protected (protect=True)")
        if get(props, "dockerConfig.immutableTags") is not True:
            problems.append("tags are mutable (a release tag could name other code than the one that made a backup)")
        for policy in props.get("cleanupPolicies") or []:
            if policy.get("action") == "DELETE" and get(policy, "condition.tagState") != "UNTAGGED":
                problems.append(f"cleanup policy {policy.get('id')} deletes tagged versions (a job's image among them)")
        if problems:
            violate(f"image repository {name}: {'; '.join(problems)}", repository.urn)
    for job in of_type(args.resources, RUN_JOB):
        image = str(get(job.props, "template.template.containers.0.image") or "")
        if job_command(job.props) in SCHEDULED_COMMANDS and image_repository(repositories, image) is None:
            violate(f"job {job.props.get('name')} runs {image}, which is in no image repository of the stack "
                    "(a job cannot be created before its image exists, nor restore with an image that is gone)",
                    job.urn)


POLICY = stack_policy(
    "raptorflow-registry-backup-images-kept",
    "Every backup job runs an image from an Artifact Registry repository of the stack, which is protected, has "
    "immutable tags and whose cleanup policies delete only untagged versions.",
    "Artifact Registry cleanup policies, DR plan (restore with the code that made the backup)",
    Severity.HIGH,
    "keep the ImageRegistry the site creates and push the image there (`make image STACK=...`)",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "image repository backup-images-repository: tags are mutable (a release tag could name other "
              "code than the one that made a backup)", "backup-images-repository",
              {"dockerConfig.immutableTags": False}),
    Weakening("dr", "image repository backup-images-repository: not protected (protect=True)",
              "backup-images-repository", protect=False),
    Weakening("dr", "image repository backup-images-repository: cleanup policy delete-old-untagged deletes tagged "
              "versions (a job's image among them)", "backup-images-repository",
              {"cleanupPolicies.0.condition.tagState": "ANY"}),
    Weakening("prod", "job db-backup-full runs docker.io/raptorflow/backup-job:1.0.0, which is in no image repository "
              "of the stack (a job cannot be created before its image exists, nor restore with an image that is "
              "gone)", "db-backup-full",
              {"template.template.containers.0.image": "docker.io/raptorflow/backup-job:1.0.0"}),
]

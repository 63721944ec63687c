"""Where a site's backup-job images live: an Artifact Registry Docker repository, addressed
`REGION-docker.pkg.dev/PROJECT/REPOSITORY` (https://cloud.google.com/artifact-registry/docs/docker/names).
The program creates the repository, the config checks the image lives there, and the policy pack finds a job's
repository by it."""

from __future__ import annotations


def repository_url(project: str, region: str, repository_id: str) -> str:
    """The Docker path prefix of repository `repository_id` in `project` and `region` (no trailing slash)."""
    return f"{region}-docker.pkg.dev/{project}/{repository_id}"


def in_repository(image: str, project: str, region: str, repository_id: str) -> bool:
    """Whether `image` is an image of that repository."""
    return image.startswith(repository_url(project, region, repository_id) + "/")

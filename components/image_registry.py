"""ImageRegistry: the Artifact Registry repository that holds the backup job's image in a site's region.

A Cloud Run job cannot be created before its image exists ("Image ... not found"), and the image cannot be
pushed before its repository exists, so the repository is created as code and `make image` (tools/image.py)
creates it on its own, then builds and pushes `backup_job/Dockerfile`, before the first full `pulumi up`.

- Docker format, tags immutable: a release tag names one image for good, so a restore of an old backup
  can run the very code that made it.
- Cleanup policies (https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy): untagged
  versions older than `IMAGE_UNTAGGED_DELETE_DAYS` are deleted; the `IMAGE_KEEP_VERSIONS` most recent
  versions are always kept, and no tagged version is ever deleted.
- Cloud Run pulls a job's image as the project's Cloud Run service agent, not as the job's identity
  (https://cloud.google.com/artifact-registry/docs/integrate-cloud-run): that agent gets
  `roles/artifactregistry.reader` on the repository, and the jobs wait for the grant. In the same project it
  could read already; the grant says so in the plan, keeps working where an organisation trims default
  grants, and is what a registry in another project would need. The job identities get nothing here: they
  never pull.
- Kept by a teardown, like the backups: it holds the code that restores them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from core.images import repository_url

from . import defaults
from .building_blocks import days_to_seconds, kept

READER_ROLE = "roles/artifactregistry.reader"


@dataclass(frozen=True)
class ImageRegistryArgs:
    """Inputs of an ImageRegistry."""

    project: str
    """Project of the repository (the site's own)."""
    region: str
    """Region of the repository: the site's, so the standby site pulls from its own region."""
    labels: dict[str, str]
    """Labels on the repository."""
    rebuild: bool = False
    """A rebuild after a teardown: the repository it kept is imported, not created."""


class ImageRegistry(pulumi.ComponentResource):
    """A Docker repository `raptorflow` in the site's region, with cleanup policies."""

    repository: gcp.artifactregistry.Repository
    """The repository."""
    ready: list[pulumi.Resource]
    """What a job must wait for before it can be created with an image from here."""
    url: str
    """Where images of this repository live: `REGION-docker.pkg.dev/PROJECT/REPOSITORY`."""

    def __init__(self, name: str, args: ImageRegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("raptorflow:registry:ImageRegistry", name, None, opts)
        repository_id = defaults.IMAGE_REPOSITORY_ID
        self.url = image_repository_url(args.project, args.region)
        self.repository = gcp.artifactregistry.Repository(
            f"{name}-repository",
            project=args.project,
            location=args.region,
            repository_id=repository_id,
            format="DOCKER",
            description="raptorflow-dr: the backup job's images",
            docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=True),
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-old-untagged", action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="UNTAGGED", older_than=f"{days_to_seconds(defaults.IMAGE_UNTAGGED_DELETE_DAYS)}s",
                    ),
                ),
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="keep-recent", action="KEEP",
                    most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                        keep_count=defaults.IMAGE_KEEP_VERSIONS,
                    ),
                ),
            ],
            labels=args.labels,
            opts=kept(self, f"projects/{args.project}/locations/{args.region}/repositories/{repository_id}",
                      args.rebuild),
        )
        run_agent = gcp.projects.ServiceIdentity(
            f"{name}-run-agent", project=args.project, service="run.googleapis.com",
            opts=pulumi.ResourceOptions(parent=self),
        )
        puller = gcp.artifactregistry.RepositoryIamMember(
            f"{name}-run-agent-reader", project=args.project, location=args.region,
            repository=self.repository.repository_id, role=READER_ROLE, member=run_agent.member,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.ready = [self.repository, puller]
        self.register_outputs({"url": self.url})


def image_repository_url(project: str, region: str) -> str:
    """The Docker host and path of a site's repository."""
    return repository_url(project, region, defaults.IMAGE_REPOSITORY_ID)

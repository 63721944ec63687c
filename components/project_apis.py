"""ProjectApis: the Google Cloud APIs a site uses, enabled before anything that needs them.

On a fresh project every API but a few is off, and each create fails until its
API is on (`SERVICE_DISABLED`). This component enables each API the program
uses (`gcp.projects.Service`) and never disables one on destroy: other
workloads of the project may use it, and disabling an API deletes its
resources. `after_apis` then makes every Google Cloud resource registered
afterwards wait for the API of its type, so the dependency is in the graph
(and in the offline plan), not in a retry loop.

Service names and what each resource needs: https://cloud.google.com/service-usage/docs/enabled-service
and each product's "Before you begin" (e.g. Cloud Run jobs: run.googleapis.com; Cloud Scheduler:
cloudscheduler.googleapis.com; Storage Transfer: storagetransfer.googleapis.com).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from core.contracts import ResourceType

# The API of each pulumi-gcp module the program uses (the token's `gcp:<module>/...`).
API_OF_MODULE = {
    "kms": "cloudkms.googleapis.com",
    "artifactregistry": "artifactregistry.googleapis.com",
    "cloudrunv2": "run.googleapis.com",
    "cloudscheduler": "cloudscheduler.googleapis.com",
    "secretmanager": "secretmanager.googleapis.com",
    "storage": "storage.googleapis.com",
    "monitoring": "monitoring.googleapis.com",
    "logging": "logging.googleapis.com",
    "pubsub": "pubsub.googleapis.com",
    "serviceaccount": "iam.googleapis.com",
    "projects": "cloudresourcemanager.googleapis.com",
}
# Types whose API is not their module's.
API_OF_TYPE: dict[str, str] = {
    ResourceType.TRANSFER_JOB: "storagetransfer.googleapis.com",
    ResourceType.SERVICE_IDENTITY: "serviceusage.googleapis.com",
    ResourceType.CUSTOM_ROLE: "iam.googleapis.com",
}
# Always on: enabling the others goes through Service Usage; IAM grants through Resource Manager.
BASE_APIS = ("serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com", "iam.googleapis.com")
SERVICE_TYPE = ResourceType.PROJECT_SERVICE


def api_of(resource_type: str) -> str | None:
    """The API a pulumi-gcp resource type needs, or None for types outside Google Cloud."""
    if resource_type in API_OF_TYPE:
        return API_OF_TYPE[resource_type]
    vendor, _, rest = resource_type.partition(":")
    if vendor != "gcp" or resource_type == SERVICE_TYPE:
        return None
    return API_OF_MODULE.get(rest.split("/", 1)[0])


def all_apis() -> tuple[str, ...]:
    """Every API the program may need, base APIs first."""
    rest = sorted({*API_OF_MODULE.values(), *API_OF_TYPE.values()} - set(BASE_APIS))
    return (*BASE_APIS, *rest)


@dataclass(frozen=True)
class ProjectApisArgs:
    """Inputs of a ProjectApis."""

    project: str
    """The project whose APIs are enabled."""
    apis: tuple[str, ...] = ()
    """APIs to enable; defaults to every API the program uses (`all_apis()`)."""


class ProjectApis(pulumi.ComponentResource):
    """One `gcp.projects.Service` per API, kept enabled when the stack is destroyed."""

    services: dict[str, gcp.projects.Service]
    """The Service resource of each API, by service name."""

    def __init__(self, name: str, args: ProjectApisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("raptorflow:project:ProjectApis", name, None, opts)
        self.services = {}
        for api in args.apis or all_apis():
            # Enabling goes through Service Usage, so every other API waits for it.
            after = [self.services[BASE_APIS[0]]] if api != BASE_APIS[0] else []
            self.services[api] = gcp.projects.Service(
                f"{name}-{api.split('.')[0]}",
                project=args.project,
                service=api,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )
        self.register_outputs({"services": sorted(self.services)})

    def after_apis(self) -> None:
        """Make every Google Cloud resource registered from now on wait for its API's Service."""

        def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
            api = api_of(args.type_)
            if api is None or api not in self.services or not args.custom:
                return None
            after = pulumi.ResourceOptions(depends_on=[self.services[api]])
            return pulumi.ResourceTransformResult(args.props, pulumi.ResourceOptions.merge(args.opts, after))

        # The engine runs it on every later registration (the SDK-side stack transformation, which ran it in the
        # SDK, is deprecated); it changes no name or parent, so every URN stays as it was.
        pulumi.runtime.register_resource_transform(transform)

    def invoke_options(self) -> pulumi.InvokeOutputOptions:
        """Options for a provider look-up (a service agent's address): it waits until the APIs are on."""
        return pulumi.InvokeOutputOptions(depends_on=list(self.services.values()))

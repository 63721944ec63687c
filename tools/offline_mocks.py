"""The mocks under which tools.offline runs the program: what a create and a data source answer for the types the
program uses, the stack's resource transforms run as the engine would, and every registration recorded with its
URN (the engine's), parent, options and dependencies (by components.pulumi_internals.RecordingMonitor)."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

from components.pulumi_internals import RecordingMonitor, Registration
from core.resource_types import ResourceType
from tools.offline import STACK_REFERENCE_TYPE, Resource, unwrap


def _fake_project_number(project: str) -> str:
    return str(int(hashlib.sha256(project.encode()).hexdigest(), 16))[:12]


def _digest(name: str, length: int) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:length]


# Resources whose id is the `name` the service gives them (stable here: derived from the logical name).
_NAMED_BY_SERVICE: dict[str, Callable[[str, dict[str, Any]], str]] = {
    ResourceType.TRANSFER_JOB: lambda name, plain: f"transferJobs/{_digest(name, 20)}",
    ResourceType.NOTIFICATION_CHANNEL:
        lambda name, plain: f"projects/{plain['project']}/notificationChannels/{_digest(name, 16)}",
    ResourceType.CUSTOM_ROLE: lambda name, plain: f"projects/{plain['project']}/roles/{plain['roleId']}",
}


# When the service says it created a resource (RFC 3339): the plan's fixed "now", from which the first-deploy
# grace of the backup-age and transfer-behind alerts is measured.
PLANNED_AT = "2026-01-01T00:00:00Z"
_CREATED_AT: dict[str, str] = {ResourceType.RUN_JOB: "createTime", ResourceType.TRANSFER_JOB: "creationTime"}


def _computed(type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The id and the output properties a real create would return, for the types the program uses."""
    state = dict(inputs)
    plain = unwrap(inputs)
    if type_ in _CREATED_AT:
        state[_CREATED_AT[type_]] = PLANNED_AT
    if type_ == ResourceType.BUCKET:
        bucket = plain["name"]
        state.update(url=f"gs://{bucket}", selfLink=f"https://www.googleapis.com/storage/v1/b/{bucket}")
        return bucket, state
    if type_ == ResourceType.KEY_RING:
        ring = f"projects/{plain['project']}/locations/{plain['location']}/keyRings/{plain['name']}"
        return ring, state
    if type_ == ResourceType.CRYPTO_KEY:
        return f"{plain['keyRing']}/cryptoKeys/{plain['name']}", state
    if type_ in _NAMED_BY_SERVICE:
        state["name"] = _NAMED_BY_SERVICE[type_](name, plain)
        return state["name"], state
    if type_ == ResourceType.UPTIME_CHECK:
        check = f"{name}-{_digest(name, 8)}"
        state["uptimeCheckId"] = check
        return f"projects/{plain['project']}/uptimeCheckConfigs/{check}", state
    if type_ == ResourceType.SERVICE_IDENTITY:
        number = _fake_project_number(plain.get("project") or "project")
        service = plain["service"].split(".")[0]
        # Most agents are gcp-sa-SERVICE; Cloud Run's predates that naming
        # (https://cloud.google.com/iam/docs/service-agents).
        domain = "serverless-robot-prod" if service == "run" else f"gcp-sa-{service}"
        email = f"service-{number}@{domain}.iam.gserviceaccount.com"
        state.update(email=email, member=f"serviceAccount:{email}")
        return email, state
    if type_ == ResourceType.SECRET:
        return f"projects/{plain['project']}/secrets/{plain['secretId']}", state
    if type_ == ResourceType.SERVICE_ACCOUNT:
        email = f"{plain['accountId']}@{plain.get('project', 'project')}.iam.gserviceaccount.com"
        state.update(email=email, member=f"serviceAccount:{email}")
        return email, state
    return f"{name}-id", state


def _invoke_result(token: str, args: dict[str, Any]) -> dict[str, Any]:
    """What the provider's data sources answer, for the invokes the program makes."""
    number = _fake_project_number(args.get("project") or "project")
    if token == "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
        email = f"service-{number}@gs-project-accounts.iam.gserviceaccount.com"
        return {"emailAddress": email, "member": f"serviceAccount:{email}", "project": args.get("project")}
    if token == "gcp:storage/getTransferProjectServiceAccount:getTransferProjectServiceAccount":
        email = f"project-{number}@storage-transfer-service.iam.gserviceaccount.com"
        return {"email": email, "member": f"serviceAccount:{email}", "subjectId": number}
    raise NotImplementedError(f"the offline plan has no answer for invoke {token}")


def build_mocks(stack_outputs: dict[str, dict[str, Any]], records: list[Resource]) -> tuple[Any, RecordingMonitor]:
    """Mocks plus a monitor that records every registration into `records`, after the stack's transforms ran."""
    import pulumi

    transforms: list[pulumi.ResourceTransform] = []
    urns: dict[tuple[str, str], list[str]] = {}
    # Options a transform leaves as they were, to tell what else it changed: made once, not per resource.
    unchanged = vars(pulumi.ResourceOptions.merge(pulumi.ResourceOptions(), pulumi.ResourceOptions()))

    class PlanMocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            if args.typ == STACK_REFERENCE_TYPE:
                target = unwrap(args.inputs).get("name", args.name)
                return args.name, {"name": target, "outputs": stack_outputs.get(target, {})}
            return _computed(args.typ, args.name, args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs):
            return _invoke_result(args.token, unwrap(args.args))

        def register_transform(self, transform: pulumi.ResourceTransform) -> None:
            transforms.append(transform)

    def record(registration: Registration) -> None:
        resource = Resource(**vars(registration))
        records.append(resource)
        urns.setdefault((resource.type, resource.name), []).append(resource.urn)

    def transformed(registration: Registration) -> None:
        # The engine runs the stack's resource transforms on each registration before it plans the resource
        # (`register_resource_transform`); the mocks only collect them (`Mocks.register_transform`'s docs: "implementations
        # that want to exercise them can record the transform here and call it"). Run them here, as the engine
        # would, for what the program's transforms change: dependencies. Anything else they change is refused
        # rather than silently dropped.
        for transform in transforms:
            props = copy.deepcopy(registration.inputs)
            args = pulumi.ResourceTransformArgs(registration.custom, registration.type, registration.name, props,
                                                pulumi.ResourceOptions())
            result = transform(args)
            if result is None:
                continue
            if not isinstance(result, pulumi.ResourceTransformResult):
                raise NotImplementedError(f"{registration.name}: the offline plan runs synchronous transforms only")
            after = result.opts.depends_on or []
            if result.props is not props or any(
                repr(value) != repr(unchanged.get(key)) for key, value in vars(result.opts).items() if key != "depends_on"
            ):
                raise NotImplementedError(f"{registration.name}: the offline plan applies only depends_on from a "
                                          "resource transform")
            for resource in after if isinstance(after, list) else [after]:
                if not isinstance(resource, pulumi.Resource):
                    raise NotImplementedError(f"{registration.name}: a transform's depends_on must be resources")
                key = (resource.pulumi_resource_type, resource.pulumi_resource_name)
                found = urns.get(key, [])
                if len(found) != 1:
                    raise RuntimeError(f"{registration.name}: a transform depends on {key}, registered {len(found)} "
                                       "times")
                registration.dependencies = sorted({*registration.dependencies, found[0]})
        record(registration)

    mocks = PlanMocks()
    return mocks, RecordingMonitor(mocks, registered=transformed, read=record)

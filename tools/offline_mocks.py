"""The mocks under which tools.offline runs the program: what a create and a data source answer for the types the
program uses, and a monitor that records every registration with its URN (the engine's), parent, options and
dependencies, and runs the stack's resource transforms as the engine would."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

from tools.offline import ROOT_STACK_TYPE, STACK_REFERENCE_TYPE, Resource, unwrap


def _fake_project_number(project: str) -> str:
    return str(int(hashlib.sha256(project.encode()).hexdigest(), 16))[:12]


def _digest(name: str, length: int) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:length]


# Resources whose id is the `name` the service gives them (stable here: derived from the logical name).
_NAMED_BY_SERVICE: dict[str, Callable[[str, dict[str, Any]], str]] = {
    "gcp:storage/transferJob:TransferJob": lambda name, plain: f"transferJobs/{_digest(name, 20)}",
    "gcp:monitoring/notificationChannel:NotificationChannel":
        lambda name, plain: f"projects/{plain['project']}/notificationChannels/{_digest(name, 16)}",
    "gcp:projects/iAMCustomRole:IAMCustomRole": lambda name, plain: f"projects/{plain['project']}/roles/{plain['roleId']}",
}


# When the service says it created a resource (RFC 3339): the plan's fixed "now", from which the first-deploy
# grace of the backup-age and transfer-behind alerts is measured.
PLANNED_AT = "2026-01-01T00:00:00Z"
_CREATED_AT = {"gcp:cloudrunv2/job:Job": "createTime", "gcp:storage/transferJob:TransferJob": "creationTime"}


def _computed(type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The id and the output properties a real create would return, for the types the program uses."""
    state = dict(inputs)
    plain = unwrap(inputs)
    if type_ in _CREATED_AT:
        state[_CREATED_AT[type_]] = PLANNED_AT
    if type_ == "gcp:storage/bucket:Bucket":
        bucket = plain["name"]
        state.update(url=f"gs://{bucket}", selfLink=f"https://www.googleapis.com/storage/v1/b/{bucket}")
        return bucket, state
    if type_ == "gcp:kms/keyRing:KeyRing":
        ring = f"projects/{plain['project']}/locations/{plain['location']}/keyRings/{plain['name']}"
        return ring, state
    if type_ == "gcp:kms/cryptoKey:CryptoKey":
        return f"{plain['keyRing']}/cryptoKeys/{plain['name']}", state
    if type_ in _NAMED_BY_SERVICE:
        state["name"] = _NAMED_BY_SERVICE[type_](name, plain)
        return state["name"], state
    if type_ == "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig":
        check = f"{name}-{_digest(name, 8)}"
        state["uptimeCheckId"] = check
        return f"projects/{plain['project']}/uptimeCheckConfigs/{check}", state
    if type_ == "gcp:projects/serviceIdentity:ServiceIdentity":
        number = _fake_project_number(plain.get("project") or "project")
        service = plain["service"].split(".")[0]
        # Most agents are gcp-sa-SERVICE; Cloud Run's predates that naming
        # (https://cloud.google.com/iam/docs/service-agents).
        domain = "serverless-robot-prod" if service == "run" else f"gcp-sa-{service}"
        email = f"service-{number}@{domain}.iam.gserviceaccount.com"
        state.update(email=email, member=f"serviceAccount:{email}")
        return email, state
    if type_ == "gcp:secretmanager/secret:Secret":
        return f"projects/{plain['project']}/secrets/{plain['secretId']}", state
    if type_ == "gcp:serviceaccount/account:Account":
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


def build_mocks(stack_outputs: dict[str, dict[str, Any]], records: list[Resource],
                 thread_loops: list[asyncio.AbstractEventLoop]):
    """Mocks plus a monitor that also records URN, parent and protect of every registration."""
    import pulumi
    from pulumi.runtime import mocks as pulumi_mocks

    class PlanMocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            if args.typ == STACK_REFERENCE_TYPE:
                target = unwrap(args.inputs).get("name", args.name)
                return args.name, {"name": target, "outputs": stack_outputs.get(target, {})}
            return _computed(args.typ, args.name, args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs):
            return _invoke_result(args.token, unwrap(args.args))

    class RecordingMonitor(pulumi_mocks.MockMonitor):
        def __init__(self, mocks: pulumi.runtime.Mocks):
            super().__init__(mocks)
            self._urns: dict[tuple[str, str], list[str]] = {}
            # Options a transform leaves as they were, to tell what else it changed: made once, not per resource.
            self._unchanged = vars(pulumi.ResourceOptions.merge(pulumi.ResourceOptions(), pulumi.ResourceOptions()))

        def make_urn(self, parent: str, type_: str, name: str) -> str:
            # The engine's URN, not the mock's: the type is the parent's whole type chain then the resource's, and
            # the root stack adds nothing (pkg/resource/deploy Deployment.generateURN). The mock keeps only the
            # parent's last type and prefixes `pulumi:pulumi:Stack$`, URNs no real stack has, which a
            # `pulumi up --target` or an alias built from the plan would miss.
            qualified = parent.split("::")[2] if parent else ""
            if qualified and qualified != ROOT_STACK_TYPE:
                type_ = f"{qualified}${type_}"
            return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

        def _record(self, urn: str, request, properties, custom: bool) -> None:
            records.append(
                Resource(
                    urn=urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent or None,
                    protect=bool(getattr(request, "protect", False)),
                    custom=custom,
                    inputs=pulumi_mocks.rpc.deserialize_properties(properties),
                    dependencies=sorted(set(request.dependencies)),
                    import_id=getattr(request, "importId", "") or None,
                    aliases=[_alias(alias) for alias in getattr(request, "aliases", ())],
                    ignore_changes=list(getattr(request, "ignoreChanges", ())),
                    retain_on_delete=bool(getattr(request, "retainOnDelete", False)),
                )
            )
            self._urns.setdefault((request.type, request.name), []).append(urn)

        def _transform(self, request) -> None:
            # The engine runs the stack's resource transforms on each registration before it plans the resource
            # (`register_resource_transform`); the mock monitor only collects them (its docs: "implementations that
            # want to exercise them can ... call them"). Run them here, as the engine would, for what the program's
            # transforms change: dependencies. Anything else they change is refused rather than silently dropped.
            import pulumi

            for transform in self.get_registered_transforms():
                props = pulumi_mocks.rpc.deserialize_properties(request.object)
                args = pulumi.ResourceTransformArgs(bool(request.custom), request.type, request.name, props,
                                                    pulumi.ResourceOptions())
                result = transform(args)
                if result is None:
                    continue
                if not isinstance(result, pulumi.ResourceTransformResult):
                    raise NotImplementedError(f"{request.name}: the offline plan runs synchronous transforms only")
                after = result.opts.depends_on or []
                if result.props is not props or any(
                    repr(value) != repr(self._unchanged.get(key)) for key, value in vars(result.opts).items()
                    if key != "depends_on"
                ):
                    raise NotImplementedError(f"{request.name}: the offline plan applies only depends_on from a "
                                              "resource transform")
                for resource in after if isinstance(after, list) else [after]:
                    if not isinstance(resource, pulumi.Resource):
                        raise NotImplementedError(f"{request.name}: a transform's depends_on must be resources")
                    key = (resource.pulumi_resource_type, resource.pulumi_resource_name)
                    urns = self._urns.get(key, [])
                    if len(urns) != 1:
                        raise RuntimeError(f"{request.name}: a transform depends on {key}, registered {len(urns)} "
                                           "times")
                    if urns[0] not in request.dependencies:
                        request.dependencies.append(urns[0])

        @staticmethod
        def _thread_loop() -> None:
            # The SDK calls the monitor from executor threads, each needing a loop; it would create them and
            # leave them open. Create them here instead, so the run can close them when it ends.
            try:
                asyncio.get_event_loop()
            except RuntimeError:
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                thread_loops.append(loop)

        def RegisterResource(self, request):
            self._thread_loop()
            self._transform(request)
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                self._record(response.urn, request, request.object, bool(request.custom))
            return response

        def ReadResource(self, request):
            self._thread_loop()
            # StackReferences are reads of another stack's outputs, registered through here.
            response = super().ReadResource(request)
            self._record(response.urn, request, request.properties, True)
            return response

    mocks = PlanMocks()
    return mocks, RecordingMonitor(mocks)


def _alias(alias: Any) -> dict[str, Any]:
    """An alias of a RegisterResource request: a full URN, or the spec fields that are set."""
    if alias.WhichOneof("alias") == "urn":
        return {"urn": alias.urn}
    spec = alias.spec
    found: dict[str, Any] = {key: getattr(spec, key) for key in ("name", "type", "stack", "project") if getattr(spec, key)}
    if spec.noParent:
        found["noParent"] = True
    elif spec.parentUrn:
        found["parentUrn"] = spec.parentUrn
    return found

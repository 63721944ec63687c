"""Run the real program under Pulumi's official mocks and record what it provisions.

`plan_stack("dr")` reads `Pulumi.yaml` and `Pulumi.dr.yaml`, runs `__main__.py`
with that config inside `pulumi.runtime.stack.run_pulumi_func` (as the language
host would), and returns a `Plan`: every resource the program registered, with
its URN, parent, `protect` flag and inputs in the engine's camelCase form, and
the stack outputs. A StackReference to another stack of this project is fed the
outputs of an offline plan of that stack. `secure:` values cannot be decrypted
without the stack's secrets provider, so the program sees a placeholder marked
as a secret, and recorded secret inputs keep Pulumi's secret signature.

Each run happens in a fresh `contextvars.Context`, so plans of several stacks can
be made in one process without Pulumi's global state leaking between them.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import re
import runpy
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.stack_files import (
    MAX_NESTING,
    SECRET_PLACEHOLDER,
    StackFileError,
    config_string,
    key_problem,
    namespaced,
    plain_secret_problems,
    read_stack_config,
    secret_command,
)

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "raptorflow-dr"

# Pulumi's property-map signatures: a map holding SIG_KEY: SECRET_SIG is a secret.
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class Resource:
    """One resource the program registered."""

    urn: str
    type: str
    name: str
    parent: str | None
    protect: bool
    custom: bool
    inputs: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)
    """URNs the engine waits for before creating this one: explicit `depends_on` and those implied by inputs."""
    import_id: str | None = None
    """The id of an existing resource the engine adopts instead of creating one (the `import_` option)."""
    aliases: list[dict[str, Any]] = field(default_factory=list)
    """Former identities (alias specs as the engine receives them: name, type, parentUrn or noParent, ...)."""
    ignore_changes: list[str] = field(default_factory=list)
    """Inputs the engine takes from the live resource or the state instead of the program (`ignore_changes`)."""
    retain_on_delete: bool = False
    """`pulumi destroy` removes it from the state but leaves it in the cloud (`retain_on_delete`)."""

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape (secret values redacted, signature kept)."""
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "protect": self.protect,
            "dependencies": self.dependencies,
            "import": self.import_id,
            "ignoreChanges": self.ignore_changes,
            "retainOnDelete": self.retain_on_delete,
            "inputs": redact(self.inputs),
        }


@dataclass
class Plan:
    """What one stack's program provisions."""

    stack: str
    resources: list[Resource]
    outputs: dict[str, Any] = field(default_factory=dict)
    placeholder_secrets: list[str] = field(default_factory=list)
    """Secret keys the stack file lacks, planned with placeholders (`pulumi up` would refuse to run without them)."""

    def of_type(self, type_: str) -> list[Resource]:
        """Resources of one type token, in registration order."""
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Resource:
        """The resource with this logical name (KeyError when there is none)."""
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(f"no resource named {name!r} in the {self.stack} plan")

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of a plan."""
        return {
            "stack": self.stack,
            "resources": [r.to_json() for r in self.resources],
            "outputs": redact(self.outputs),
            "placeholderSecrets": self.placeholder_secrets,
        }


def is_secret(value: Any) -> bool:
    """Whether a recorded value is wrapped as a Pulumi secret."""
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def redact(value: Any) -> Any:
    """A copy of `value` whose secrets keep their signature but not their value."""
    if is_secret(value):
        return {SIG_KEY: SECRET_SIG, "value": SECRET_PLACEHOLDER}
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def unwrap(value: Any) -> Any:
    """A copy of `value` with secrets replaced by their (placeholder) values."""
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


# ---------------------------------------------------------------- stack files


def supply_missing_secrets(stack: str, values: dict[str, Any], secret_keys: set[str]) -> list[str]:
    """Give every secret the config needs and lacks a marked placeholder (as `pulumi config set --secret` would a
    value); return their keys. The program's own check then passes offline, while `pulumi up` lists them."""
    from components.config import missing_secrets

    supplied = []
    for secret in missing_secrets(values):
        top, *path = secret.path.split(".")
        full = f"{PROJECT}:{top}"
        set_config_path(values, [full, *path], SECRET_PLACEHOLDER, secret.path)
        secret_keys.add(full)
        supplied.append(secret.path)
    return supplied


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_INTEGER = re.compile(r"^-?[0-9]{1,18}$")


def parse_config_path(target: str) -> list[str | int]:
    """`failover.hostnames[0].existingRecordId` as parts (`pulumi config set --path` syntax: [N] indexes a list)."""
    parts: list[str | int] = []
    position = 0
    for match in _PATH_PART.finditer(target):
        if match.start() != position + (1 if parts and target[position:match.start()] == "." else 0):
            break
        parts.append(int(match.group(2)) if match.group(2) is not None else match.group(1))
        position = match.end()
    if position != len(target) or not parts or not isinstance(parts[0], str):
        raise StackFileError(f"--set: '{target}' is not a config path; use KEY.SUB[INDEX].SUB, e.g. "
                             f"{PROJECT}:failover.hostnames[0].ttlSeconds")
    if len(parts) > MAX_NESTING:  # as deep in a stack file is refused too; deeper fails the program's JSON
        raise StackFileError(f"--set: '{target[:80]}...' goes {len(parts)} levels deep; config nests at most "
                             f"{MAX_NESTING}")
    return parts


def apply_override(values: dict[str, Any], assignment: str, secret_keys: AbstractSet[str] = frozenset(),
                   stack: str = "STACK") -> None:
    """Apply `ns:key[.path]=value` like `pulumi config set --path` (true/false and integers are typed); a secret
    key (the model's, or one `secret_keys` of the stack file) is refused: its value would be plain text."""
    target, sep, raw = assignment.partition("=")
    if not sep or ":" not in target.split(".")[0]:
        raise StackFileError(f"--set takes NAMESPACE:KEY=VALUE (e.g. {PROJECT}:promoted=true), got {target[:80]!r}")
    value: Any = raw
    if raw in ("true", "false"):
        value = raw == "true"
    elif _INTEGER.match(raw):
        value = int(raw)
    top, *path = parse_config_path(target)
    if key_problem(str(top)):
        raise StackFileError(f"--set: {key_problem(str(top))}")
    full = namespaced(str(top))  # ns:config:key is ns:key, as for the CLI
    from components.config import secret_keys_of_model

    if full in secret_keys or full in {f"{PROJECT}:{key}" for key in secret_keys_of_model()}:
        raise StackFileError(
            f"--set: {full} is a secret key; --set takes no secrets (the value would be plain text on the command "
            f"line and in the plan): set it in the stack file with "
            f"`{secret_command(full + target[len(str(top)):], stack)}`")
    set_config_path(values, [full, *path], value, target)


def set_config_path(values: dict[str, Any], parts: list[str | int], value: Any, target: str) -> None:
    """Set `value` at `parts` (a full key, then map keys and list indexes) like `pulumi config set --path`,
    creating maps and lists on the way; StackFileError naming `target` when the path cannot go there."""
    top, *path = parts
    if not path:
        values[str(top)] = value
        return
    node: Any = values.setdefault(str(top), {})
    where = str(top)
    for part, following in zip(path, [*path[1:], None], strict=False):
        if node == SECRET_PLACEHOLDER or not isinstance(node, (dict, list)) or \
                (isinstance(part, int) != isinstance(node, list)):
            kind = "a secret" if node == SECRET_PLACEHOLDER else f"a {type(node).__name__}"
            raise StackFileError(f"--set: {where} is {kind}; the path {target[:80]} cannot go into it")
        if isinstance(node, list) and isinstance(part, int) and part > len(node):
            raise StackFileError(f"--set: {where} has {len(node)} items; index {part} is past the end")
        if following is None:
            if isinstance(node, list) and part == len(node):
                node.append(value)
            else:
                node[part] = value  # type: ignore[index]
            return
        if isinstance(node, list) and part == len(node):
            node.append({} if isinstance(following, str) else [])
        elif isinstance(node, dict) and part not in node:
            node[part] = {} if isinstance(following, str) else []
        node = node[part]
        where = f"{where}[{part}]" if isinstance(part, int) else f"{where}.{part}"


# ---------------------------------------------------------------- the mocks


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


def _build_mocks(stack_outputs: dict[str, dict[str, Any]], records: list[Resource],
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
                unchanged = vars(pulumi.ResourceOptions.merge(pulumi.ResourceOptions(), pulumi.ResourceOptions()))
                if result.props is not props or any(
                    repr(value) != repr(unchanged.get(key)) for key, value in vars(result.opts).items()
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


async def _resolve(value: Any) -> Any:
    """An export's plain value; secret exports become the placeholder."""
    import pulumi

    output = pulumi.Output.from_input(value)
    resolved = await output.future()
    if await output.is_secret():
        return {SIG_KEY: SECRET_SIG, "value": SECRET_PLACEHOLDER}
    return resolved


def record_resources(
    build: Callable[[], None],
    stack: str,
    values: dict[str, Any] | None = None,
    secret_keys: Iterable[str] = (),
    stack_outputs: dict[str, dict[str, Any]] | None = None,
) -> Plan:
    """Run `build` (the program, or a test's components) under Pulumi's mocks with this raw config; return what
    it registered and the stack's outputs."""

    def run() -> Plan:
        import pulumi
        from pulumi.runtime.stack import Stack, run_pulumi_func
        from pulumi.runtime.sync_await import _sync_await

        # A loop of this run's own, closed on every way out: one left for the garbage collector at interpreter
        # exit sometimes prints "Exception ignored in BaseEventLoop.__del__" with a traceback.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        records: list[Resource] = []
        thread_loops: list[asyncio.AbstractEventLoop] = []
        mocks, monitor = _build_mocks(stack_outputs or {}, records, thread_loops)
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
        pulumi.runtime.set_all_config({k: config_string(v) for k, v in (values or {}).items()}, sorted(secret_keys))
        try:
            _sync_await(run_pulumi_func(build))
            stack_resource = pulumi.runtime.get_root_resource()
            if not isinstance(stack_resource, Stack):
                raise RuntimeError("the program ran without a root stack resource to read its outputs from")
            outputs = {name: _sync_await(_resolve(value)) for name, value in stack_resource.outputs.items()}
            return Plan(stack=stack, resources=records, outputs=outputs)
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()
            for thread_loop in thread_loops:
                thread_loop.close()

    return contextvars.Context().run(run)


def run_program(
    stack: str,
    values: dict[str, Any],
    secret_keys: set[str],
    stack_outputs: dict[str, dict[str, Any]] | None = None,
    root: Path = ROOT,
) -> Plan:
    """Run `__main__.py` under mocks with this raw config; return what it registered."""
    program = str(root / "__main__.py")

    def run_program_file() -> None:
        runpy.run_path(program, run_name="__main__")

    return record_resources(run_program_file, stack, values, secret_keys, stack_outputs)


def referenced_stacks(values: dict[str, Any]) -> list[str]:
    """Full names of the stacks this config references (the standby site's prodStack)."""
    reference = values.get(f"{PROJECT}:prodStack")
    return [str(reference)] if reference else []


def _reference_problem(full_name: str, stack: str, root: Path, referencing: tuple[str, ...]) -> str | None:
    """Why the plan of `stack` cannot feed a StackReference to `full_name` ([org/][project/]stack) from a stack file
    here; `referencing` are the stacks whose plans led to this one."""
    parts = full_name.split("/")
    if len(parts) == 3 and parts[1] != PROJECT:
        return f"a stack of the project '{parts[1]}', not of {PROJECT}"
    if parts[-1] == stack:
        return "this stack itself"
    if parts[-1] in referencing:
        return f"which leads back to it ({' -> '.join([*referencing, stack, parts[-1]])})"
    if not (root / f"Pulumi.{parts[-1]}.yaml").is_file():
        return f"and there is no Pulumi.{parts[-1]}.yaml"
    return None


def plan_stack(
    stack: str,
    overrides: tuple[str, ...] = (),
    root: Path = ROOT,
    stack_file: Path | None = None,
    as_filed: dict[str, Plan] | None = None,
    referencing: tuple[str, ...] = (),
) -> Plan:
    """Offline plan of `stack` from its stack file (or `stack_file`), feeding StackReferences with offline
    plans of the stacks they name; StackFileError naming the key when a reference names no stack file here, this
    stack, or one whose references lead back to it.

    `as_filed` holds plans made from unchanged stack files: a referenced stack found there is not planned
    again, and one planned here is added to it, so several plans in one run share them. `referencing` are the
    stacks whose plans are waiting for this one.
    """
    as_filed = {} if as_filed is None else as_filed
    values, secret_keys = read_stack_config(stack, root, stack_file)
    # A secret key without any `secure:` value (read_stack_config checks those with one): plain text throughout.
    plain = plain_secret_problems({k: v for k, v in values.items() if k not in secret_keys}, stack)
    if plain:
        shown = str(stack_file) if stack_file else f"Pulumi.{stack}.yaml"
        raise StackFileError(f"{shown} holds secrets in plain text (not shown here):\n  " + "\n  ".join(plain))
    for assignment in overrides:
        apply_override(values, assignment, secret_keys, stack)
    placeholders = supply_missing_secrets(stack, values, secret_keys)
    references = {}
    for full_name in referenced_stacks(values):
        referenced = full_name.rsplit("/", 1)[-1]
        problem = _reference_problem(full_name, stack, root, referencing)
        if problem:
            key = f"{PROJECT}:prodStack"
            given = any(namespaced(o.partition("=")[0].split(".")[0]) == key for o in overrides)
            shown = "--set" if given else str(stack_file) if stack_file else f"Pulumi.{stack}.yaml"
            here = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml") if p.name.count(".") == 2)
            raise StackFileError(
                f"{shown}: {key} is '{full_name}', {problem}; it must name the primary stack this standby reads, as "
                f"org/project/stack, with a stack file here: {', '.join(s for s in here if s != stack) or 'none'}")
        if referenced not in as_filed:
            as_filed[referenced] = plan_stack(referenced, (), root, as_filed=as_filed, referencing=(*referencing, stack))
        references[full_name] = as_filed[referenced].outputs
    plan = run_program(stack, values, secret_keys, references, root)
    plan.placeholder_secrets = placeholders
    if not overrides and stack_file is None:
        as_filed.setdefault(stack, plan)
    return plan

"""Weakenings of a recorded plan, generated from the plan itself and the providers' documented values, never
from a hand list (tools.policy_mutants scores the pack against them):

- `flip`: every boolean input, and every resource's `protect`, negated;
- `enum`: each string input set to each other value its provider SDK
  documents for it ("Possible values: ...", "Supported values include ...");
- `halve`, `zero`, `times10`: each numeric input (numbers, and numeric
  strings such as "2592000s");
- `yearly`: each cron schedule made to run once a year;
- `remove`: each resource;
- `drop-member`: each member of an IAM binding;
- `drop-label`: each label;
- `add-public`: a public member (allUsers, allAuthenticatedUsers) granted on
  each bucket and key through each IAM resource type of GCS and KMS
  (member, binding, policy), a bucket also in its `b/NAME` form;
- `add-acl`: each ACL resource type of GCS granting allUsers on each bucket;
- `widen-role`: each IAM grant's role made broad (owner, editor, the
  service's admin role), and a project-level storage grant to each of the
  plan's service accounts.

Each mutant has an id, `STACK:SERVICE/Type:NAME:KIND:DETAIL` (for example
`prod:storage/Bucket:db-dumps-bucket:halve:retentionPolicy.retentionPeriod=1.296e+06`
or `dr:storage/TransferJob:db-dumps-replica-transfer:enum:status=DISABLED`), which
policies/allowed_mutations.yaml matches.
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from core.contracts import ResourceType
from tools.offline import SIG_KEY, Plan, Resource

PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
CRON = re.compile(r"^\S+ \S+ \S+ \S+ \S+$")
NUMERIC = re.compile(r"^(-?\d+(?:\.\d+)?)(s?)$")
# Values the API documents that the SDK's docstring does not list (Storage Transfer API, TransferJob.status).
EXTRA_VALUES: dict[tuple[str, str], tuple[str, ...]] = {(ResourceType.TRANSFER_JOB, "status"): ("ENABLED", "DISABLED", "DELETED")}
BUCKET_IAM: tuple[str, ...] = (ResourceType.BUCKET_IAM_MEMBER, ResourceType.BUCKET_IAM_BINDING, ResourceType.BUCKET_IAM_POLICY)
KEY_IAM: tuple[str, ...] = (ResourceType.CRYPTO_KEY_IAM_MEMBER, ResourceType.CRYPTO_KEY_IAM_BINDING, ResourceType.CRYPTO_KEY_IAM_POLICY)
BUCKET_ACLS: dict[str, dict[str, Any]] = {
    ResourceType.BUCKET_ACCESS_CONTROL: {"entity": "allUsers", "role": "READER"},
    ResourceType.DEFAULT_OBJECT_ACCESS_CONTROL: {"entity": "allUsers", "role": "READER"},
    ResourceType.BUCKET_ACL: {"roleEntities": ["READER:allUsers"]},
    ResourceType.DEFAULT_OBJECT_ACL: {"roleEntities": ["READER:allUsers"]},
    ResourceType.OBJECT_ACCESS_CONTROL: {"object": "backup.dump", "entity": "allUsers", "role": "READER"},
}
BROAD_ROLES = ("roles/owner", "roles/editor")
ADMIN_ROLE = {"storage": "roles/storage.admin", "kms": "roles/cloudkms.admin", "secretmanager": "roles/secretmanager.admin",
              "cloudrunv2": "roles/run.admin", "projects": "roles/storage.admin"}
PROJECT_IAM = ResourceType.PROJECT_IAM_MEMBER


@dataclass(frozen=True)
class Mutant:
    """One weakening of a stack's plan: `changes` to one resource's inputs (None removes a path), its `protect`
    set, the `removed` resources dropped and `added` ones registered."""

    id: str
    stack: str
    kind: str
    resource: str | None = None
    changes: tuple[tuple[tuple[str | int, ...], Any], ...] = ()
    protect: bool | None = None
    removed: tuple[str, ...] = ()
    added: tuple[Resource, ...] = field(default=(), compare=False)

    def apply(self, plan: Plan) -> Plan:
        """`plan` with this mutation (the plan itself is not changed)."""
        resources = []
        for resource in plan.resources:
            if resource.name in self.removed:
                continue
            if resource.name == self.resource:
                resource = replace(resource, inputs=copy.deepcopy(resource.inputs))
                for path, value in self.changes:
                    _set(resource.inputs, path, value)
                if self.protect is not None:
                    resource = replace(resource, protect=self.protect)
            resources.append(resource)
        return replace(plan, resources=[*resources, *self.added])


def _set(node: Any, path: tuple[str | int, ...], value: Any) -> None:
    for part in path[:-1]:
        node = node[part]
    if value is None:
        node.pop(path[-1]) if isinstance(node, dict) else node.pop(int(path[-1]))
    else:
        node[path[-1]] = value


def _leaves(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """(path, value) of every scalar in `value`; secret values are not walked."""
    if isinstance(value, dict):
        if SIG_KEY in value:
            return
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


@functools.cache
def _sdk_class(type_token: str, names: tuple[str, ...]) -> Any:
    """The SDK's Args class for the input object at property path `names` of `type_token`, or None."""
    package, rest = type_token.split(":", 1)
    module_name, class_name = rest.split(":")
    module_path = module_name.split("/")[0]
    sdk = {"gcp": "pulumi_gcp", "cloudflare": "pulumi_cloudflare", "vercel": "pulumiverse_vercel"}.get(package)
    if sdk is None:
        return None
    try:
        module = importlib.import_module(sdk if module_path == "index" else f"{sdk}.{module_path}")
    except ImportError:
        return None
    if not names:
        return getattr(module, f"{class_name}Args", None)
    inputs = getattr(module, "_inputs", None)
    stem = class_name
    for name in names:
        options = [stem + _pascal(name), stem + _pascal(name[:-1]) if name.endswith("s") else None]
        stem = next((o for o in options if o and hasattr(inputs, o + "Args")), "")
        if not stem:
            return None
    return getattr(inputs, stem + "Args")


_VALUES = re.compile(r"(?:Possible|Supported|Acceptable|Allowed|Valid) values(?: are| include)?:?\s*(.+?)(?:\.(?:\s|$)|$)",
                     re.S)


@functools.cache
def documented_values(type_token: str, path: tuple[str, ...]) -> tuple[str, ...]:
    """The values the provider SDK documents for the string input at `path` (camelCase names), if any."""
    if (type_token, ".".join(path)) in EXTRA_VALUES:
        return EXTRA_VALUES[(type_token, ".".join(path))]
    cls = _sdk_class(type_token, path[:-1])
    doc = inspect.getdoc(cls.__init__) if cls is not None else None
    param = doc and re.search(rf":param [^\n]*?\b{_snake(path[-1])}: (.*?)(?=\n:param|\Z)", doc, re.S)
    listed = param and _VALUES.search(param.group(1))
    if not listed:
        return ()
    return tuple(dict.fromkeys(m.group(1) or m.group(2) or m.group(3) for m in
                               re.finditer(r"`([^`]+)`|\"([^\"]+)\"|\b([A-Z][A-Z0-9_]{2,})\b", listed.group(1))))


def _numeric_value(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = NUMERIC.match(value) if isinstance(value, str) else None
    return float(match[1]) if match else None


def _numeric(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        half = value // 2 if isinstance(value, int) else value / 2
        return [("halve", half), ("zero", 0), ("times10", value * 10)] if value else [("times10", 10)]
    if isinstance(value, str) and (match := NUMERIC.match(value)):
        number, unit = float(match[1]), match[2]
        return [(kind, f"{changed:g}{unit}") for kind, changed in (("halve", number / 2), ("zero", 0),
                                                                  ("times10", number * 10))]
    return []


def short_type(type_token: str) -> str:
    """`gcp:cloudscheduler/job:Job` -> `cloudscheduler/Job`: a type as mutant ids name it."""
    parts = type_token.split(":")
    return f"{parts[1].split('/')[0]}/{parts[-1]}" if len(parts) == 3 else type_token


def _input_mutants(stack: str, resource: Resource) -> Iterator[Mutant]:
    where = f"{stack}:{short_type(resource.type)}:{resource.name}"

    def mutant(kind: str, path: tuple[str | int, ...], value: Any, shown: Any = None) -> Mutant:
        return Mutant(f"{where}:{kind}:{_dotted(path)}" + ("" if shown is None else f"={shown}"),
                      stack, kind, resource.name, ((path, value),))

    yield Mutant(f"{where}:flip:protect={str(not resource.protect).lower()}", stack, "flip", resource.name,
                 protect=not resource.protect)
    for path, value in _leaves(resource.inputs):
        if isinstance(value, bool):
            yield mutant("flip", path, not value, str(not value).lower())
        for kind, changed in _numeric(value):
            if changed != value and _numeric_value(changed) != _numeric_value(value):  # 0 halved is no mutant
                yield mutant(kind, path, changed, changed)
        if isinstance(value, str):
            names = tuple(str(p) for p in path if not isinstance(p, int))
            for other in documented_values(resource.type, names):
                if other != value:
                    yield mutant("enum", path, other, other)
            if CRON.match(value) and path[-1] == "schedule":
                yield mutant("yearly", path, "0 2 1 1 *", "0 2 1 1 *")
        if len(path) >= 2 and path[-2] in ("labels", "userLabels"):
            yield mutant("drop-label", path, None)
    for path, _ in _leaves(resource.inputs):
        if len(path) >= 2 and path[-2] == "members" and len(resource.inputs.get("members") or []) > 1:
            yield mutant("drop-member", path, None)


def _added(stack: str, plan: Plan, kind: str, type_token: str, name: str, inputs: dict[str, Any]) -> Mutant:
    name = re.sub(r"[^A-Za-z0-9._@-]+", "-", name)  # an id's parts are separated by ':'
    resource = Resource(urn=f"urn:pulumi:{stack}::raptorflow-dr::{type_token}::{name}", type=type_token, name=name,
                        parent=None, protect=False, custom=True, inputs=inputs)
    target = inputs.get("bucket") or inputs.get("cryptoKeyId") or inputs.get("project")
    return Mutant(f"{stack}:{short_type(type_token)}:{name}:{kind}:{target}", stack, kind, added=(resource,))


def _grant(type_token: str, target_key: str, target: str, role: str, member: str) -> dict[str, Any]:
    if type_token.endswith("Member"):
        return {target_key: target, "role": role, "member": member}
    if type_token.endswith("Binding"):
        return {target_key: target, "role": role, "members": [member]}
    return {target_key: target, "policyData": json.dumps({"bindings": [{"role": role, "members": [member]}]})}


def _added_mutants(stack: str, plan: Plan) -> Iterator[Mutant]:
    buckets = [r.inputs["name"] for r in plan.resources if r.type == ResourceType.BUCKET and r.inputs.get("name")]
    keys = sorted({r.inputs["cryptoKeyId"] for r in plan.resources if r.inputs.get("cryptoKeyId")})
    for bucket in buckets:
        for form in (bucket, f"b/{bucket}"):
            for type_token in BUCKET_IAM:
                for member in PUBLIC_MEMBERS:
                    yield _added(stack, plan, "add-public", type_token, f"mutant-{member}-{form.replace('/', '-')}",
                                 _grant(type_token, "bucket", form, "roles/storage.objectViewer", member))
        for type_token, inputs in BUCKET_ACLS.items():
            yield _added(stack, plan, "add-acl", type_token, f"mutant-acl-{bucket}", {"bucket": bucket, **inputs})
    for key in keys:
        for type_token in KEY_IAM:
            for member in PUBLIC_MEMBERS:
                yield _added(stack, plan, "add-public", type_token, f"mutant-{member}-{key.rsplit('/', 1)[-1]}",
                             _grant(type_token, "cryptoKeyId", key, "roles/cloudkms.cryptoKeyEncrypterDecrypter",
                                    member))
    projects = sorted({r.inputs["project"] for r in plan.resources if isinstance(r.inputs.get("project"), str)})
    accounts = sorted({m for r in plan.resources for m in [r.inputs.get("member")]
                       if isinstance(m, str) and m.startswith("serviceAccount:")})
    for project in projects:
        for account in accounts:
            for project_role in ("roles/storage.admin", "roles/storage.objectAdmin"):
                yield _added(stack, plan, "widen-role", PROJECT_IAM, f"mutant-{project_role}-{account}",
                             {"project": project, "role": project_role, "member": account})
    for resource in plan.resources:
        role = resource.inputs.get("role")
        if isinstance(role, str) and role.startswith("roles/"):
            service = resource.type.split(":")[1].split("/")[0]
            for broad in [*BROAD_ROLES, *([ADMIN_ROLE[service]] if service in ADMIN_ROLE else [])]:
                if broad != role:
                    yield Mutant(f"{stack}:{short_type(resource.type)}:{resource.name}:widen-role:role={broad}", stack,
                                 "widen-role",
                                 resource.name, ((("role",), broad),))


def mutants(plan: Plan) -> list[Mutant]:
    """Every mutant of `plan`, in a stable order."""
    found: list[Mutant] = []
    for resource in plan.resources:
        found += _input_mutants(plan.stack, resource)
        found.append(Mutant(f"{plan.stack}:{short_type(resource.type)}:{resource.name}:remove", plan.stack, "remove",
                            removed=(resource.name,)))
    found += _added_mutants(plan.stack, plan)
    return list({m.id: m for m in found}.values())

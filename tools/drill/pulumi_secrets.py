"""What the drill's STAND-IN Pulumi CLI (tools/drill/pulumi_cli.py) does with secret config: not Pulumi.

`python -m tools.rotate` reads and writes a stack's secrets as it does with the real CLI, so the stand-in answers:

    config set --secret [--path] KEY --stack S   the value on standard input (as tools.secrets hands it)
    config rm [--path] KEY --stack S             the key removed
    config --show-secrets --json --stack S       every key as `pulumi config --json` prints it: {"ns:key":
                                                 {"value", "secret", "objectValue" for a map}}

and `up` applies a changed secret as the program's resources take it: a new version of each Secret Manager secret
whose `SecretVersion` holds it through the Secret Manager stand-in (tools/drill/secret_manager.py,
$SECRET_MANAGER_API_URL): a changed `secret_data` replaces the version - the new one is added, then the old one is
deleted as the plan's `deletionPolicy` of that SecretVersion says (pulumi-gcp: `DELETE`, the default, destroys it,
`DISABLE` disables it, `ABANDON` leaves it enabled;
https://www.pulumi.com/registry/packages/gcp/api-docs/secretmanager/secretversion/) - and the Vercel variable of
`vercelSecretValues.NAME.<site>` of the active site through the Vercel stand-in. Which secret holds which key is
the program's naming (components/scheduled_backup.py `job_secret`, components/config_vault.py), restated here.

Secrets live in the state's `secrets` (full key -> value; a map's values under dotted keys) and what the last
`up` applied in `appliedSecrets`. No value is ever printed.
"""

from __future__ import annotations

import base64
import json
import os
from typing import TYPE_CHECKING, Any

from core.resource_types import ResourceType
from tools.drill import secret_manager
from tools.drill.pulumi_cli import UpError, call

if TYPE_CHECKING:
    from tools.offline import Plan

PROJECT = "raptorflow-dr"
SITES = {"false": "primary", "true": "standby"}
# Config key -> the suffix of the Secret Manager secret id whose version holds it (components/scheduled_backup.py).
JOB_SECRETS = {"databaseUrl": "-database-url", "scratchDatabaseUrl": "-scratch-database-url",
               "cloudflareExportToken": "-cloudflare-token"}


def answers(args: list[str]) -> bool:
    """Whether this module answers a `config` call: a secret set, a removal, or the JSON listing."""
    return (args[:2] == ["config", "set"] and "--secret" in args) or args[:2] == ["config", "rm"] or (
        args[:1] == ["config"] and "--json" in args and (len(args) < 2 or args[1].startswith("--")))


def full_key(key: str) -> str:
    """`key` with the project's namespace when it has none, as the CLI reads it."""
    return key if ":" in key.split(".")[0] else f"{PROJECT}:{key}"


def _key(args: list[str]) -> str:
    return next(a for i, a in enumerate(args[2:], 2) if not a.startswith("--") and args[i - 1] != "--stack")


def config(args: list[str], state: dict[str, Any], stdin: str) -> str | None:
    """Answer a `config` call on `state` (changed in place); what to print, if anything."""
    secrets = state.setdefault("secrets", {})
    if args[:2] == ["config", "set"]:
        secrets[full_key(_key(args))] = stdin.removesuffix("\n")
        return None
    if args[:2] == ["config", "rm"]:
        key = full_key(_key(args))
        secrets.pop(key, None)
        state["config"].pop(key, None)
        state["config"].pop(key.split(":", 1)[1], None)
        return None
    listing: dict[str, Any] = {full_key(k): {"value": str(v), "secret": False} for k, v in state["config"].items()}
    nested: dict[str, Any] = {}
    for key, value in secrets.items():
        top, *path = key.split(".")
        if not path:
            listing[top] = {"value": value, "secret": True}
            continue
        node = nested.setdefault(top, {})
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    for top, value in nested.items():
        listing[top] = {"value": json.dumps(value), "objectValue": value, "secret": True}
    return json.dumps(listing)


def apply(after: Plan, state: dict[str, Any], promoted: str) -> list[dict[str, Any]]:
    """Apply every secret changed since the last `up`: what was applied (type, name, inputs; never a value)."""
    import time

    secrets, applied = state.setdefault("secrets", {}), state.setdefault("appliedSecrets", {})
    changed = {key: value for key, value in secrets.items() if applied.get(key) != value}
    done = []
    for key, value in sorted(changed.items()):
        for resource_type, name, apply_one in _holders(after, key, promoted):
            apply_one(state, value)
            done.append({"type": resource_type, "name": name, "inputs": ["secretData" if "secret" in resource_type
                                                                         else "value"], "at": time.monotonic()})
    state["appliedSecrets"] = dict(secrets)
    return done


def _holders(plan: Plan, key: str, promoted: str) -> list[tuple[str, str, Any]]:
    """(type, resource name, applier) of each resource of `plan` that holds config `key`."""
    from tools.offline import unwrap

    own = key.removeprefix(f"{PROJECT}:")
    found: list[tuple[str, str, Any]] = []
    top, _, rest = own.partition(".")
    suffix = JOB_SECRETS.get(own)
    for resource in plan.resources:
        inputs = unwrap(resource.inputs)
        if resource.type == ResourceType.SECRET:
            secret_id = str(inputs.get("secretId"))
            holds = (suffix is not None and secret_id.endswith(suffix) and not (
                suffix == "-database-url" and secret_id.endswith("-scratch-database-url"))) or (
                top == "configVaultSecrets" and secret_id == rest.lower().replace("_", "-"))
            if holds:
                policy = deletion_policy(plan, f"{resource.name}-value")
                found.append((ResourceType.SECRET_VERSION, f"{resource.name}-value",
                              _add_version(str(inputs.get("project")), secret_id, policy)))
        elif resource.type == ResourceType.VERCEL_VARIABLE and top == "vercelSecretValues":
            name, _, site = rest.rpartition(".")
            if inputs.get("key") == name and site == SITES.get(promoted, "primary"):
                found.append((ResourceType.VERCEL_VARIABLE, resource.name, _vercel(inputs)))
    return found


def deletion_policy(plan: Plan, version: str) -> str:
    """The `deletionPolicy` the plan gives SecretVersion `version` (pulumi-gcp's default: DELETE)."""
    from tools.offline import unwrap

    found = next((r for r in plan.resources if r.type == ResourceType.SECRET_VERSION and r.name == version), None)
    return str(unwrap(found.inputs).get("deletionPolicy") or "DELETE") if found else "DELETE"


def _add_version(project: str, secret: str, policy: str) -> Any:
    def add(state: dict[str, Any], value: str) -> None:
        base = os.environ.get(secret_manager.URL_VARIABLE)
        if not base:
            raise UpError(f"secret {secret}: no Secret Manager to add its version to (${secret_manager.URL_VARIABLE})")
        token, path = os.environ.get(secret_manager.TOKEN_VARIABLE, ""), f"/v1/projects/{project}/secrets/{secret}"
        added = call(base, token, "POST", f"{path}:addVersion",
                     {"payload": {"data": base64.b64encode(value.encode()).decode()}})
        # Create before delete, as Pulumi replaces: the resource's old version is the one before the new.
        old = int(str(added["name"]).rsplit("/", 1)[1]) - 1
        verb = {"DELETE": "destroy", "DISABLE": "disable"}.get(policy)
        if verb and old >= 1:
            call(base, token, "POST", f"{path}/versions/{old}:{verb}", {})
    return add


def _vercel(inputs: dict[str, Any]) -> Any:
    def patch(state: dict[str, Any], value: str) -> None:
        from tools.drill.pulumi_apply import _Applier

        _Applier(state).vercel({**inputs, "value": value})
    return patch

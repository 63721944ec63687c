"""The one module that uses the Pulumi SDK's internals: what the offline plan and the config check need that the
SDK's public testing API does not give.

Supported SDK: `pulumi>=3.272,<4` (SUPPORTED_PULUMI, the range requirements.txt pins). tests/program/
test_pulumi_sdk.py pins every behaviour listed below, and `make test-sdk-newest` runs the tests that go through
the offline plan against the newest SDK of that range, so an upgrade that breaks one fails there first.

Public API the offline plan uses instead (tools/offline.py, tools/offline_mocks.py, and components/config/
loading.py; see https://www.pulumi.com/docs/iac/concepts/testing/unit/): `pulumi.runtime.set_mocks`,
`pulumi.runtime.test` (runs a function as the language host runs a program, then waits for every registration
and output it started), `pulumi.runtime.Mocks` (`new_resource` with `MockResourceArgs`, `call` with
`MockCallArgs`, `register_transform` to collect the stack's transforms), `pulumi.runtime.set_all_config`,
`pulumi.runtime.get_config_env`, `pulumi.runtime.is_config_secret`, `pulumi.Output.is_secret` and `apply`,
`pulumi.ResourceTransformArgs` and `ResourceTransformResult`.

Internals used here, and why each is needed:

- `pulumi.runtime.mocks.MockMonitor`, subclassed (`RegisterResource`, `ReadResource`, `make_urn`), passed to
  `set_mocks(monitor=...)`: `MockResourceArgs` carries a resource's type, name, inputs, provider, import id,
  custom flag and own transforms only. A plan records what the engine receives besides: the URN, the parent,
  `protect`, the dependencies, the aliases, `ignore_changes`, `retain_on_delete`.
- The request protobufs' fields (`RegisterResourceRequest`: `type`, `name`, `parent`, `custom`, `object`,
  `protect`, `dependencies`, `importId`, `aliases`, `ignoreChanges`, `retainOnDelete`; `ReadResourceRequest`:
  `type`, `name`, `parent`, `properties`, `dependencies`; an alias's `alias` oneof of `urn` and `spec`, the spec's
  `name`, `type`, `stack`, `project`, `parentUrn`, `noParent`): where those options arrive.
- `pulumi.runtime.rpc.deserialize_properties`: a request's property struct in the form the mocks get it (secrets
  as Pulumi's signature maps).
- `MockMonitor.make_urn`, overridden: the mock keeps only the parent's last type and prefixes
  `pulumi:pulumi:Stack$`; the engine's URN has the parent's whole type chain, which `pulumi up --target` and
  aliases built from the plan need.
- The SDK calls the monitor from executor threads and gives each one an event loop it never closes
  (`sync_await._ensure_event_loop`): the monitor makes them first, so the run can close them.
- `pulumi.runtime.config.CONFIG`: the whole config map the engine (or `set_all_config`) handed the program. The
  SDK has no public way to list it (`pulumi.Config` reads one key at a time; a public config API for tests is
  https://github.com/pulumi/pulumi/issues/16042), and the config check needs every key, to name the ones it does
  not know.
- The root stack's `outputs` (`pulumi.runtime.stack.Stack`, from `pulumi.runtime.get_root_resource()`): what the
  program exported. `set_mocks` registers the stack's outputs before the program runs, so the monitor never sees
  them.
- `pulumi_policy.deserialize.deserialize_properties` (pulumi-policy, `>=1.21,<2` in requirements.txt; not in its
  `__all__`): the form in which the policy engine hands a rule a resource's properties, so tools.policy_check
  gives the pack the plan's inputs as `pulumi preview --policy-pack` would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.config import CONFIG
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import Stack
from pulumi_policy.deserialize import deserialize_properties as _policy_deserialize

from core.contracts import ResourceType

SUPPORTED_PULUMI = ">=3.272,<4"
"""The SDK versions this module is written against (requirements.txt's range for `pulumi`)."""


def policy_properties(inputs: dict[str, Any]) -> Any:
    """A resource's recorded inputs as the policy engine hands them to a rule (secrets unwrapped, as it does)."""
    return _policy_deserialize(inputs)


@dataclass
class Registration:
    """One resource as the engine receives it from the program."""

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


def explicit_config() -> dict[str, Any]:
    """The config map set for this run (by the language host, or `pulumi.runtime.set_all_config`)."""
    return dict(CONFIG.get())


def stack_exports() -> dict[str, Any]:
    """What the running program exported (`pulumi.export`), by name, as it passed them (outputs unresolved)."""
    root = pulumi.runtime.get_root_resource()
    if not isinstance(root, Stack):
        raise RuntimeError("the program ran without a root stack resource to read its outputs from")
    return dict(root.outputs)


class RecordingMonitor(MockMonitor):
    """The mocks' monitor, handing every registration and read to `registered` / `read` as a Registration with the
    engine's URN, after the mocks answered it."""

    def __init__(self, mocks: pulumi.runtime.Mocks, registered: Callable[[Registration], None],
                 read: Callable[[Registration], None]):
        super().__init__(mocks)
        self._registered, self._read = registered, read
        self._thread_loops: list[asyncio.AbstractEventLoop] = []

    def close(self) -> None:
        """Close the event loops made for the SDK's executor threads."""
        for loop in self._thread_loops:
            loop.close()
        self._thread_loops.clear()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # pkg/resource/deploy Deployment.generateURN: the parent's whole type chain, then the resource's type; the
        # root stack adds nothing.
        qualified = parent.split("::")[2] if parent else ""
        if qualified and qualified != ResourceType.STACK:
            type_ = f"{qualified}${type_}"
        return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

    def _thread_loop(self) -> None:
        try:
            asyncio.get_event_loop()
        except RuntimeError:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._thread_loops.append(loop)

    def RegisterResource(self, request):
        self._thread_loop()
        response = super().RegisterResource(request)
        if request.type != ResourceType.STACK:
            self._registered(Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                protect=bool(request.protect),
                custom=bool(request.custom),
                inputs=rpc.deserialize_properties(request.object),
                dependencies=sorted(set(request.dependencies)),
                import_id=request.importId or None,
                aliases=[_alias(alias) for alias in request.aliases],
                ignore_changes=list(request.ignoreChanges),
                retain_on_delete=bool(request.retainOnDelete),
            ))
        return response

    def ReadResource(self, request):
        # StackReferences are reads of another stack's outputs, registered through here.
        self._thread_loop()
        response = super().ReadResource(request)
        self._read(Registration(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            protect=False,
            custom=True,
            inputs=rpc.deserialize_properties(request.properties),
            dependencies=sorted(set(request.dependencies)),
        ))
        return response


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

"""Run the real program under Pulumi's mocks and record what it provisions.

`plan_stack("dr")` reads `Pulumi.yaml` and `Pulumi.dr.yaml`, runs `__main__.py` with that config as
`pulumi.runtime.test` runs a program under `pulumi.runtime.set_mocks` (waiting for every registration it started),
and returns a `Plan`: every resource the program registered, with its URN, parent, `protect` flag and inputs in
the engine's camelCase form, and the stack outputs. A StackReference to another stack of this project is fed the
outputs of an offline plan of that stack. `secure:` values cannot be decrypted without the stack's secrets
provider, so the program sees a placeholder marked as a secret, and recorded secret inputs keep Pulumi's secret
signature. What the public testing API does not give (the options the engine receives, the exports) comes from
components.pulumi_internals, the one module that uses the SDK's internals.

Each run happens in a fresh `contextvars.Context`, so plans of several stacks can
be made in one process without Pulumi's global state leaking between them.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import runpy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.pulumi_internals import Registration
from core.resource_types import ResourceType
from tools.config_paths import apply_override, parse_config_path, set_config_path  # noqa: F401 - re-exported
from tools.stack_files import (
    PROJECT,
    SECRET_PLACEHOLDER,
    StackFileError,
    config_string,
    namespaced,
    plain_secret_problems,
    read_stack_config,
)

ROOT = Path(__file__).resolve().parent.parent

# Pulumi's property-map signatures: a map holding SIG_KEY: SECRET_SIG is a secret.
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
STACK_REFERENCE_TYPE = ResourceType.STACK_REFERENCE


@dataclass
class Resource(Registration):
    """One resource the program registered, as the engine receives it."""

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
        """Resources of one type token, in URN order."""
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


def _resolved_exports() -> dict[str, Any]:
    """The stack's exports as plain values; a secret export becomes the placeholder."""
    import pulumi

    from components.pulumi_internals import stack_exports

    exports = stack_exports()
    resolved: dict[str, Any] = {}

    def keep(name: str, plain: Any) -> None:
        resolved[name] = plain

    async def resolve() -> None:
        for name, value in exports.items():
            output = pulumi.Output.from_input(value)
            if await output.is_secret():
                resolved[name] = {SIG_KEY: SECRET_SIG, "value": SECRET_PLACEHOLDER}
            else:
                output.apply(functools.partial(keep, name))

    pulumi.runtime.test(resolve)()
    # An export whose value never became known (none does offline: the mocks answer every create) is null.
    return {name: resolved.get(name) for name in exports}


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

        # A loop of this run's own, closed on every way out: one left for the garbage collector at interpreter
        # exit sometimes prints "Exception ignored in BaseEventLoop.__del__" with a traceback.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        records: list[Resource] = []
        from tools.offline_mocks import build_mocks  # imports this module: not at its top

        mocks, monitor = build_mocks(stack_outputs or {}, records)
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
        pulumi.runtime.set_all_config({k: config_string(v) for k, v in (values or {}).items()}, sorted(secret_keys))
        try:
            # Runs `build` as the language host runs a program, then waits for every registration it started.
            pulumi.runtime.test(build)()
            # In URN order: the order of registration varies from run to run (resources waiting on the same
            # one register as the SDK's threads finish), and a plan must read the same every time it is made.
            return Plan(stack=stack, resources=sorted(records, key=lambda r: r.urn), outputs=_resolved_exports())
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
            monitor.close()

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
    """Full names of the stacks this config references (the standby site's `standby.prodStack`)."""
    from components.config.legacy import primary_stack_reference
    from components.config.loading import own_values

    try:
        reference = primary_stack_reference(own_values(values))
    except ValueError:  # a key set in both layouts: validation names it
        return []
    return [reference] if reference else []


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
            flat = f"{PROJECT}:prodStack"
            key = flat if flat in values else f"{PROJECT}:standby.prodStack"
            given = any(namespaced(o.partition("=")[0]) == key for o in overrides)
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

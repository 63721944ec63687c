"""Loading: raw config from the Pulumi runtime (or a stack file), validated into a StackConfig."""

from __future__ import annotations

import json
from collections.abc import Set as AbstractSet
from typing import Any

import pulumi
from pydantic import ValidationError

from core.paths import lookup

from .. import defaults
from ..pulumi_internals import explicit_config
from .base import NAMESPACE, ConfigError
from .errors import describe
from .legacy import flat_layout
from .secrets import RequiredSecret, missing_secrets_message, required_secrets, secret_paths
from .stack import StackConfig


def _runtime_config() -> tuple[dict[str, Any], set[str]]:
    """All config values the engine (or the offline plan) handed the program, and the secret keys."""
    values = {**pulumi.runtime.get_config_env(), **explicit_config()}
    return values, {key for key in values if pulumi.runtime.is_config_secret(key)}


def decode(value: Any) -> Any:
    """Config values arrive as strings; objects and lists as JSON text."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def own_values(values: dict[str, Any]) -> dict[str, Any]:
    """The project's own keys of raw config `values` (full `ns:key` names), JSON objects decoded."""
    prefix = f"{NAMESPACE}:"
    return {key[len(prefix):]: decode(value) for key, value in values.items() if key.startswith(prefix)}


def missing_secrets(values: dict[str, Any]) -> list[RequiredSecret]:
    """The secrets raw config `values` needs and lacks; empty when the config is invalid (that error comes first)."""
    own = own_values(values)
    try:
        config = StackConfig.model_validate(own)
    except ValidationError:
        return []
    return [secret for secret in required_secrets(config) if lookup(own, secret.path) is None]


def unknown_namespace(full_key: str) -> str | None:
    """The problem with a config key (`ns:key`) whose namespace is neither this project's, a provider's nor an
    operator tool's (defaults.TOOL_NAMESPACES): None when it has none."""
    namespace = full_key.partition(":")[0]
    if namespace in (NAMESPACE, *defaults.PROVIDER_NAMESPACES, *defaults.TOOL_NAMESPACES):
        return None
    return (f"{full_key}: unknown namespace '{namespace}'; use {NAMESPACE}: for this project's keys "
            f"or one of {', '.join(defaults.PROVIDER_NAMESPACES)} for provider settings")


def parse_stack_config(stack: str, values: dict[str, Any], secret_keys: AbstractSet[str] = frozenset()) -> StackConfig:
    """Validate raw config `values` (full `ns:key` names) of `stack`; raise ConfigError naming each bad key."""
    source = f"Pulumi.{stack}.yaml"
    problems = []
    own: dict[str, Any] = {}
    for full_key, value in sorted(values.items()):
        namespace, _, key = full_key.partition(":")
        if namespace == NAMESPACE:
            own[key] = decode(value)
        elif (problem := unknown_namespace(full_key)) is not None:
            problems.append(problem)
    config = None
    try:
        config = StackConfig.model_validate(own)
    except ValidationError as exc:
        problems.extend(describe(error, secret_keys) for error in exc.errors())
    if config is not None:
        for path in secret_paths(config):
            top = path.split(".")[0]
            if f"{NAMESPACE}:{top}" not in secret_keys:
                problems.append(
                    f"{NAMESPACE}:{path}: holds a secret, so it must be set with "
                    f"`pulumi config set --secret --path {NAMESPACE}:{path}`, never in plain text"
                )
        missing = [secret for secret in required_secrets(config) if lookup(own, secret.path) is None]
        if missing:
            problems.append(missing_secrets_message(stack, missing))
    if problems or config is None:  # no config without problems: a ValidationError has at least one error
        raise ConfigError(f"invalid stack config in {source}:\n  " + "\n  ".join(problems))
    return config


def load_stack_config() -> StackConfig:
    """Read and validate the running stack's config; raise ConfigError before any resource exists."""
    values, secret_keys = _runtime_config()
    config = parse_stack_config(pulumi.get_stack(), values, secret_keys)
    moved = flat_layout(own_values(values))
    if moved:
        pulumi.log.warn(f"the config of stack {pulumi.get_stack()} (its stack file, or a --set path) uses the layout "
                        "before per-site sections; it still works, but move these keys (README: Migrating a stack "
                        "file to the per-site sections): " + "; ".join(moved))
    return config


def _leaf_paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Paths of the values a stack file sets: every mapping key down to the values, also inside lists of
    mappings (such a list is a value too; a list of plain values counts as one value)."""
    if isinstance(value, dict) and value:
        return [path for key, item in value.items() for path in _leaf_paths(item, (*prefix, key))]
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return [prefix] + [path for index, item in enumerate(value) for path in _leaf_paths(item, (*prefix, index))]
    return [prefix]


def _without(values: Any, path: tuple[str | int, ...]) -> Any:
    """A copy of `values` without the key at `path`."""
    head, rest = path[0], path[1:]
    if isinstance(values, list):
        return [_without(item, rest) if index == head else item for index, item in enumerate(values)]
    if not rest:
        return {key: item for key, item in values.items() if key != head}
    return {**values, head: _without(values[head], rest)}


def restated_defaults(own: dict[str, Any], keep: AbstractSet[str] = frozenset()) -> list[str]:
    """Dotted keys of `own` (a stack file's own keys, decoded) that only repeat the default the model applies.

    A key restates its default when the stack config is the same without it. Top-level keys in `keep` are
    exempt (the keys Pulumi.yaml declares, such as the failover flag, are meant to be visible)."""
    config = StackConfig.model_validate(own)

    def same_without(path: tuple[str | int, ...]) -> bool:
        try:
            return StackConfig.model_validate(_without(own, path)) == config
        except ValidationError:  # the key is required
            return False

    return [".".join(map(str, path)) for path in _leaf_paths(own) if path[0] not in keep and same_without(path)]

"""`--set NS:KEY[.PATH]=VALUE` as `pulumi config set --path` applies it to a stack's raw config: `[N]` indexes a
list, `true`/`false` and integers are typed, and secret keys are refused (their value would be plain text)."""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from typing import Any

from tools.stack_files import (
    MAX_NESTING,
    PROJECT,
    SECRET_PLACEHOLDER,
    StackFileError,
    key_problem,
    namespaced,
    secret_command,
)

_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_INTEGER = re.compile(r"^-?[0-9]{1,18}$")


def parse_config_path(target: str) -> list[str | int]:
    """`standby.failover.hostnames[0].existingRecordId` as parts (`pulumi config set --path` syntax: [N] indexes a list)."""
    parts: list[str | int] = []
    position = 0
    for match in _PATH_PART.finditer(target):
        if match.start() != position + (1 if parts and target[position:match.start()] == "." else 0):
            break
        parts.append(int(match.group(2)) if match.group(2) is not None else match.group(1))
        position = match.end()
    if position != len(target) or not parts or not isinstance(parts[0], str):
        raise StackFileError(f"--set: '{target}' is not a config path; use KEY.SUB[INDEX].SUB, e.g. "
                             f"{PROJECT}:standby.failover.hostnames[0].ttlSeconds")
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

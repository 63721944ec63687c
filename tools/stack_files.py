"""Stack files read the way the Pulumi CLI reads them, so the offline plan refuses what `pulumi preview` refuses.

What the CLI checks before a program runs, and this module checks too:

- YAML that a strict reader accepts: UTF-8, a mapping at the top and under
  `config:`, string keys, no duplicate keys (the CLI refuses them) and no
  aliases (a few bytes of aliases can expand to gigabytes);
- the project's config declarations in `Pulumi.yaml`: a key with a `type` and
  no `default` is required in every stack, a stack's value must have the
  declared type, and only the project's own keys may declare a type;
- `secure:` values that the stack's secrets provider could decrypt: a stack
  file with ciphertexts must name its provider (`encryptionsalt`, or
  `secretsprovider` with `encryptedkey`) - without one only Pulumi Cloud's
  service provider is left - and each ciphertext must have that provider's
  shape. Offline nothing is decrypted: every `secure:` value reaches the
  program as a marked placeholder.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

PROJECT = "raptorflow-dr"
SECRET_PLACEHOLDER = "[secret]"

# Types a Pulumi.yaml config declaration may name, and the YAML values each accepts.
DECLARED_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
}
# Keys of a stack file that name its secrets provider.
PROVIDER_KEYS = ("encryptionsalt", "secretsprovider", "encryptedkey")
# AES-256-GCM as Pulumi's symmetric crypter uses it (passphrase and cloud-KMS providers): v1:<nonce>:<ciphertext>.
NONCE_BYTES = 12
GCM_TAG_BYTES = 16
# The expanded size a stack file may reach; aliases are refused, so this only bounds honest files.
MAX_STACK_FILE_BYTES = 1_000_000


class StackFileError(Exception):
    """A stack file (or Pulumi.yaml) that the Pulumi CLI would refuse, or a malformed override."""


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys and aliases."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "aliases (*name) are not accepted in stack files", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, f"keys must be strings; got {key!r}", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml_mapping(path: Path, shown: str | None = None) -> dict[str, Any]:
    """The mapping in `path`, read strictly; StackFileError naming the file (as `shown`) otherwise."""
    shown = shown or path.name
    raw = path.read_bytes()
    if len(raw) > MAX_STACK_FILE_BYTES:
        raise StackFileError(f"{shown} is {len(raw)} bytes; stack files here stay under {MAX_STACK_FILE_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StackFileError(f"{shown} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise StackFileError(f"{shown} is not valid YAML: {' '.join(str(exc).split())}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise StackFileError(f"{shown} must hold a mapping at the top (e.g. `config:`), not a {type(document).__name__}")
    return document


def namespaced(key: str) -> str:
    """`key` with the project's namespace when it has none, as the CLI reads it."""
    return key if ":" in key else f"{PROJECT}:{key}"


class ProjectConfig:
    """The `config:` declarations of Pulumi.yaml: defaults, required keys and declared types."""

    def __init__(self, project_file: Path):
        document = load_yaml_mapping(project_file)
        declarations = document.get("config") or {}
        if not isinstance(declarations, dict):
            raise StackFileError("Pulumi.yaml: `config:` must be a mapping of key to declaration")
        self.defaults: dict[str, Any] = {}
        self.required: set[str] = set()
        self.types: dict[str, str] = {}
        for key, declaration in declarations.items():
            full = namespaced(key)
            if not isinstance(declaration, dict):
                self.defaults[full] = declaration
                continue
            if "value" in declaration:
                self.defaults[full] = declaration["value"]
            if "type" not in declaration:
                continue
            if full.partition(":")[0] != PROJECT:
                raise StackFileError(
                    f"Pulumi.yaml: configuration key '{key}' is not namespaced by the project and should not "
                    "define a type"
                )
            if declaration["type"] not in DECLARED_TYPES:
                raise StackFileError(
                    f"Pulumi.yaml: configuration key '{key}' has type '{declaration['type']}'; "
                    f"one of {', '.join(DECLARED_TYPES)}"
                )
            self.types[full] = declaration["type"]
            if "default" in declaration:
                self.defaults[full] = declaration["default"]
            else:
                self.required.add(full)

    def problems(self, stack: str, values: dict[str, Any]) -> list[str]:
        """What the CLI would refuse in `values` (a stack's config, defaults applied)."""
        found = []
        missing = [f"'{key.partition(':')[2]}'" for key in sorted(self.required) if key not in values]
        if missing:
            # The CLI's own wording (sdk/go/common/workspace/config.go), then what to do about it.
            names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
            found.append(
                f"Stack '{stack}' is missing configuration value{'s' if len(missing) > 1 else ''} {names} "
                "(Pulumi.yaml declares a type and no default): set it in the stack file or give it a `default`"
            )
        for key, declared in sorted(self.types.items()):
            value = values.get(key)
            if value is not None and not _of_declared_type(value, declared):
                found.append(f"Stack '{stack}' with configuration key '{key.partition(':')[2]}' must be of type "
                             f"'{declared}'")
        return found


def _of_declared_type(value: Any, declared: str) -> bool:
    """Whether the CLI takes `value` as `declared`: `pulumi config set` stores scalars as strings ("true", "5")."""
    if declared == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if declared == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and value.lstrip("-").isdigit())
    return isinstance(value, DECLARED_TYPES[declared])


def secrets_provider(document: dict[str, Any]) -> str:
    """The provider that decrypts the stack file's `secure:` values: passphrase, a KMS URL, or service."""
    provider = document.get("secretsprovider")
    if isinstance(provider, str) and provider:
        return provider
    return "passphrase" if "encryptionsalt" in document else "service"


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _symmetric_ciphertext_problem(value: str) -> str | None:
    parts = value.split(":")
    if len(parts) != 3 or parts[0] != "v1":
        return "it is not of the form v1:NONCE:CIPHERTEXT"
    nonce, sealed = _b64(parts[1]), _b64(parts[2])
    if nonce is None or len(nonce) != NONCE_BYTES:
        return f"its nonce is not {NONCE_BYTES} base64-encoded bytes"
    if sealed is None or len(sealed) < GCM_TAG_BYTES:
        return f"its ciphertext is not base64 of at least {GCM_TAG_BYTES} bytes (an AES-GCM tag)"
    return None


def ciphertext_problem(provider: str, value: Any) -> str | None:
    """Why `provider` could not decrypt `value`, or None when it has the provider's shape."""
    if not isinstance(value, str) or not value:
        return "it is not a string"
    if provider == "service":
        if value.startswith("v1:") or _b64(value) is None:
            return ("the stack file names no secrets provider, so only Pulumi Cloud's service provider could "
                    "decrypt it, and its ciphertexts are plain base64")
        return None
    return _symmetric_ciphertext_problem(value)


def secure_leaves(value: Any, path: str) -> list[tuple[str, Any]]:
    """(dotted path, ciphertext) of every `{secure: ...}` at any depth of `value`."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return [(path, value["secure"])]
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in secure_leaves(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in secure_leaves(v, f"{path}[{i}]")]
    return []


def plain_leaves(value: Any, path: str) -> list[str]:
    """Dotted paths of the values inside `value` that are not `{secure: ...}`."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return []
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in plain_leaves(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in plain_leaves(v, f"{path}[{i}]")]
    return [path]


def _without_ciphertexts(value: Any) -> Any:
    """`value` with every `{secure: ...}` replaced by the placeholder the program sees offline."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {k: _without_ciphertexts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_ciphertexts(v) for v in value]
    return value


def read_stack_config(
    stack: str, root: Path, stack_file: Path | None = None
) -> tuple[dict[str, Any], set[str]]:
    """Config of `stack` as the CLI hands it to the program (project defaults, then the stack file), and its
    secret keys; StackFileError with the CLI's reason when the CLI would refuse the files."""
    path = stack_file or root / f"Pulumi.{stack}.yaml"
    shown = str(stack_file) if stack_file else path.name
    if not path.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise StackFileError(f"no stack file {shown}; stacks here: {', '.join(known) or 'none'}")
    project = ProjectConfig(root / "Pulumi.yaml")
    document = load_yaml_mapping(path, shown)
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{shown}: `config:` must be a mapping of key to value")
    provider = secrets_provider(document)
    problems: list[str] = []
    values: dict[str, Any] = dict(project.defaults)
    secret_keys: set[str] = set()
    from components.config import secret_keys_of_model

    secret_maps = {f"{PROJECT}:{key}" for key in secret_keys_of_model()}
    for key, value in config.items():
        full = namespaced(key)
        leaves = secure_leaves(value, full)
        if full in secret_maps and isinstance(value, (dict, list)) and leaves:
            # The CLI hands the program the whole map as one secret: a plain value inside would pass unseen.
            problems.extend(f"{where}: is plain text inside the secret map {full}; set it with "
                            f"`pulumi config set --secret --path '{where.partition(':')[2]}'`"
                            for where in plain_leaves(value, full))
        for where, ciphertext in leaves:
            reason = ciphertext_problem(provider, ciphertext)
            if reason:
                problems.append(f"{where}: the `secure:` value cannot be decrypted: {reason}; "
                                f"set it again with `pulumi config set --secret`")
        if leaves:
            # The CLI marks the whole top-level key secret when any value inside it is.
            secret_keys.add(full)
        values[full] = _without_ciphertexts(value)
    problems.extend(project.problems(stack, values))
    if problems:
        raise StackFileError(f"{shown} would be refused by the Pulumi CLI:\n  " + "\n  ".join(problems))
    return values, secret_keys


def config_string(value: Any) -> str:
    """A YAML config value as the engine hands it to a program (objects as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)

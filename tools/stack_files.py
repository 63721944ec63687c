"""Stack files read the way the Pulumi CLI reads them, so the offline plan refuses what `pulumi preview` refuses.

What the CLI checks before a program runs, and this module checks too:

- YAML read as the CLI reads it: the CLI loads stack files with gopkg.in/yaml.v3
  (pulumi/pulumi sdk/go/common/encoding/marshal.go, called by
  `LoadProjectStackBytes` in sdk/go/common/workspace/loaders.go), whose YAML 1.2
  scalar resolution (yaml.v3 resolve.go) this module's loader follows instead
  of PyYAML's YAML 1.1: `12:30`, `yes`, `on` are strings, `0o14` and `0X1F`
  are ints, `010` is still octal 8 (yaml.v3 keeps 1.1 octals), `1e3` is a float;
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
  program as a marked placeholder;
- keys as `config.ParseKey` reads them: a bare key is the project's,
  `ns:config:name` is `ns:name`, and other keys with colons are refused.

What the CLI would read otherwise than the file says, refused here in one line
naming the file and the key: one key spelled twice (`promoted` and
`raptorflow-dr:promoted`: the CLI keeps either, by Go map order), nesting deeper
than MAX_NESTING, tags beyond the YAML 1.2 core schema (`!!binary`, `!!set`,
local tags), an explicit core tag its text does not fit (the CLI's "cannot
decode"), unquoted timestamps (the program would get Go's time rendering),
`.inf`/`.nan` (config travels as JSON) and `<<` merge keys. Secret keys hold
`secure:` values only: plain text inside a secret map here, a secret key with
no `secure:` value at all in `plain_secret_problems` (the plan refuses both;
tools.secrets reads such a file to replace them).
"""

from __future__ import annotations

import base64
import binascii
import decimal
import json
from pathlib import Path
from typing import Any

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
from tools.stack_yaml import (  # noqa: E402,F401 - the YAML layer, re-exported for the callers of this module
    MAX_NESTING,
    MAX_STACK_FILE_BYTES,
    PROJECT,
    StackFileError,
    dump_yaml,
    go_yaml_resolve,
    load_yaml_mapping,
    namespaced,
)


def key_problem(key: str) -> str | None:
    """The CLI's reason to refuse a config key (`config.ParseKey`, sdk/go/common/resource/config/key.go), or None."""
    if key.count(":") <= 1 or (key.count(":") == 2 and key.split(":")[1] == "config"):
        return None
    return (f"could not parse {key} as a configuration key "
            "(configuration keys should be of the form `<namespace>:<name>`)")


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


def plain_secret_problems(values: dict[str, Any], stack: str) -> list[str]:
    """Every plain value under a secret key of the model in `values` (full keys to values as the stack file has
    them, `secure:` included), each with the command that sets it as a secret; never the value."""
    from components.config import secret_keys_of_model

    problems = []
    for key in sorted(f"{PROJECT}:{name}" for name in secret_keys_of_model()):
        for where in plain_leaves(values[key], key) if key in values else ():
            problems.append((f"{where}: is plain text, not a `secure:` value, and holds a secret" if where == key else
                             f"{where}: is plain text inside the secret map {key}")
                            + f"; set it with `{secret_command(where, stack)}`")
    return problems


def secret_command(key: str, stack: str) -> str:
    """The CLI command that sets the secret `key` (`ns:key[.path]`) of `stack`, prompting for its value."""
    from components.config import RequiredSecret

    return RequiredSecret(key.removeprefix(f"{PROJECT}:"), "").command(stack)


def _without_ciphertexts(value: Any) -> Any:
    """`value` with every `{secure: ...}` replaced by the placeholder the program sees offline."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {k: _without_ciphertexts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_ciphertexts(v) for v in value]
    return value


# `deploy` settings that tools.adopt gives one run through a temporary copy of the stack file, and what they would
# do if left on in the stack file itself.
ONE_RUN_FLAGS = {
    "adopting": "adopted records and variables would ignore every later change, a failover among them",
    "rebuild": "every run would try to import what a teardown kept",
}


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

    secret_maps = {f"{PROJECT}:{key}" for key in secret_keys_of_model()}  # every key the model holds secrets in
    spelled: dict[str, str] = {}
    for key, value in config.items():
        full = namespaced(key)
        if full in spelled:
            raise StackFileError(
                f"{shown}: {full} is set twice, as `{spelled[full]}` and `{key}`: the Pulumi CLI reads both as "
                f"{full} and keeps either value (Go's map order decides); keep one")
        spelled[full] = key
        if full == f"{PROJECT}:deploy" and isinstance(value, dict):
            for flag in ONE_RUN_FLAGS:
                if value.get(flag) not in (None, False):
                    raise StackFileError(f"{shown}: {key}.{flag} is set only by `python -m tools.adopt` for one run, "
                                         f"never in a stack file (left on, {ONE_RUN_FLAGS[flag]}); remove it")
        if key_problem(key):
            problems.append(f"{key}: {key_problem(key)}")
            continue
        leaves = secure_leaves(value, full)
        if full in secret_maps and leaves:
            # The CLI hands the program the whole map as one secret: a plain value inside would pass unseen. (A
            # secret key with no `secure:` value at all is for plain_secret_problems: tools.secrets reads such
            # a file to replace them.)
            problems.extend(plain_secret_problems({full: value}, stack))
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


def _go_json_numbers(value: Any) -> Any:
    """`value` with each integral float as the int Go's json.Marshal writes for it (`30`, not `30.0`; below 1e21 Go
    writes a float64 in positional notation), so the program decodes what it would get from the CLI."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(decimal.Decimal(repr(value)))  # the shortest digits, as Go's 'f' format with precision -1
    if isinstance(value, dict):
        return {k: _go_json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_json_numbers(v) for v in value]
    return value


def config_string(value: Any) -> str:
    """A YAML config value as the engine hands it to a program (objects as JSON, numbers as Go writes them)."""
    value = _go_json_numbers(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)

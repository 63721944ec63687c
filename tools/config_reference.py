"""The stack-file JSON Schema, generated from the config model so that it cannot drift from it.

    python -m tools.config_reference           # write docs/stack-config.schema.json
    python -m tools.config_reference --check   # exit 1 when the committed copy differs from the model

The schema describes a whole `Pulumi.<stack>.yaml`: the project's keys under `config:` with their
`raptorflow-dr:` namespace, provider keys (`gcp:`, `cloudflare:`, `vercel:`), the secrets-provider keys,
and secret keys as `{secure: ...}` values, as `pulumi config set --secret [--path]` writes them. Editors
that speak JSON Schema (the YAML language server) use it through the comment at the top of each stack file.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from components import defaults
from components.stack_config import NAMESPACE, StackConfig, secret_keys_of_model
from tools.offline import ROOT

SCHEMA_PATH = ROOT / "docs" / "stack-config.schema.json"
SECURE = {"type": "object", "properties": {"secure": {"type": "string"}}, "required": ["secure"],
          "additionalProperties": False, "description": "A value encrypted by the stack's secrets provider."}


def stack_file_schema() -> dict[str, Any]:
    """The JSON Schema of a stack file, from StackConfig."""
    model = StackConfig.model_json_schema(by_alias=True)
    definitions = {**model.pop("$defs"), "Secure": SECURE}
    secret_map: dict[str, Any] = {"anyOf": [{"$ref": "#/$defs/Secure"}, {
        "type": "object", "additionalProperties": {"anyOf": [
            {"$ref": "#/$defs/Secure"}, {"type": "object", "additionalProperties": {"$ref": "#/$defs/Secure"}}]}}]}
    secrets = secret_keys_of_model()
    properties = {
        f"{NAMESPACE}:{key}": ({**secret_map, "description": schema.get("description", "")} if key in secrets else schema)
        for key, schema in model["properties"].items()
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Pulumi.<stack>.yaml of {NAMESPACE}",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": properties,
                "required": [f"{NAMESPACE}:{key}" for key in model.get("required", [])],
                "patternProperties": {f"^({'|'.join(defaults.PROVIDER_NAMESPACES)}):": {}},
                "additionalProperties": False,
            },
            "encryptionsalt": {"type": "string"},
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
        },
        "additionalProperties": False,
        "$defs": definitions,
    }


def rendered() -> str:
    """The schema as committed: sorted keys, two-space indent, a final newline."""
    return json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.config_reference`."""
    parser = argparse.ArgumentParser(prog="python -m tools.config_reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed schema differs from the model")
    args = parser.parse_args(argv)
    text = rendered()
    if args.check:
        current = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"error: {SCHEMA_PATH.relative_to(ROOT)} differs from the config model; "
                  "run `python -m tools.config_reference` and commit it", file=sys.stderr)
            return 1
        print(f"{SCHEMA_PATH.relative_to(ROOT)} matches the config model")
        return 0
    SCHEMA_PATH.write_text(text)
    print(f"wrote {SCHEMA_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

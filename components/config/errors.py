"""Rendering of validation errors: the key, what is wrong and what is allowed; never a secret's value."""

from __future__ import annotations

import types
from collections.abc import Set as AbstractSet
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from .base import NAMESPACE, sections
from .secrets import secret_keys_of_model
from .site_sections import SITE_SECTIONS, site_of_key
from .stack import StackConfig

MAX_SHOWN_CHARS = 80


def describe(error: ErrorDetails, secret_keys: AbstractSet[str]) -> str:
    location = ".".join(str(part) for part in error["loc"])
    key = f"{NAMESPACE}:{location}" if location else NAMESPACE
    if error["type"] == "extra_forbidden":
        owner = _other_site_owning(error["loc"])
        if owner:
            return f"{key}: belongs to the `{owner}` section of a {owner} stack, not here"
        return f"{key}: is not a known key; allowed here: {', '.join(_allowed_keys(error['loc'][:-1]))}"
    message = error["msg"].removeprefix("Value error, ")
    shown = error.get("input")
    top = str(error["loc"][0]) if error["loc"] else ""
    secret = top in secret_keys_of_model() or f"{NAMESPACE}:{top}" in secret_keys
    if secret:
        # A validator's own message may quote the value: say only what is wrong.
        message = "invalid value (not shown: it is a secret)" if error["type"] == "value_error" else message
    elif error["type"] not in ("missing", "model_type", "value_error") and not isinstance(shown, (dict, list)):
        text = repr(shown)
        message += f" (got {text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + '...'})"
    return f"{key}: {message}"


def _other_site_owning(location: tuple) -> str | None:
    """The other site whose section holds an unknown key of one site's section (`primary.prodStack`)."""
    if len(location) != 2 or location[0] not in SITE_SECTIONS:
        return None
    owner = site_of_key().get(str(location[1]))
    return owner if owner != location[0] else None


def _step(annotation: Any, part: str | int) -> Any:
    """The type found at `part` of a value of type `annotation`: a field of a section, a list element or a map
    value (None when there is nothing there)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = {field.alias or name: field for name, field in annotation.model_fields.items()}
        return fields[part].annotation if part in fields else None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return next((found for arg in args if arg is not type(None) and (found := _step(arg, part)) is not None), None)
    if origin is dict:
        return args[1]
    if origin in (list, tuple) and args:
        return args[0]
    return None


def _allowed_keys(location: tuple) -> list[str]:
    """The keys the config section at `location` accepts (for an unknown-key message)."""
    annotation: Any = StackConfig
    for part in location:
        annotation = _step(annotation, part)
    found = sections(annotation)
    return sorted(field.alias or name for name, field in found[0].model_fields.items()) if found else []

"""The dotted-path lookup over a resource's inputs (`template.template.containers.0.image`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def lookup(props: Mapping[str, Any], dotted: str, default: Any = None,
           stop: Callable[[Any], bool] | None = None) -> Any:
    """props['a'][0]['b'] for 'a.0.b', or `default` when a step is missing; a node for which `stop` holds (a
    secret, say) is returned as it is, without looking inside."""
    node: Any = props
    for part in dotted.split("."):
        if stop is not None and stop(node):
            return node
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return default
    return node

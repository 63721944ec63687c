"""RecoveryObjectives: the stack's declared objectives and capabilities, as a resource policies can read.

Nothing is provisioned: PITR and a cross-region database replica are Supabase
add-ons the program cannot create, and objectives are targets. Carrying them
as the properties of a component puts them next to the resources they are
checked against - in the offline plan, and in what CrossGuard's stack policies
receive under the real engine - so the objectives rule can compute the
worst-case recovery point from what is provisioned and compare. `undeclaredFigures` names the figures the stack
file leaves to the plan's default, which the readiness report may take from the newest drill instead
(core/recovery_learned.py).
"""

from __future__ import annotations

from typing import Any

import pulumi
from pydantic import BaseModel

from core.contracts import ResourceType
from core.recovery_learned import LEARNABLE, UNDECLARED

from .config import RecoverySettings


class RecoveryObjectives(pulumi.ComponentResource):
    """A declaration: the site, its objectives per scenario and its recovery capabilities."""

    def __init__(self, name: str, site: str, settings: RecoverySettings, opts: pulumi.ResourceOptions | None = None):
        declared: dict[str, Any] = {"site": site, **settings.model_dump(by_alias=True, mode="json"),
                                    UNDECLARED: undeclared(settings)}
        super().__init__(ResourceType.RECOVERY_OBJECTIVES, name, declared, opts)
        self.register_outputs(declared)


def undeclared(settings: BaseModel) -> list[str]:
    """The learnable figures (core/recovery_learned.py) the stack file leaves to the default: the model may take
    them from the newest drill instead."""
    left = []
    for learnable in LEARNABLE:
        node = settings
        for part in learnable.path.split("."):
            name = next(n for n, f in type(node).model_fields.items() if (f.alias or n) == part)
            if name not in node.model_fields_set:
                left.append(learnable.path)
                break
            node = getattr(node, name)
    return left

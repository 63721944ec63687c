"""RecoveryObjectives: the stack's declared objectives and capabilities, as a resource policies can read.

Nothing is provisioned: PITR and a cross-region database replica are Supabase
add-ons the program cannot create, and objectives are targets. Carrying them
as the properties of a component puts them next to the resources they are
checked against - in the offline plan, and in what CrossGuard's stack policies
receive under the real engine - so the objectives rule can compute the
worst-case recovery point from what is provisioned and compare.
"""

from __future__ import annotations

from typing import Any

import pulumi

from core.contracts import ResourceType

from .config import RecoverySettings


class RecoveryObjectives(pulumi.ComponentResource):
    """A declaration: the site, its objectives per scenario and its recovery capabilities."""

    def __init__(self, name: str, site: str, settings: RecoverySettings, opts: pulumi.ResourceOptions | None = None):
        declared: dict[str, Any] = {"site": site, **settings.model_dump(by_alias=True, mode="json")}
        super().__init__(ResourceType.RECOVERY_OBJECTIVES, name, declared, opts)
        self.register_outputs(declared)

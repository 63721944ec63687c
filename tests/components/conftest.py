"""Component tests: each component built alone with minimal Args under Pulumi's mocks - fast, and independent
of the repo's stack files (the whole-program tests beside them use those)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tools.offline import Plan, record_resources


@pytest.fixture
def record() -> Callable[[Callable[[], None]], Plan]:
    """Run `build` (which creates components) under the mocks; return what it registered."""

    def run(build: Callable[[], None]) -> Plan:
        return record_resources(build, "component-test")

    return run


def depends_on(plan: Plan, name: str, other: str) -> bool:
    """Whether resource `name` waits for resource `other` (directly)."""
    return plan.named(other).urn in plan.named(name).dependencies

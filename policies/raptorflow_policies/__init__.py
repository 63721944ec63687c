"""raptorflow-dr's CrossGuard rules, one module per rule under `rules/`, each with its failing fixtures.

A rule module declares `POLICY` (the rule), `WEAKENINGS` (how the repo's compliant plans are weakened to break
it, and exactly what it then says) and, where the repo's plans break it on purpose, `COMPLIANT` (the stack
overrides that comply). `POLICIES` - what the pack enforces - is every module found there, so adding a rule is
adding its module. Building a PolicyPack (policies/__main__.py) starts a server, so nothing here does it. The
rules share the program's pure core (core/: the plan's limits, regions, the dotted-path lookup, the recovery
model).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from . import rules


def rule_modules() -> list[ModuleType]:
    """Every rule module, by name."""
    return [importlib.import_module(f"{rules.__name__}.{info.name}")
            for info in sorted(pkgutil.iter_modules(rules.__path__), key=lambda info: info.name)]


RULES = rule_modules()
POLICIES = [module.POLICY for module in RULES]

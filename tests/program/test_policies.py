"""The policy pack, rule by rule, from each rule module's own fixtures: the repo's compliant plans pass, and each
of the module's weakenings yields exactly its message. Adding a rule is adding its module; nothing here changes.

Fixtures are the resources the real program records for the repo's stack files (the compliant case), and
copies of them weakened as a rule module's `WEAKENINGS` say (the failing cases), evaluated in-process exactly
as the offline plan does.
"""

from __future__ import annotations

import ast
import copy
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from core.limits import SECONDS_PER_DAY
from core.paths import lookup
from policies.raptorflow_policies import POLICIES, RULES
from policies.raptorflow_policies._base import DELETE, Weakening
from tools.offline import ROOT, Plan, Resource
from tools.policy_check import evaluate

BY_MODULE = {module.__name__.rsplit(".", 1)[1]: module for module in RULES}


def _set(inputs: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    node = inputs
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        index = int(last)
        if value is DELETE:
            node.pop(index)
        elif index == len(node):
            node.append(value)
        else:
            node[index] = value
    elif value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value


def weakened(plan: Plan, weakening: Weakening) -> Plan:
    """`plan` weakened as `weakening` says (the plan itself is cached and never changed)."""
    names = {resource.name for resource in plan.resources}
    assert weakening.resource is None or weakening.resource in names, f"no resource {weakening.resource}: update it"
    assert set(weakening.removed) <= names, f"no resources {set(weakening.removed) - names}: update the fixture"
    resources = []
    for resource in plan.resources:
        if resource.name in weakening.removed:
            continue
        if resource.name == weakening.resource:
            resource = replace(resource, inputs=copy.deepcopy(resource.inputs))
            for path, value in weakening.changes.items():
                _set(resource.inputs, path, value)
            if weakening.protect is not None:
                resource = replace(resource, protect=weakening.protect)
            if weakening.ignore_changes is not None:
                resource = replace(resource, ignore_changes=list(weakening.ignore_changes))
        resources.append(resource)
    for type_token, name, inputs in weakening.added:
        resources.append(Resource(urn=f"urn:pulumi:{plan.stack}::raptorflow-dr::{type_token}::{name}", type=type_token,
                                  name=name, parent=None, protect=False, custom=True, inputs=copy.deepcopy(dict(inputs))))
    return replace(plan, resources=resources)


CASES = [(name, index) for name, module in BY_MODULE.items() for index in range(len(module.WEAKENINGS))]


def test_every_rule_module_declares_a_rule_and_how_to_break_it():
    assert len(RULES) == len({policy.name for policy in POLICIES}), "one rule per module, names unique"
    for name, module in BY_MODULE.items():
        assert module.POLICY.name == "raptorflow-" + name.replace("_", "-"), "the module is named after its rule"
        assert module.WEAKENINGS, f"{name} has no failing fixture"


def test_every_rule_carries_its_metadata():
    for policy in POLICIES:
        assert policy.name.startswith("raptorflow-") and policy.name == policy.name.lower()
        assert policy.enforcement_level is not None and policy.severity is not None
        assert "Mirrors " in policy.description and policy.remediation_steps
        assert policy.framework is not None and policy.framework.reference
    advisory = {p.name for p in POLICIES if p.enforcement_level is not None and p.enforcement_level.value == "advisory"}
    # Advisory only where the fix is irreversible, or the rule guards a deploy's reliability rather than the data.
    assert advisory == {"raptorflow-gcs-backup-bucket-retention-locked", "raptorflow-labels-required",
                        "raptorflow-deploy-waits-for-iam-propagation"}


@pytest.mark.parametrize("name", sorted(BY_MODULE))
def test_compliant_fixtures_pass(make_plan, name):
    module = BY_MODULE[name]
    for stack, overrides in getattr(module, "COMPLIANT", [("prod", ()), ("dr", ())]):
        found = evaluate(make_plan(stack, *overrides), [module.POLICY])
        assert found == [], f"{name} objects to the compliant {stack} plan: {[v.message for v in found]}"


@pytest.mark.parametrize("name, case", CASES)
def test_weakened_fixtures_yield_exactly_their_message(make_plan, name, case):
    module = BY_MODULE[name]
    weakening = module.WEAKENINGS[case]
    found = evaluate(weakened(make_plan(weakening.stack), weakening), [module.POLICY])
    assert [v.message for v in found] == [f"{weakening.message}. Fix: {module.POLICY.remediation_steps}"]


def test_policy_config_changes_thresholds(prod_plan):
    rotation = BY_MODULE["kms_key_rotation"].POLICY
    planned = float(prod_plan.named("db-dumps-key").inputs["rotationPeriod"].removesuffix("s")) / SECONDS_PER_DAY
    stricter = int(planned) - 1  # a day less than the plan's keys rotate: the pack's config alone fails them
    found = evaluate(prod_plan, [rotation], overrides={rotation.name: {"maxRotationDays": stricter}})
    assert {v.resource for v in found} == {"db-dumps-key", "config-us-central1-key", "config-europe-west1-key"}
    assert any(v.message.startswith(f"key db-dumps-key rotates every {planned:g} days; at most {stricter} are "
                                    "allowed.") for v in found)


def test_thresholds_are_the_plans_limits(prod_plan):
    """The rules' defaults are the program's defaults: both read core/limits.py."""
    from components import defaults
    from components.config.stack import KmsSettings
    from core import limits

    retention = BY_MODULE["gcs_backup_bucket_retention"].CONFIG["minRetentionDays"]["default"]
    assert retention == limits.RETENTION_DAYS
    config = KmsSettings()
    assert BY_MODULE["kms_key_rotation"].CONFIG["maxRotationDays"]["default"] == limits.KMS_ROTATION_DAYS_MAX \
        == config.rotation_days
    assert BY_MODULE["cloudflare_failover_ttl"].CONFIG["maxTtlSeconds"]["default"] == limits.DNS_TTL_MAX_SECONDS \
        == defaults.DNS_TTL_MAX_SECONDS
    bucket = next(r for r in prod_plan.resources if r.name == "db-dumps-bucket")
    assert float(lookup(bucket.inputs, "retentionPolicy.retentionPeriod")) == \
        limits.RETENTION_DAYS["database-dumps"] * limits.SECONDS_PER_DAY


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    found |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    return found


def test_the_pack_needs_only_its_venv_and_core(tmp_path):
    """The pack runs from policies/ with its own venv: it may import the standard library, pulumi_policy and
    core (installed from ../core by policies/requirements.txt) - never the program, and never sys.path edits."""
    pack = ROOT / "policies"
    assert "sys.path" not in (pack / "__main__.py").read_text()
    assert "../core" in (pack / "requirements.txt").read_text().splitlines()
    for path in pack.rglob("*.py"):
        outside = _imports(path) - set(sys.stdlib_module_names) - {"pulumi_policy", "core", "raptorflow_policies"}
        assert not outside, f"{path.relative_to(ROOT)} imports {outside}"
    # Only policies/ and an installed core on the path, as in the pack's venv.
    site = tmp_path / "site-packages"
    shutil.copytree(ROOT / "core", site / "core", ignore=shutil.ignore_patterns("__pycache__", "pyproject.toml"))
    result = subprocess.run(
        [sys.executable, "-S", "-c", "import sys; sys.path[:0] = sys.argv[1:]; import raptorflow_policies as p; "
         "print(len(p.POLICIES))", str(pack), str(site), *[p for p in sys.path if "site-packages" in p]],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(POLICIES))

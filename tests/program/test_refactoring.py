"""Grouping the program into site parts replaced nothing: every component moved under a part, and every resource
moved into the zone export, tells the engine where it was (an alias), and keeps its name.

Pulumi's engine combines a parent's aliases with each child's name and type, so the children of an aliased
component need no aliases of their own (docs: concepts/resources/options/aliases)."""

from __future__ import annotations

import pytest

PARTS = ("raptorflow:site:PrimarySite", "raptorflow:site:StandbySite", "raptorflow:site:TrafficSwitch")
# Not moved: the zone export component is new (its resources are, see below), and a StackReference is a read,
# re-read on every run, with no state of its own to keep.
NEW_OR_READ = ("raptorflow:backup:ZoneExport", "pulumi:pulumi:StackReference", "raptorflow:registry:ImageRegistry")


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_every_component_a_part_took_over_aliases_its_place_at_the_top(make_plan, stack):
    plan = make_plan(stack)
    parts = {r.urn for r in plan.resources if r.type in PARTS}
    assert parts, "the program is built from site parts"
    moved = [r for r in plan.resources if r.parent in parts and r.type not in NEW_OR_READ]
    assert moved
    for resource in moved:
        assert {"noParent": True} in resource.aliases, f"{resource.name} would be replaced: no alias to the top level"


def test_the_zone_export_keeps_its_resources_names_and_former_place(dr_plan):
    (export,) = [r for r in dr_plan.resources if r.type == "raptorflow:backup:ZoneExport"]
    children = [r for r in dr_plan.resources if r.parent == export.urn]
    assert {r.name for r in children} == {
        "db-backup-cloudflare-token", "db-backup-cloudflare-token-value", "db-backup-cloudflare-token-reader",
        "db-backup-dns-export", "db-backup-dns-export-scheduler-may-run", "db-backup-dns-export-schedule"}
    former = "urn:pulumi:dr::raptorflow-dr::raptorflow:backup:ScheduledDatabaseBackup::db-backup"
    for child in children:
        assert {"parentUrn": former} in child.aliases, child.name


def test_the_api_ordering_uses_the_supported_transform_api():
    # `register_stack_transformation` is deprecated for `register_resource_transform`, which the engine runs;
    # the offline plan runs it as the engine would, so the dependency tests above see its effect.
    from tools.offline import ROOT

    deprecated = ("register_stack_transformation", "ResourceTransformationArgs", "ResourceTransformationResult")
    sources = [p for folder in ("components", "core", "policies", "tools") for p in (ROOT / folder).rglob("*.py")]
    sources.append(ROOT / "__main__.py")
    assert len(sources) > 20
    for path in sources:
        text = path.read_text()
        assert not [name for name in deprecated if name in text], f"{path.relative_to(ROOT)} uses a deprecated API"
    assert "register_resource_transform" in (ROOT / "components" / "project_apis.py").read_text()


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_the_plan_records_the_urns_the_engine_gives(make_plan, stack):
    # Deployment.generateURN: the type is the parent's whole type chain then the resource's; the root stack adds
    # nothing. Targets (`pulumi up --target`) and aliases are built from these.
    plan = make_plan(stack)
    by_urn = {r.urn: r for r in plan.resources}
    root = f"urn:pulumi:{stack}::raptorflow-dr::pulumi:pulumi:Stack::raptorflow-dr-{stack}"
    for resource in plan.resources:
        kind = resource.urn.split("::")[2]
        assert "pulumi:pulumi:Stack$" not in resource.urn
        if resource.parent in (None, root):
            assert kind == resource.type, resource.urn
        else:
            assert kind == f"{by_urn[resource.parent].urn.split('::')[2]}${resource.type}", resource.urn

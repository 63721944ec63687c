"""The CrossGuard policy pack. Building a PolicyPack starts the analyzer server and never returns,
so nothing but this file may do it; the rules live in raptorflow_policies."""

from pulumi_policy import EnforcementLevel, PolicyPack

from raptorflow_policies import POLICIES

PolicyPack(
    name="raptorflow-dr",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)

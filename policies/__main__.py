"""The CrossGuard policy pack. Building a PolicyPack starts the analyzer server and never returns,
so nothing but this file may do it; the rules live in raptorflow_policies/rules, one module each.

The rules import the program's pure core (`core`), which policies/requirements.txt installs into the
pack's virtualenv from ../core."""

from pulumi_policy import EnforcementLevel, PolicyPack
from raptorflow_policies import POLICIES

PolicyPack(
    name="raptorflow-dr",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)

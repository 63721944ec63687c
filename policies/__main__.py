"""The CrossGuard policy pack. Building a PolicyPack starts the analyzer server and never returns,
so nothing but this file may do it; the rules live in raptorflow_policies."""

import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

# The objectives rule shares the recovery model with the program (components/, pure Python).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from raptorflow_policies import POLICIES

PolicyPack(
    name="raptorflow-dr",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)

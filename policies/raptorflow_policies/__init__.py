"""raptorflow-dr's CrossGuard rules, one module per domain. `POLICIES` is what the pack enforces.

The modules only declare policies; building a PolicyPack (policies/__main__.py) starts a server, so nothing
here does it. The rules share the program's pure core (core/: regions, the dotted-path lookup, the recovery model).
"""

from . import dns, iam, kms, labels, monitoring, objectives, scheduling, storage, transfer, vercel

POLICIES = [
    *storage.POLICIES,
    *kms.POLICIES,
    *iam.POLICIES,
    *transfer.POLICIES,
    *scheduling.POLICIES,
    *monitoring.POLICIES,
    *dns.POLICIES,
    *vercel.POLICIES,
    *labels.POLICIES,
    *objectives.POLICIES,
]

"""Mutation testing of the policy pack: does it catch any weakening of the plans, not just the ones its fixtures name?

    python -m tools.policy_mutants [prod] [dr] [--json] [--sample N] [--seed S] [--show-killed]

Generates weakenings of each stack's recorded plan automatically (tools.mutations:
every boolean, documented enum value, number, cron, resource, IAM member and
label, and public grants through every GCS and KMS IAM and ACL type).

Each mutant has an id (tools.mutations), which the allow list matches.

A mutant is **killed** when the pack (tools.policy_check, in-process, as the
offline plan runs it) reports a violation the unmutated plan does not have;
**allowed** when it matches an entry of policies/allowed_mutations.yaml, each
with the reason the change weakens nothing; otherwise it **survives**. The
report gives the score (killed / total), kills per rule, allowed counts by
reason and every survivor; a mutant on which a rule raises (which would
stop a preview without saying why) counts as surviving. Exit codes: 0 no
survivor; 1 a mutant survived; 2 invalid arguments or allow list.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import yaml

from tools.mutations import mutants
from tools.offline import ROOT, Plan, plan_stack
from tools.policy_check import evaluate

ALLOWED_FILE = ROOT / "policies" / "allowed_mutations.yaml"


@dataclass
class Allowed:
    """The reviewed list of harmless mutations: fnmatch patterns over mutant ids, each with its reason."""

    entries: list[tuple[str, str]]

    @classmethod
    def load(cls, text: str) -> Allowed:
        data = yaml.safe_load(text) or []
        if not isinstance(data, list) or not all(isinstance(e, dict) and isinstance(e.get("match"), str)
                                                 and isinstance(e.get("reason"), str) and e["reason"].strip()
                                                 for e in data):
            raise ValueError(f"{ALLOWED_FILE.name}: a list of {{match: PATTERN, reason: TEXT}}")
        return cls([(e["match"], e["reason"].strip()) for e in data])

    def reason(self, mutant_id: str) -> str | None:
        """Why `mutant_id` is harmless, from the first entry it matches; None when none does."""
        return next((reason for pattern, reason in self.entries if fnmatch.fnmatchcase(mutant_id, pattern)), None)

    def pattern(self, mutant_id: str) -> str | None:
        """The first entry's pattern that `mutant_id` matches."""
        return next((pattern for pattern, _ in self.entries if fnmatch.fnmatchcase(mutant_id, pattern)), None)


def run(stacks: list[str], allowed: Allowed, sample: int | None = None, seed: int = 0,
        plans: dict[str, Plan] | None = None, policies: list | None = None) -> dict[str, Any]:
    """Evaluate the pack (or `policies`) on every (or a `sample` of every) mutant of `stacks`; the report. `plans`
    are the stacks' plans when the caller has them already."""
    as_filed: dict[str, Plan] = {}
    plans = plans or {stack: plan_stack(stack, as_filed=as_filed) for stack in stacks}
    started = time.monotonic()
    killed: list[dict[str, Any]] = []
    allowed_ids: list[tuple[str, str]] = []
    survivors: list[str] = []
    crashed: list[str] = []
    used: set[str | None] = set()
    by_rule: Counter[str] = Counter()
    total = 0
    for plan in plans.values():
        baseline = {(v.policy, v.urn, v.message) for v in evaluate(plan, policies)}
        every = mutants(plan)
        chosen = every if sample is None or sample >= len(every) else random.Random(seed).sample(every, sample)
        total += len(chosen)
        for mutant in chosen:
            try:
                new = {(v.policy, v.urn, v.message) for v in evaluate(mutant.apply(plan), policies)} - baseline
            except Exception as exc:  # noqa: BLE001 - a rule that crashes stops the preview without saying why
                crashed.append(f"{mutant.id}: {type(exc).__name__}: {exc}")
                continue
            if new:
                rules = sorted({policy for policy, _, _ in new})
                by_rule.update(rules)
                killed.append({"id": mutant.id, "rules": rules})
            elif (why := allowed.reason(mutant.id)) is not None:
                allowed_ids.append((mutant.id, why))
                used.add(allowed.pattern(mutant.id))
            else:
                survivors.append(mutant.id)
    return {
        "stacks": stacks, "mutants": total, "killed": len(killed), "allowed": len(allowed_ids),
        "survived": len(survivors) + len(crashed), "crashed": crashed, "score": round(len(killed) / total, 4) if total else 1.0,
        "killedByRule": dict(sorted(by_rule.items())), "allowedByReason": dict(Counter(w for _, w in allowed_ids)),
        "survivors": survivors, "killedMutants": killed, "seconds": round(time.monotonic() - started, 2),
        "sample": sample, "seed": seed,
        "unusedAllowed": [pattern for pattern, _ in allowed.entries if pattern not in used] if sample is None else [],
    }


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m tools.policy_mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", nargs="*", default=["prod", "dr"], help="stacks (default: prod dr)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--sample", type=int, help="evaluate this many mutants per stack, chosen with --seed")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (default %(default)s)")
    parser.add_argument("--show-killed", action="store_true", help="also list each killed mutant and its rules")
    args = parser.parse_args(argv)
    try:
        allowed = Allowed.load(ALLOWED_FILE.read_text() if ALLOWED_FILE.exists() else "")
    except (ValueError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = run(args.stacks, allowed, args.sample, args.seed)
    if args.json:
        print(json.dumps(report if args.show_killed else {k: v for k, v in report.items() if k != "killedMutants"},
                         indent=2))
    else:
        print(f"mutants: {report['mutants']} of {', '.join(args.stacks)} - {report['killed']} killed, "
              f"{report['allowed']} allowed, {report['survived']} survived; score {report['score']:.1%} "
              f"({report['seconds']} s)")
        for rule, count in report["killedByRule"].items():
            print(f"  killed by {rule}: {count}")
        for reason, count in report["allowedByReason"].items():
            print(f"  allowed ({count}): {reason}")
        for mutant_id in report["survivors"]:
            print(f"  SURVIVED {mutant_id}")
        for line in report["crashed"]:
            print(f"  CRASHED {line}")
        for pattern in report["unusedAllowed"]:
            print(f"  note: no mutant matches the allowed entry {pattern!r} (stale?)")
        if args.show_killed:
            for item in report["killedMutants"]:
                print(f"  killed {item['id']} by {', '.join(item['rules'])}")
    return 1 if report["survived"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # the reader (`| head`) has seen enough: no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)

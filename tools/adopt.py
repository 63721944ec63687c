"""Adopt what already exists into a stack: the first deploy over live DNS records and Vercel variables, and the
rebuild after a teardown.

    python -m tools.adopt STACK [--rebuild] [--yes] [--project-dir DIR]

The program imports every resource its config declares existing (`standby.failover.hostnames[].state: existing` with
`existingRecordId`, `standby.vercel.variableStates` with `existingEnvIds`) and, with `--rebuild`, what a teardown keeps
(backup buckets, their log buckets, key rings and keys, the image registry: retained on delete). Pulumi CLIs
before the import-then-update change (pulumi/pulumi#19339) import a resource only when the program's inputs
equal the live ones, and a hand-made record or variable never has the program's comment, and a sensitive
Vercel value reads back as null; newer CLIs import and update in one run. Adoption is two runs, which works
with both and leaves the live resources untouched until the second:

1. the adopting run: `pulumi up` with `deploy.adopting: true` (and `deploy.rebuild: true` with `--rebuild`)
   in a temporary copy of the stack file (`--config-file`): each imported resource takes its live value for
   every input the program would change, so the import matches;
2. a normal `pulumi up` from the stack's own file, which updates those inputs in place to the declared
   values (records' content and comment, variables' values, targets and comment).

It first lists, from the offline plan, what will be imported and with which id, and reads each DNS record and
Vercel variable by its id (tools/adopt_check.py): an id that names another record or variable, or nothing, is
refused before any run, because a CLI since pulumi/pulumi#19339 would import it and update it to the declared
values. Without `--yes` it only
previews the adopting run. The stack file is never changed, so a killed run leaves nothing behind: run the
same command again, and what is already in the state is not imported twice (the engine ignores an import id
once the resource is in the state).

Exit codes: 0 adopted (or previewed, or nothing to adopt); 2 no CLI, no such stack, a missing or invalid stack
file, an id that names something else, or an API that cannot be asked; 3 `pulumi preview` / `pulumi up` failed
(one line: the last error it printed); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tools.adopt_check import wrong_ids
from tools.offline import ROOT, Plan
from tools.operator import (
    DEPLOY_KEY,
    CannotSelect,
    Interrupted,
    config_file_copy,
    last_error_line,
    select_stack,
    short_name,
    stack_plan,
    stoppable,
)
from tools.vercel_deploy import VercelError

EXIT_OK, EXIT_SETUP, EXIT_PULUMI_FAILED, EXIT_INTERRUPTED = 0, 2, 3, 130


def deploy_flags(rebuild: bool) -> dict[str, bool]:
    """The `deploy` settings of the adopting run."""
    return {"adopting": True, **({"rebuild": True} if rebuild else {})}


def adopting_config_file(stack: str, rebuild: bool, folder: Path, project_dir: Path = ROOT) -> Path:
    """A copy of the stack file for the adopting run, whose `deploy` section also says `adopting` (and
    `rebuild`); the stack's own file is never touched."""
    return config_file_copy(project_dir / f"Pulumi.{short_name(stack)}.yaml", {DEPLOY_KEY: deploy_flags(rebuild)},
                            folder)


def adopted(plan: Plan) -> list[tuple[str, str, str]]:
    """(type, name, import id) of every resource the plan imports."""
    return [(r.type, r.name, r.import_id) for r in plan.resources if r.import_id]


def adoption_plan(stack: str, rebuild: bool, project_dir: Path = ROOT) -> Plan:
    """The offline plan of the adopting run: the program of this repository, with the stack file of
    `project_dir` (a stack it references is read from this repository); CannotSelect when there is none."""
    overrides = tuple(f"{DEPLOY_KEY}.{key}={str(value).lower()}" for key, value in deploy_flags(rebuild).items())
    return stack_plan(stack, project_dir, overrides)


def adopt(stack_name: str, rebuild: bool, apply: bool, project_dir: Path = ROOT) -> int:
    """List what is imported, then preview (default) or make the adopting run and the normal run."""
    try:
        plan = adoption_plan(stack_name, rebuild, project_dir)
    except CannotSelect as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    imports = adopted(plan)
    if not imports:
        print(f"{stack_name}: nothing is declared existing; a plain `pulumi up` creates everything")
        return EXIT_OK
    print(f"{stack_name}: adopts {len(imports)} existing resources (type, name, import id):")
    for type_, name, import_id in imports:
        print(f"  {type_}  {name}  <- {import_id}")

    from pulumi import automation as auto

    started = time.monotonic()
    try:
        with stoppable():
            return _runs(auto, plan, stack_name, rebuild, apply, project_dir, len(imports), started)
    except (Interrupted, KeyboardInterrupt):
        print("interrupted: the stack file is unchanged; run the same command again to finish", file=sys.stderr)
        return EXIT_INTERRUPTED


def _runs(auto: Any, plan: Plan, stack_name: str, rebuild: bool, apply: bool, project_dir: Path, count: int,
          started: float) -> int:
    """Select the stack, check each id names what it is declared for, then the preview, or the adopting run and
    the normal run."""
    try:
        stack = select_stack(stack_name, project_dir)
    except CannotSelect as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    # A CLI since pulumi/pulumi#19339 imports and then updates: a wrong id would take over another record.
    try:
        wrong = wrong_ids(plan, stack)
    except VercelError as exc:
        print(f"error: cannot check the ids to adopt: {exc}; nothing was changed", file=sys.stderr)
        return EXIT_SETUP
    if wrong:
        print("error: ids in the stack file name other records or variables; nothing was changed:\n  "
              + "\n  ".join(wrong), file=sys.stderr)
        return EXIT_SETUP
    with tempfile.TemporaryDirectory(prefix="raptorflow-adopt-") as folder:
        adopting = str(adopting_config_file(stack_name, rebuild, Path(folder), project_dir))
        step = "preview"
        try:
            if not apply:
                stack.preview(on_output=print, config_file=adopting)
                print(f"previewed the adopting run in {time.monotonic() - started:.1f} s; nothing applied "
                      "(pass --yes to adopt)")
                return EXIT_OK
            step = "up (adopting run)"
            stack.up(on_output=print, config_file=adopting)
            adopted_at = time.monotonic() - started
            step = "up (declared values)"
            stack.up(on_output=print)
        except auto.errors.CommandError as exc:
            print(f"error: pulumi {step} failed: {last_error_line(exc)}; nothing in the stack file changed - fix "
                  "the cause and run the same command again", file=sys.stderr)
            return EXIT_PULUMI_FAILED
    print(f"adopted {count} resources in {adopted_at:.1f} s; declared values applied after "
          f"{time.monotonic() - started:.1f} s")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.adopt`."""
    parser = argparse.ArgumentParser(prog="python -m tools.adopt", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", help="the stack (dr, prod, or org/project/stack)")
    parser.add_argument("--rebuild", action="store_true",
                        help="also import what a teardown keeps (buckets, key rings, keys)")
    parser.add_argument("--yes", action="store_true", help="adopt (without it: list and preview only)")
    parser.add_argument("--project-dir", type=Path, default=ROOT, metavar="DIR",
                        help="folder of Pulumi.yaml and the stack files (default: this repo)")
    args = parser.parse_args(argv)
    return adopt(args.stack, args.rebuild, args.yes, args.project_dir)


if __name__ == "__main__":
    sys.exit(main())

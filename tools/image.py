"""Create a site's image registry and put the backup job's image in it, before the first full `pulumi up`.

    python -m tools.image STACK [--yes] [--rebuild] [--project-dir DIR]      (make image STACK=prod)

A Cloud Run job cannot be created before its image exists, and the image cannot be pushed before its
repository does, so a first deploy goes registry first:

1. `pulumi up --target ...` of the stack's Artifact Registry repository and only what it needs (its API, the
   APIs that API waits for, and the components they belong to), found in the offline plan;
2. unless the tag is already in the repository (`docker manifest inspect`; tags are immutable there, so a
   second push would fail), `docker build -f backup_job/Dockerfile -t IMAGE .` from this repository and
   `docker push IMAGE`, IMAGE being the stack's `databaseBackup.image`.

After a teardown the repository still exists (it is kept, with its images): `--rebuild` imports it in the
targeted update instead of creating it (a create would fail: it already exists).

Docker must be logged in to the registry: `gcloud auth configure-docker REGION-docker.pkg.dev`. Without
`--yes` it previews the targeted update and says what it would build; nothing is applied or pushed. Run it
again at any time: what exists is left as it is.

Exit codes: 0 the registry and the image exist (or were previewed); 2 no Pulumi CLI or docker, no such stack,
a missing or invalid stack file, or no `databaseBackup` in it; 3 `pulumi preview` / `pulumi up` failed; 4
`docker build` or `docker push` failed (one line: its last error); 130 interrupted.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from core.contracts import ResourceType
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

EXIT_OK, EXIT_SETUP, EXIT_PULUMI_FAILED, EXIT_DOCKER_FAILED, EXIT_INTERRUPTED = 0, 2, 3, 4, 130
REPOSITORY_TYPE = ResourceType.REPOSITORY
RUN_JOB_TYPE = ResourceType.RUN_JOB


def registry_targets(plan: Plan) -> list[str]:
    """The URNs a targeted update must include to create the repository: it, what it depends on, and the
    components each of those belongs to (the stack itself is always part of an update)."""
    by_urn = {r.urn: r for r in plan.resources}
    (repository,) = plan.of_type(REPOSITORY_TYPE)
    targets: list[str] = []
    todo = [repository.urn]
    while todo:
        urn = todo.pop()
        if urn in targets or urn not in by_urn:
            continue
        targets.append(urn)
        resource = by_urn[urn]
        todo.extend(resource.dependencies)
        if resource.parent:
            todo.append(resource.parent)
    return sorted(targets)


def configured_image(plan: Plan) -> str:
    """The image the stack's backup jobs run (`databaseBackup.image`)."""
    images = {r.inputs["template"]["template"]["containers"][0]["image"] for r in plan.of_type(RUN_JOB_TYPE)}
    (image,) = images
    return str(image)


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines or ["no output"])[-1][:300]


def image(stack_name: str, apply: bool, project_dir: Path = ROOT, rebuild: bool = False) -> int:
    """Create the registry (targeted up), then build and push the image unless its tag is there."""
    try:
        plan = stack_plan(stack_name, project_dir, (f"{DEPLOY_KEY}.rebuild=true",) if rebuild else ())
    except CannotSelect as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    stack_file = project_dir / f"Pulumi.{short_name(stack_name)}.yaml"
    if not plan.of_type(RUN_JOB_TYPE):
        print(f"error: stack {stack_name} has no `databaseBackup`: it runs no backup image", file=sys.stderr)
        return EXIT_SETUP
    if shutil.which("docker") is None:
        print("error: docker is not installed (or not on PATH); it builds and pushes the image", file=sys.stderr)
        return EXIT_SETUP
    targets, wanted = registry_targets(plan), configured_image(plan)
    print(f"{stack_name}: the registry first ({len(targets)} resources{', the kept one imported' if rebuild else ''})"
          f", then {wanted}")

    from pulumi import automation as auto

    try:
        with stoppable(), tempfile.TemporaryDirectory(prefix="raptorflow-image-") as folder:
            # A rebuild imports the repository the teardown kept, from a copy of the stack file (never the file).
            config_file = str(config_file_copy(stack_file, {DEPLOY_KEY: {"rebuild": True}}, Path(folder))) \
                if rebuild else None
            return _registry_then_image(auto, stack_name, apply, project_dir, targets, wanted, config_file)
    except (Interrupted, KeyboardInterrupt):
        print("interrupted: run the same command again; what exists is kept", file=sys.stderr)
        return EXIT_INTERRUPTED


def _registry_then_image(auto: Any, stack_name: str, apply: bool, project_dir: Path, targets: list[str],
                         wanted: str, config_file: str | None) -> int:
    try:
        stack = select_stack(stack_name, project_dir)
    except CannotSelect as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    try:
        if apply:
            stack.up(on_output=print, target=targets, config_file=config_file)
        else:
            stack.preview(on_output=print, target=targets, config_file=config_file)
    except auto.errors.CommandError as exc:
        print(f"error: pulumi {'up' if apply else 'preview'} of the registry failed: {last_error_line(exc)}",
              file=sys.stderr)
        return EXIT_PULUMI_FAILED
    if _docker("manifest", "inspect", wanted).returncode == 0:
        print(f"{wanted} is already in the registry (its tag is immutable): nothing to push")
        return EXIT_OK
    if not apply:
        print(f"would build backup_job/Dockerfile as {wanted} and push it (pass --yes)")
        return EXIT_OK
    for step in (("build", "-f", "backup_job/Dockerfile", "-t", wanted, "."), ("push", wanted)):
        done = _docker(*step)
        if done.returncode != 0:
            print(f"error: docker {step[0]} failed: {_last_line(done.stderr or done.stdout)}", file=sys.stderr)
            return EXIT_DOCKER_FAILED
    print(f"pushed {wanted}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.image`."""
    parser = argparse.ArgumentParser(prog="python -m tools.image", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", help="the stack (prod, dr, or org/project/stack)")
    parser.add_argument("--yes", action="store_true", help="create and push (without it: preview only)")
    parser.add_argument("--rebuild", action="store_true",
                        help="after a teardown: import the repository it kept instead of creating it")
    parser.add_argument("--project-dir", type=Path, default=ROOT, metavar="DIR",
                        help="folder of Pulumi.yaml and the stack files (default: this repo)")
    args = parser.parse_args(argv)
    return image(args.stack, args.yes, args.project_dir, args.rebuild)


if __name__ == "__main__":
    sys.exit(main())

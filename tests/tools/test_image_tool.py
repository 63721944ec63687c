"""`python -m tools.image` (make image) against the labelled stand-in Pulumi CLI and a labelled stand-in `docker`
written here: the registry is created first by a targeted update of exactly what it needs, the image is built
from backup_job/Dockerfile and pushed once, a second run pushes nothing, and failures are one line and a code.
The tool runs in this process (its `main`, with the stand-ins' environment)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.pulumi_stand_in import calls, install

IMAGE = "us-central1-docker.pkg.dev/raptorflow-prod/raptorflow/backup-job:1.0.0"
# A TEST STAND-IN for docker: records argv; `manifest inspect` finds the image once it was pushed; `build` fails
# when $DOCKER_BUILD_FAILS is set.
DOCKER = '''#!{python}
import json, os, sys
log, pushed = os.environ["DOCKER_LOG"], os.environ["DOCKER_PUSHED"]
args = sys.argv[1:]
open(log, "a").write(json.dumps(args) + "\\n")
if args[:2] == ["manifest", "inspect"]:
    sys.exit(0 if os.path.exists(pushed) and open(pushed).read() == args[2] else 1)
if args[0] == "build" and os.environ.get("DOCKER_BUILD_FAILS"):
    print("step 3/9: E: Unable to locate package postgresql-client-17", file=sys.stderr); sys.exit(1)
if args[0] == "push":
    open(pushed, "w").write(args[1])
sys.exit(0)
'''


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = install(tmp_path, "prod")
    docker = tmp_path / "bin" / "docker"
    docker.write_text(DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    return {**environment, "DOCKER_LOG": str(tmp_path / "docker.log"), "DOCKER_PUSHED": str(tmp_path / "pushed")}


@pytest.fixture
def run(monkeypatch, capsys):
    """`python -m tools.image ARGS` as its `main`, in this process, with `env` as its environment."""
    from tools.image import main

    def call(project: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
        with monkeypatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            code = main([*args, "--project-dir", str(project)])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err, err
        return code, out, err

    return call


def docker_calls(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "docker.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_the_registry_comes_first_then_one_build_and_push_and_a_second_run_pushes_nothing(run, project, env, tmp_path):
    code, out, err = run(project, env, "prod", "--yes")
    assert code == 0, err
    (up,) = [c["argv"] for c in calls(tmp_path) if c["argv"][:1] == ["up"]]
    targets = {up[i + 1] for i, arg in enumerate(up) if arg == "--target"}
    # The engine's URNs (the parent's whole type chain, nothing for the root stack): a target the stack does not
    # have stops `pulumi up --target` ("one or more targets could not be found").
    assert ("urn:pulumi:prod::raptorflow-dr::raptorflow:site:PrimarySite$raptorflow:registry:ImageRegistry"
            "$gcp:artifactregistry/repository:Repository::backup-images-repository") in targets
    assert "urn:pulumi:prod::raptorflow-dr::raptorflow:project:ProjectApis::apis" in targets
    assert {urn.rsplit("::", 1)[-1] for urn in targets} == {
        "backup-images-repository", "backup-images", "primary-site", "apis", "apis-artifactregistry",
        "apis-serviceusage"}, "the repository, its API (and the API that enables APIs) and their components"
    assert docker_calls(tmp_path) == [["manifest", "inspect", IMAGE],
                                      ["build", "-f", "backup_job/Dockerfile", "-t", IMAGE, "."],
                                      ["push", IMAGE]]
    assert f"pushed {IMAGE}" in out
    code, out, _ = run(project, env, "prod", "--yes")
    assert code == 0 and "already in the registry" in out
    assert [c[0] for c in docker_calls(tmp_path)].count("push") == 1, "an immutable tag is pushed once"


def test_without_yes_it_previews_and_pushes_nothing(run, project, env, tmp_path):
    code, out, err = run(project, env, "prod")
    assert code == 0, err
    assert [c["argv"][0] for c in calls(tmp_path) if c["argv"][:1] in (["up"], ["preview"])] == ["preview"]
    assert [c[0] for c in docker_calls(tmp_path)] == ["manifest"]
    assert "would build backup_job/Dockerfile" in out


@pytest.mark.parametrize("case, extra_env, code, said", [
    ("build-fails", {"DOCKER_BUILD_FAILS": "1"}, 4,
     "error: docker build failed: step 3/9: E: Unable to locate package postgresql-client-17"),
    ("up-fails", {"STAND_IN_EXIT": "1", "STAND_IN_STDERR": "error: artifactregistry.googleapis.com is off"}, 3,
     "error: pulumi up of the registry failed: error: artifactregistry.googleapis.com is off"),
    ("no-docker", {"PATH": "/nonexistent"}, 2, "error: docker is not installed"),
])
def test_failures_are_one_line_and_a_documented_code(run, project, env, case, extra_env, code, said):
    returned, _out, err = run(project, {**env, **extra_env}, "prod", "--yes")
    assert returned == code
    assert err.strip().startswith(said) and len(err.strip().splitlines()) == 1


def test_after_a_teardown_the_kept_repository_is_imported_from_a_copy_of_the_stack_file(run, project, env, tmp_path):
    before = (project / "Pulumi.prod.yaml").read_bytes()
    code, out, err = run(project, env, "prod", "--yes", "--rebuild")
    assert code == 0, err
    (up,) = [c for c in calls(tmp_path) if c["argv"][:1] == ["up"]]
    assert "rebuild: true" in up["configFile"], "the targeted update imports the kept repository"
    assert (project / "Pulumi.prod.yaml").read_bytes() == before
    assert "the kept one imported" in out


def test_a_stack_without_backups_or_without_a_file_is_refused(run, project, env, tmp_path):
    os.remove(project / "Pulumi.prod.yaml")
    code, _out, err = run(project, env, "prod", "--yes")
    assert code == 2 and err.startswith("error: no stack file Pulumi.prod.yaml")
    assert calls(tmp_path) == [] and docker_calls(tmp_path) == []

"""Shared fixtures: offline plans of the program under Pulumi's mocks."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest

from tools.offline import ROOT, Plan, plan_stack

# The test files that take longest, slowest first (measured on 2 cores with `-n 2 --dist loadfile`, 2026-12-02:
# 150 to 15 s each, the rest under 12 s; measured again in one process after their speed-ups: rotation 57 s,
# PITR 58 s, failback safety 44 s, failback 39 s). `make test` runs with `--no-loadscope-reorder`, so xdist hands out files
# in the order below: the longest go first and the short ones fill in at the end, and both workers finish together.
# By default xdist orders files by their number of tests, which put a slow file of few tests last, with the other
# worker idle while it ran.
SLOWEST_FILES = (
    "tests/tools/test_rotate.py",
    "tests/tools/test_pitr.py",
    "tests/tools/test_failback_safety.py",
    "tests/tools/test_failback.py",
    "tests/backup_job/test_damaged_backups.py",
    "tests/backup_job/test_backup_listing.py",
    "tests/tools/test_adopt_tool.py",
    "tests/tools/test_secrets_tool.py",
    "tests/backup_job/test_backup_job.py",
    "tests/tools/test_failover_cli.py",
    "tests/backup_job/test_outages.py",
    "tests/program/test_failover.py",
    "tests/backup_job/test_interrupted_runs.py",
    "tests/program/test_policy_gate.py",
    "tests/program/test_adoption.py",
    "tests/config/test_config_properties.py",
    "tests/backup_job/test_restore_exact.py",
    "tests/tools/test_policy_mutants.py",
    "tests/backup_job/test_job_usage.py",
    "tests/backup_job/test_export_dns_answers.py",
    "tests/tools/test_failover_vercel.py",
    "tests/tools/test_plan_tool.py",
)


DRILL_RUNNER = "tests/drill/test_drill.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the slowest files first: the drill's own file (it runs the small drill, a real two-site world, and the
    drills that are killed), then the other files under tests/drill (each builds worlds or stand-ins), then
    SLOWEST_FILES, then the rest as collected, and last the other files of drill tests: they only read the small
    drill's result (tests/drill/conftest.py), which by then is there, instead of holding a worker while it runs."""
    rank = {name: place for place, name in enumerate(SLOWEST_FILES)}
    drills = {item.path for item in items if item.get_closest_marker("drill")}

    def order(item: pytest.Item) -> tuple[int, int]:
        name = item.path.relative_to(ROOT).as_posix() if item.path.is_relative_to(ROOT) else str(item.path)
        if name == DRILL_RUNNER:
            return 0, 0
        if item.path in drills:
            return 3, 0
        if name.startswith("tests/drill/"):
            return 1, 0
        return 2, rank.get(name, len(rank))

    items.sort(key=order)  # stable: each file's tests keep their order, and files of one rank stay as collected


# Plans of the unchanged stack files, shared by every plan of the session: a dr plan reads prod's outputs from
# here instead of planning prod again.
_AS_FILED: dict[str, Plan] = {}


@functools.cache
def _cached_plan(stack: str, overrides: tuple[str, ...]) -> Plan:
    return plan_stack(stack, overrides, as_filed=_AS_FILED)


@pytest.fixture
def make_plan():
    """Run the real program for `stack` (its stack file plus `--set`-style overrides); return the recorded plan.

    Plans are cached per (stack, overrides): tests must not mutate what they get.
    """

    def make(stack: str, *overrides: str) -> Plan:
        return _cached_plan(stack, tuple(overrides))

    return make


@pytest.fixture
def prod_plan(make_plan) -> Plan:
    """The plan of the repo's own prod stack file."""
    return make_plan("prod")


@pytest.fixture
def dr_plan(make_plan) -> Plan:
    """The plan of the repo's own dr stack file."""
    return make_plan("dr")


@pytest.fixture
def run_cli():
    """Run `python -m <module> ARGS` from the project root; return the CompletedProcess.

    The offline commands - `tools.plan` and `tools.failover diff` - run in this process (their `main(argv)`, output
    captured) unless `own_process=True`: the same code, without a second interpreter and a second import of the
    provider SDKs (seconds each) for every case. Whatever else runs as its own process.
    """

    def run(module: str, *args: str, timeout: float = 120, own_process: bool = False) -> subprocess.CompletedProcess:
        offline = module == "tools.plan" or (module == "tools.failover" and args[:1] == ("diff",))
        if offline and not own_process:
            import contextlib
            import importlib
            import io

            main = importlib.import_module(module).main
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
            return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())
        return subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        )

    return run


@pytest.fixture
def stack_file(tmp_path: Path):
    """Write a variant of a repo stack file: `stack_file("dr", edit)` where `edit(config_dict)` mutates it;
    keyword arguments become top-level keys (e.g. `encryptionsalt`)."""
    import yaml

    def write(stack: str, edit, **top_level) -> Path:
        document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        edit(document["config"])
        document.update(top_level)
        path = tmp_path / f"Pulumi.{stack}.yaml"
        path.write_text(yaml.safe_dump(document))
        return path

    return write


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server on 127.0.0.1, started once for the session and stopped after it."""
    from tests.services import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def emulator():
    """fake-gcs-server on 127.0.0.1 (STORAGE_EMULATOR_HOST set while it runs), stopped after the session."""
    from tests.services import StorageEmulator

    server = StorageEmulator().start()
    yield server
    server.stop()


@pytest.fixture
def bucket(emulator):
    """A fresh, empty bucket in the emulator."""
    import uuid

    from google.cloud import storage

    return storage.Client().create_bucket(f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def source_url(postgres) -> str:
    """The sample application database (tests/services.py SAMPLE_SCHEMA), created once for the session."""
    import psycopg

    from tests.services import SAMPLE_SCHEMA

    url = postgres.create_database("app")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(SAMPLE_SCHEMA)
    return url


@pytest.fixture
def scratch_url(postgres) -> str:
    """A new empty database on the test server."""
    import uuid

    return postgres.create_database(f"scratch_{uuid.uuid4().hex[:10]}")

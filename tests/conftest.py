"""Shared fixtures: offline plans of the program under Pulumi's mocks."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest

from tools.offline import ROOT, Plan, plan_stack


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

    `tools.plan` runs in this process (its `main(argv)`, output captured) unless `own_process=True`: the same
    code, without a second interpreter and a second import of the provider SDKs for every case.
    """

    def run(module: str, *args: str, timeout: float = 120, own_process: bool = False) -> subprocess.CompletedProcess:
        if module == "tools.plan" and not own_process:
            import contextlib
            import io

            from tools.plan import main

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

"""The drill's command line where it runs no world: usage errors, the refusal without root, and the transfer
stand-in against one emulator. None of these takes the drill lock, so they may run beside a drill (`make test`
runs the test files on two workers; every test that runs a drill is in test_drill.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.drill.runs import MARKS, drill
from tools.drill import plans, transfer
from tools.offline import ROOT

pytestmark = MARKS


def test_transfer_stand_in_applies_the_plans_options_never_overwriting_or_deleting(emulator, make_plan, tmp_path):
    from google.cloud import storage

    jobs = plans.transfer_jobs(make_plan("dr").to_json())
    job = next(j for j in jobs if j["eventDriven"])
    assert job["options"]["overwriteWhen"] == "NEVER" and not job["options"]["deleteObjectsUniqueInSink"]
    gcs = storage.Client()
    source, sink = gcs.create_bucket(f"src-{os.getpid()}-{time.time_ns()}"), gcs.create_bucket(f"snk-{time.time_ns()}")
    source.blob("a.dump").upload_from_string(b"new")
    source.blob("b.dump").upload_from_string(b"b")
    sink.blob("a.dump").upload_from_string(b"old")
    job = {**job, "source": source.name, "sink": sink.name}
    stats = transfer.TransferStats()
    transfer.sync(job, gcs, gcs, stats, tmp_path)
    assert sink.blob("a.dump").download_as_bytes() == b"old", "an existing copy is never replaced"
    assert stats.kept_existing == ["a.dump"] and stats.copied == ["b.dump"]
    source.blob("b.dump").delete()
    transfer.sync(job, gcs, gcs, stats, tmp_path)
    assert sink.blob("b.dump").exists(), "a deletion at the source never reaches the copy"
    transfer.sync({**job, "options": {**job["options"], "overwriteWhen": "ALWAYS"}}, gcs, gcs, stats, tmp_path)
    assert sink.blob("a.dump").download_as_bytes() == b"new", "the options decide, not the stand-in"


def test_usage_errors_exit_2_with_one_line():
    for args, expected in ((["--size-mb", "0"], "between 1 and 100000"), (["--scenario", "flood"], "invalid choice")):
        result = drill(*args, timeout=60)
        assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr


# Read any file and search any folder, and nothing more: what `nobody` needs to run this checkout's Python from a
# private folder (a clone under /root, mode 700), kept across the change of user in the ambient set.
READ_ANYWHERE = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


def as_nobody(*argv: str) -> subprocess.CompletedProcess:
    """`argv` run from the checkout as the unprivileged user `nobody`, wherever the checkout and the venv live.

    Neither a clone in a private folder nor a venv or interpreter under one is readable by nobody, so the process
    keeps CAP_DAC_READ_SEARCH: it reads the checkout, writes nothing of root's, and is not root (its uids are
    nobody's, which is what the drill checks). Where setpriv cannot keep that capability (a container whose
    bounding set lacks it), plain nobody runs a world-readable copy of the checkout's files; the test is skipped
    only if plain nobody cannot run the interpreter with its packages either."""
    nobody = pwd.getpwnam("nobody")
    drop = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    result = subprocess.run([*drop, *READ_ANYWHERE, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60)
    if not result.stderr.startswith("setpriv:"):
        return result
    refused = result.stderr.strip().splitlines()[0]
    copy = Path(tempfile.mkdtemp(prefix="raptorflow-as-nobody-"))
    try:
        copy.chmod(0o755)
        shutil.copytree(ROOT, copy / "checkout", ignore=shutil.ignore_patterns(".*", "__pycache__"))
        result = subprocess.run([*drop, *argv], cwd=copy / "checkout", capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(copy)
    if "Permission denied" in result.stderr or "No module named" in result.stderr:
        said = result.stderr.strip().splitlines()[-1]
        pytest.skip(f"nobody cannot run {sys.executable} with its packages ({said}), and setpriv cannot keep "
                    f"CAP_DAC_READ_SEARCH for it ({refused})")
    return result


def test_without_root_the_drill_says_so_and_exits_2():
    result = as_nobody(sys.executable, "-m", "tools.drill")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "needs root" in lines[0], result.stderr

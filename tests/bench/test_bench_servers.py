"""The benchmark against real servers, at a few MB: the app dataset's schema and size, and one small run's rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from backup_job.database import Database
from bench import app_dataset, datasets, report
from bench.backup_throughput import main

ROOT = Path(__file__).resolve().parents[2]
SIZE_MB = 4
SIZE_TOLERANCE = 0.15


@pytest.fixture
def app_database(postgres, monkeypatch):
    """The app dataset filled for a ~SIZE_MB dump (a smaller corpus: the test needs the schema and the size, not
    the window it defeats); dropped after."""
    monkeypatch.setattr(app_dataset, "CORPUS_WORDS", 400_000)
    name = f"bench_app_{uuid.uuid4().hex[:8]}"
    url = postgres.create_database(name)
    env = {**os.environ, **{k: v for k, v in Database(url).child_env().items() if k.startswith("PG")}}
    sizing = datasets.fill("app", url, SIZE_MB, postgres.bindir / "pg_dump", env, lambda line: None)
    yield url, env, sizing
    with psycopg.connect(postgres.url(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_the_app_dataset_has_many_tables_keys_foreign_keys_indexes_and_the_column_types(app_database):
    url, _, _ = app_database
    with psycopg.connect(url) as connection:
        def one(query: str) -> int:
            return connection.execute(query).fetchone()[0]  # type: ignore[index]

        tables = one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        keys = one("SELECT count(*) FROM pg_constraint WHERE contype = 'p'")
        foreign = one("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")
        secondary = one("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND NOT i.indisprimary")
        types = {row[0] for row in connection.execute(
            "SELECT DISTINCT data_type FROM information_schema.columns WHERE table_schema = 'public'")}
        sizes = [row[0] for row in connection.execute(
            "SELECT pg_table_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1 DESC")]
    assert tables >= 20 and keys >= 20 and foreign >= 20 and secondary >= 5, (tables, keys, foreign, secondary)
    assert types >= {"text", "jsonb", "numeric", "timestamp with time zone", "boolean", "bigint"}, types
    assert sizes[0] > 10 * sizes[len(sizes) // 2], f"table sizes are not skewed: {sizes}"


def test_the_app_dataset_dumps_to_about_the_requested_size_and_compresses_like_application_data(app_database, postgres):
    _, env, sizing = app_database
    stored = app_dataset.dump_bytes(postgres.bindir / "pg_dump", env)
    assert abs(stored - SIZE_MB * 1e6) <= SIZE_TOLERANCE * SIZE_MB * 1e6, (stored, sizing)
    uncompressed = len(subprocess.run([str(postgres.bindir / "pg_dump"), "--format=custom", "--compress=0"],
                                      env=env, capture_output=True, check=True).stdout)
    assert 3 <= uncompressed / stored <= 5, f"-Z0 {uncompressed} bytes, -Fc {stored}: not 3-5x"


def test_a_small_run_of_the_job_prints_rows_with_the_ratios_to_the_floors(capsys):
    assert main(["--datasets", "random", "--sizes-mb", "3", "--repeat", "1", "--tools", "job", "--json"]) == 0
    rows = {row["tool"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) >= {report.JOB, report.PG_DUMP_FC, report.READ_FC, report.UPLOAD, report.restore_floor_name(1)}
    assert not [row["error"] for row in rows.values() if "error" in row]
    job = rows[report.JOB]
    assert job["dataset"] == "random" and job["mode"] in ("single", "parallel")
    for key in ("ratioToPgDumpFc", "ratioToReadFloor", "restoreRatioToFloor", "storedBytesRatioToPgDumpFc"):
        assert 0 < job[key] < 100, (key, job[key])
    assert job["ratioToReadFloor"] >= job["ratioToPgDumpFc"], "the read floor is faster than pg_dump -Fc"
    assert 0.4 < job["pgDumpFcOverZ0Bytes"] < 0.95, "random base64 saves little (3 MB: its small table counts)"
    assert job["backupCores"]["total"] > 0 and job["backupPeakRssMbByStage"]["postgres"] > 0
    assert rows[report.READ_FC]["storedBytes"] > rows[report.PG_DUMP_FC]["storedBytes"]


def test_sigterm_stops_the_benchmark_with_exit_130_one_line_and_no_servers_left():
    # Its own TMPDIR: the servers' and the run's folders are all made there, and other benchmark runs of the suite
    # (on the other worker) come and go in the shared one. Open to the postgres user, who runs the server.
    scratch = Path(tempfile.mkdtemp(prefix="raptorflow-bench-sigterm-"))
    scratch.chmod(0o755)
    try:
        process = subprocess.Popen([sys.executable, "-m", "bench", "--datasets", "random", "--sizes-mb", "50",
                                    "--repeat", "1", "--tools", "job"], cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(scratch)})
        assert process.stdout is not None
        for line in process.stdout:  # the servers are up once it fills
            if line.startswith("filling"):
                break
        process.terminate()
        _, errors = process.communicate(timeout=60)
        assert process.returncode == 130
        assert errors.strip().splitlines()[-1] == "interrupted: the servers and temporary folders are removed"
        time.sleep(0.5)
        assert sorted(p.name for p in scratch.iterdir()) == [], "folders left behind"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

"""Which backups `list` shows and a restore picks: the newest is the one the bucket stored last, whatever the
host's clock said; a dump without its manifest is never taken for a backup; a bad or hostile manifest marks only
its own backup invalid.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from backup_job import dump
from backup_job import storage as layout
from backup_job.database import Database
from tests.backup_job.jobs import job, one_log_line
from tests.services import postgres_bindir
from tools.offline import ROOT

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


def test_the_newest_backup_is_the_one_the_bucket_stored_last_whatever_the_hosts_clock(bucket, source_url,
                                                                                        monkeypatch):
    """A host whose clock runs a day ahead writes a finishedAt in the future: ordered by that, its backup would
    stay "the newest" for a day. The bucket's creation time orders backups, and `list` flags the clock."""
    ahead = timedelta(days=1)
    with monkeypatch.context() as skewed:
        skewed.setattr(layout, "utc_now", lambda: layout.datetime.now(layout.UTC) + ahead)
        early = dump.run_backup(Database(source_url), dump.BackupRequest(kind="full", bucket=bucket.name))
    later = dump.run_backup(Database(source_url), dump.BackupRequest(kind="full", bucket=bucket.name))

    assert layout.newest(bucket, "", "full").object == later["object"], "the skewed host's backup won"
    code, out, err, _ = job("list", "--bucket", bucket.name, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [row["object"] for row in rows] == [later["object"], early["object"]]
    assert rows[0]["futureFinishedAt"] is False and rows[0]["clockSkewSeconds"] is None
    assert rows[1]["futureFinishedAt"] is True
    assert abs(rows[1]["clockSkewSeconds"] - ahead.total_seconds()) < layout.CLOCK_SKEW_TOLERANCE_SECONDS
    assert all(row["ageSeconds"] >= 0 for row in rows), "an age comes from the bucket's clock"
    code, out, err, _ = job("list", "--bucket", bucket.name)
    flagged = [line.split()[0] for line in out.splitlines() if "CLOCK AHEAD" in line]
    assert flagged == [early["object"]], out


def test_dump_without_manifest_is_never_listed_or_restored(bucket, seeded, scratch_url):
    # What an interrupted run could leave: a newer dump object with no manifest.
    partial = layout.dump_object_name("supabase", "full", datetime(2099, 1, 1, tzinfo=UTC))
    bucket.blob(partial).upload_from_string(b"PGDMP-truncated", if_generation_match=0)

    _, out, _, _ = job("list", "--bucket", bucket.name, "--prefix", "supabase", "--json")
    assert [row["object"] for row in json.loads(out)] == [seeded.object]
    _, out, _, _ = job("list", "--bucket", bucket.name, "--prefix", "supabase", "--all")
    assert f"{partial}  INCOMPLETE" in out
    code, out, err, _ = job("restore-check", "--bucket", bucket.name, "--prefix", "supabase",
                            env={"SCRATCH_DATABASE_URL": scratch_url})
    assert code == 0 and one_log_line(out)["object"] == seeded.object, out + err


@pytest.mark.parametrize("manifest", [
    b'{"format": 1, "object": "trunc',
    b'{"format": 1}',
    b'[1, 2, 3]',
    None,  # names another object: filled in by the test
], ids=["truncated-json", "missing-fields", "wrong-shape", "names-another-object"])
def test_one_bad_manifest_marks_only_its_backup_invalid(bucket, seeded, source_url, scratch_url, manifest):
    older = seeded
    # The newer backup is made as the seeded one is, in this process: the command under test is `list`.
    newer = dump.run_backup(Database(source_url), dump.BackupRequest(kind="full", bucket=bucket.name,
                                                                     prefix="supabase"))["object"]
    body = manifest if manifest is not None else json.dumps({**older.manifest, "object": older.object}).encode()
    bucket.blob(layout.manifest_object_name(newer)).upload_from_string(body)

    code, out, err, _ = job("list", "--bucket", bucket.name, "--prefix", "supabase", "--json")
    assert code == 0, err
    rows = {row["object"]: row for row in json.loads(out)}
    assert rows[older.object]["complete"] and "invalid" in rows[newer] and not rows[newer]["complete"]
    code, out, err, _ = job("restore-check", "--bucket", bucket.name, "--prefix", "supabase",
                            env={"SCRATCH_DATABASE_URL": scratch_url})
    assert code == 0 and one_log_line(out)["object"] == older.object, out + err


def test_one_hostile_manifest_never_blocks_the_others(bucket, source_url):
    """A manifest with a naive finishedAt (which cannot be ordered with the others), row counts that are a list,
    or control characters in its object name is listed as invalid, escaped; the good backup is still listed and
    picked."""
    good = dump.run_backup(Database(source_url), dump.BackupRequest(kind="schema", bucket=bucket.name))
    hostile: dict[str, dict] = {
        "full/2099/01/01/naive.dump": {"finishedAt": "2099-01-01T00:00:00"},
        "full/2099/01/02/list.dump": {"tableRowCounts": []},
        "full/2099/01/03/\x1b[2Jcleared\n.dump": {},
    }
    for name, override in hostile.items():
        bucket.blob(name).upload_from_string(b"PGDMP")
        manifest = {**good, "object": name, "kind": "full", "sizeBytes": 5, **override}
        bucket.blob(name + ".manifest.json").upload_from_string(json.dumps(manifest))
    result = subprocess.run([sys.executable, "-m", "backup_job", "list", "--bucket", bucket.name],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and any(line.startswith(good["object"] + " ") for line in lines), result.stdout
    assert sorted(line.split()[0] for line in lines if "INVALID" in line) == sorted(list(hostile)[:2])
    assert "\x1b" not in result.stdout and "full/2099/01/03/\\x1b[2Jcleared\\x0a.dump  full" in result.stdout

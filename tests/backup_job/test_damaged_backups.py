"""A backup damaged in the bucket, or on its way down (a proxy flips a byte of the dump or the manifest): every
restore and the check end with the documented exit code and one line, nothing reaches the target, and a failed
check leaves no database behind.
"""

from __future__ import annotations

import json
import urllib.parse

import psycopg
import pytest

from backup_job.errors import ExitCode
from tests.backup_job.emulator_proxy import Answer, proxy
from tests.backup_job.jobs import FAST_STORAGE, job, new_database, one_log_line, user_tables
from tests.services import postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


def flip_middle_byte(data: bytes) -> bytes:
    """`data` with its middle byte inverted."""
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    return bytes(damaged)


def test_a_tampered_dump_never_reaches_the_restore_target(bucket, seeded, scratch_url):
    blob = bucket.blob(seeded.object)
    blob.upload_from_string(flip_middle_byte(blob.download_as_bytes()))
    code, _out, _err, _ = job("restore", "--bucket", bucket.name, "--prefix", "supabase",
                              env={"TARGET_DATABASE_URL": scratch_url})
    assert code == ExitCode.VERIFICATION_MISMATCH
    with psycopg.connect(scratch_url) as connection:
        assert connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)


def test_tampered_dump_fails_the_restore_check_on_sha256(bucket, seeded, scratch_url):
    blob = bucket.blob(seeded.object)
    blob.upload_from_string(flip_middle_byte(blob.download_as_bytes()))  # the emulator lets the test replace it; the real bucket would not
    code, out, err, _ = job("restore-check", "--bucket", bucket.name, "--prefix", "supabase",
                            env={"SCRATCH_DATABASE_URL": scratch_url})
    assert code == ExitCode.VERIFICATION_MISMATCH, out + err
    assert "sha256" in one_log_line(out)["message"]


def test_row_count_mismatch_fails_the_restore_check(bucket, seeded, scratch_url):
    manifest_blob = bucket.blob(seeded.object + ".manifest.json")
    manifest = json.loads(manifest_blob.download_as_bytes())
    manifest["tableRowCounts"]["public.orders"] += 1
    manifest_blob.upload_from_string(json.dumps(manifest))
    code, out, _err, _ = job("restore-check", "--bucket", bucket.name, "--object", seeded.object,
                             env={"SCRATCH_DATABASE_URL": scratch_url})
    assert code == ExitCode.VERIFICATION_MISMATCH
    assert "public.orders" in one_log_line(out)["message"]


@pytest.mark.parametrize("damage, failure", [
    (lambda bucket, b: bucket.blob(b.object).upload_from_string(bucket.blob(b.object).download_as_bytes()[:-100]),
     "verification_mismatch"),
    (lambda bucket, b: bucket.blob(b.object).upload_from_string(b""), "verification_mismatch"),
    (lambda bucket, b: bucket.blob(b.object).delete(), "not_found"),
    (lambda bucket, b: bucket.blob(b.object).upload_from_string(flip_middle_byte(bucket.blob(b.object).download_as_bytes())),
     "verification_mismatch"),
], ids=["truncated-dump", "empty-dump", "missing-dump", "flipped-byte"])
def test_a_damaged_dump_fails_the_check_with_its_code(bucket, seeded, scratch_url, damage, failure, postgres):
    damage(bucket, seeded)
    code, out, err, _ = job("restore-check", "--bucket", bucket.name, "--object", seeded.object,
                            env={"SCRATCH_DATABASE_URL": scratch_url})
    log = one_log_line(out)
    assert log["failure"] == failure and code == ExitCode[failure.upper()], out + err
    with psycopg.connect(postgres.url()) as connection:
        left = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE 'raptorflow_restore%'")
        assert left.fetchall() == [], "a failed check left its database behind"


@pytest.mark.parametrize("damage, command", [
    ("stored-dump", ("restore", "--jobs", "2")),
    ("dump-on-the-way", ("restore", "--jobs", "1")),
    ("dump-on-the-way", ("restore", "--jobs", "2")),
    ("dump-on-the-way", ("restore-check",)),
    ("manifest-on-the-way", ("restore", "--jobs", "1")),
    ("manifest-on-the-way", ("restore", "--jobs", "2")),
    ("manifest-on-the-way", ("restore-check",)),
], ids=lambda value: value if isinstance(value, str) else "-".join(value).replace("--", ""))
def test_a_damaged_download_exits_5_on_every_restoring_path(bucket, seeded, emulator, postgres, damage, command):
    """Bytes damaged in the bucket, or on the way (a proxy flips one byte of every answer carrying the dump or
    the manifest), end every restore and the check with exit 5 and one line, and nothing reaches the target."""
    if damage == "stored-dump":
        blob = bucket.blob(seeded.object)
        blob.upload_from_string(flip_middle_byte(blob.download_as_bytes()))  # the emulator lets the test replace it
    wanted = ".manifest.json" if damage == "manifest-on-the-way" else ".dump"

    def damaging(method: str, path: str, answer: Answer) -> Answer:
        status, headers, data = answer
        name = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        if damage != "stored-dump" and "alt=media" in path and name.endswith(wanted):
            data = flip_middle_byte(data)
        return status, headers, data

    target = new_database(postgres)
    with proxy(emulator.url, damaging) as address:
        code, out, err, _ = job(*command, "--bucket", bucket.name, "--prefix", "supabase",
                                env={"STORAGE_EMULATOR_HOST": address, "TARGET_DATABASE_URL": target,
                                     "SCRATCH_DATABASE_URL": target, **FAST_STORAGE})
    log = one_log_line(out)
    assert (code, log["failure"]) == (ExitCode.VERIFICATION_MISMATCH, "verification_mismatch"), out + err
    assert "Traceback" not in err
    assert user_tables(target) == [], "a damaged dump reached the target"

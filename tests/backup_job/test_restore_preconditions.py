"""What a restore needs before it writes: room to spool the dump for `--jobs N`, and a writable target. Without
them it ends with one line saying what to change, and the target is untouched.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backup_job import cli, codec, restore
from backup_job.errors import ExitCode
from tests.backup_job.jobs import FAST_STORAGE, closed_port, job, new_database, one_log_line, user_tables
from tests.services import postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


@pytest.fixture
def restore_in_process(seeded, bucket, postgres, monkeypatch, capsys):
    """Run `restore --jobs 2` of the seeded backup through the CLI in this process (so a test can arrange the
    spool folder); return (exit code, its one log line, the target URL)."""
    target = new_database(postgres)
    monkeypatch.setenv("TARGET_DATABASE_URL", target)

    def run() -> tuple[int, dict, str]:
        code = cli.main(["restore", "--bucket", bucket.name, "--prefix", "supabase", "--jobs", "2"])
        return code, one_log_line(capsys.readouterr().out), target

    return run


def test_no_room_to_spool_a_parallel_restore_is_refused_before_the_download(restore_in_process, seeded,
                                                                             monkeypatch):
    downloads = []
    needed = codec.archive_bytes(seeded.manifest)
    assert needed > seeded.size_bytes, "the spool holds the archive decompressed, not the stored bytes"
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: types.SimpleNamespace(free=needed - 1))
    monkeypatch.setattr(restore.stream, "download", lambda *args: downloads.append(args))
    code, log, target = restore_in_process()
    assert code == ExitCode.USAGE and log["failure"] == "usage", log
    assert tempfile.gettempdir() in log["message"] and f"{needed:,} bytes" in log["message"], log
    assert "--jobs 1" in log["message"] and downloads == [] and user_tables(target) == []


def test_a_spool_folder_that_fills_up_ends_with_the_same_line(restore_in_process, seeded, monkeypatch):
    """The spool file is /dev/full, so the kernel's own ENOSPC ends the download."""
    real = tempfile.TemporaryDirectory

    @contextlib.contextmanager
    def full(*args, **kwargs) -> Iterator[str]:
        with real(*args, **kwargs) as folder:
            (Path(folder) / "backup.dump").symlink_to("/dev/full")
            yield folder

    monkeypatch.setattr(restore.tempfile, "TemporaryDirectory", full)
    code, log, target = restore_in_process()
    assert code == ExitCode.USAGE and log["failure"] == "usage", log
    needed = codec.archive_bytes(seeded.manifest)
    assert tempfile.gettempdir() in log["message"] and f"{needed:,} bytes" in log["message"], log
    assert "filled up" in log["message"] and user_tables(target) == []


@pytest.mark.parametrize("tables", [(), ("--table", "public.customers")], ids=["whole", "table"])
def test_a_read_only_target_is_refused_before_anything_is_downloaded(postgres, tables):
    """Storage is unreachable here: a restore that got as far as reading the bucket would exit 4."""
    target = new_database(postgres)
    name = target.rsplit("/", 1)[1]
    with psycopg.connect(postgres.url(), autocommit=True) as connection:
        connection.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    code, out, err, _ = job("restore", "--bucket", "backups", *tables,
                            env={"TARGET_DATABASE_URL": target, **FAST_STORAGE,
                                 "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{closed_port()}"})
    log = one_log_line(out)
    assert code == ExitCode.DATABASE_UNREACHABLE, out + err
    assert f"the target database {name} is read-only" in log["message"], log
    assert "nothing was downloaded or written" in log["message"] and postgres.password not in out + err

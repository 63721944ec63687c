"""The tools compared side by side: the backup job itself, and the streaming peers a team would pick instead (a
plain loop, smart_open). barman-cloud, which copies the whole cluster, is in barman_cloud.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

from backup_job.storage import MANIFEST_SUFFIX
from bench.harness import Bench, JobBackup, Outcome, restore_into_empty
from bench.measure import Run, run
from core.contracts import BUCKET_OPTION, BackupKind, Command, job_argv
from tools.offline import ROOT

# The straightforward loop: read pg_dump's output, hash it, write 8 MiB chunks to a resumable upload, one thread.
NAIVE_BACKUP = """
import hashlib, subprocess, sys
from google.cloud import storage
blob = storage.Client().bucket(sys.argv[1]).blob(sys.argv[2], chunk_size=8 << 20)
dump = subprocess.Popen(["pg_dump", "--format=custom", "--no-password"], stdout=subprocess.PIPE)
digest = hashlib.sha256()
with blob.open("wb", if_generation_match=0) as out:
    while block := dump.stdout.read(8 << 20):
        digest.update(block)
        out.write(block)
sys.exit(dump.wait())
"""
# ... and its restore: download to a temporary file, then pg_restore it.
NAIVE_RESTORE = """
import os, subprocess, sys, tempfile
from google.cloud import storage
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "backup.dump")
    storage.Client().bucket(sys.argv[1]).blob(sys.argv[2]).download_to_filename(path)
    sys.exit(subprocess.run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "-d", sys.argv[3],
                             path]).returncode)
"""
# A streaming writer and reader with smart_open's defaults.
SMART_OPEN_WRITE = ("import shutil, sys, smart_open\n"
                    "with smart_open.open(sys.argv[1], 'wb') as out: shutil.copyfileobj(sys.stdin.buffer, out)")
SMART_OPEN_READ = ("import shutil, sys, smart_open\n"
                   "with smart_open.open(sys.argv[1], 'rb') as src: shutil.copyfileobj(src, sys.stdout.buffer)")


def _job(bench: Bench, *args: str, **env: str) -> Run:
    return run([sys.executable, "-m", "backup_job", *args, BUCKET_OPTION, bench.bucket.name], bench.watched,
               env=bench.env(**env), cwd=ROOT, stdout=subprocess.PIPE)  # its one log line says why it failed


def backup_job(bench: Bench, *options: str) -> Outcome:
    """`backup_job backup` (with `options`), then `backup_job restore` (the recovery path) into an empty database;
    also `restore-check` and `restore --jobs N` for the record. The backup's mode and compression are its
    manifest's; its objects are deleted after."""
    before = {blob.name for blob in bench.bucket.list_blobs(prefix="job/")}
    backup = _job(bench, *job_argv(Command.BACKUP, BackupKind.FULL), "--prefix", "job", *options, DATABASE_URL=bench.url)
    (manifest_name,) = [blob.name for blob in bench.bucket.list_blobs(prefix="job/")
                        if blob.name not in before and blob.name.endswith(MANIFEST_SUFFIX)]
    job = JobBackup(json.loads(bench.bucket.blob(manifest_name).download_as_bytes()))
    name = job.manifest["object"]
    outcome = Outcome(backup=backup, stored_bytes=sum(bench.size_of(o) for o in job.objects), mode=job.mode)
    bench.keep_job_backup(job)

    def restore(*extra: str):
        return lambda target: _job(bench, Command.RESTORE, "--object", name, *extra,
                                   TARGET_DATABASE_URL=bench.postgres.url(target))

    outcome.restore = restore_into_empty(bench, "backup_job restore", restore())
    outcome.extra[f"restore --jobs {bench.jobs}"] = restore_into_empty(
        bench, f"backup_job restore --jobs {bench.jobs}", restore("--jobs", str(bench.jobs)))
    outcome.extra[Command.RESTORE_CHECK] = _job(bench, Command.RESTORE_CHECK, "--object", name,
                                                SCRATCH_DATABASE_URL=bench.postgres.url())
    bench.remove([*job.objects, manifest_name])
    return outcome


def naive_loop(bench: Bench) -> Outcome:
    """The straightforward single-threaded loop, and a download-then-pg_restore restore."""
    name = bench.object_name("naive")
    backup = run([sys.executable, "-c", NAIVE_BACKUP, bench.bucket.name, name], bench.watched, env=bench.env())
    restore = restore_into_empty(bench, "naive loop", lambda target: run(
        [sys.executable, "-c", NAIVE_RESTORE, bench.bucket.name, name, target], bench.watched, env=bench.env(target)))
    outcome = Outcome(backup=backup, restore=restore, stored_bytes=bench.size_of(name))
    bench.remove([name])
    return outcome


def smart_open_stream(bench: Bench) -> Outcome:
    """`pg_dump -Fc | smart_open` (GCS writer, default settings), and `smart_open | pg_restore`."""
    name = bench.object_name("smart-open")
    url = f"gs://{bench.bucket.name}/{name}"
    writer = f"pg_dump --format=custom --no-password | {sys.executable} -c \"$WRITE\" \"$URL\""
    backup = run(["bash", "-o", "pipefail", "-c", writer], bench.watched,
                 env=bench.env(WRITE=SMART_OPEN_WRITE, URL=url))

    def restore(target: str) -> Run:
        reader = (f"{sys.executable} -c \"$READ\" \"$URL\" | pg_restore --no-owner --no-privileges --exit-on-error "
                  f"--no-password --dbname=\"$TARGET\"")
        return run(["bash", "-o", "pipefail", "-c", reader], bench.watched,
                   env=bench.env(target, READ=SMART_OPEN_READ, URL=url, TARGET=target))

    outcome = Outcome(backup=backup, restore=restore_into_empty(bench, "smart_open", restore),
                      stored_bytes=bench.size_of(name))
    bench.remove([name])
    return outcome

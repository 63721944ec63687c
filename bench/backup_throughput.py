"""Benchmark: the backup job against a plain `pg_dump -Fc > /dev/null`, measured in the same run.

    python -m bench.backup_throughput [--sizes-mb 200,600] [--repeat 3]

For each target size it fills a database with a table of random base64 text
(poorly compressible, unlike pgbench's tables) until its custom-format dump is
about that size, then alternates runs of

- baseline: `pg_dump --format=custom` with stdout on /dev/null, and
- job: `python -m backup_job backup --kind full` into fake-gcs-server,

and reports median wall times, their ratio, the dump size and the job's peak
RSS. It also times a straightforward loop for reference - read pg_dump's
output, hash it, write 8 MiB chunks to a resumable upload, all in one thread -
and the job's peak
RSS (VmHWM of the job's own process, sampled from /proc). For context it also
times the storage side alone: the same number of bytes uploaded from memory in
the job's chunk size (fake-gcs-server re-hashes the whole upload on every
chunk, so its cost grows with the square of the dump size; real Cloud Storage
does not). Servers are started on 127.0.0.1 and stopped at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid

import psycopg
from google.cloud import storage

from tests.services import PostgresServer, StorageEmulator, postgres_bindir
from tools.offline import ROOT

# One row of random text: 1024 random bytes as base64 (about 1.37 KB), about 1.03 KB once pg_dump's zlib is done.
DUMP_BYTES_PER_ROW = 1_040


def fill(url: str, size_mb: int) -> None:
    """Create the tables: random text sized for a ~size_mb dump, plus an ordinary table."""
    rows = size_mb * 1_000_000 // DUMP_BYTES_PER_ROW
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        connection.execute("CREATE TABLE noise (id bigint PRIMARY KEY, body text NOT NULL)")
        connection.execute(
            "INSERT INTO noise SELECT i, encode(gen_random_bytes(1024), 'base64') FROM generate_series(1, %s) i",
            (rows,),
        )
        connection.execute(
            "CREATE TABLE accounts AS SELECT i AS id, i % 97 AS branch, 0 AS balance FROM generate_series(1, 200000) i"
        )
        connection.execute("VACUUM ANALYZE")


def peak_rss_while(process: subprocess.Popen) -> int:
    """Peak resident set (bytes) of `process` itself, from /proc/<pid>/status VmHWM, sampled until it exits."""
    peak = 0
    while process.poll() is None:
        try:
            with open(f"/proc/{process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.02)
    return peak


def time_baseline(server: PostgresServer, url: str) -> float:
    """Seconds for `pg_dump --format=custom > /dev/null`."""
    env = {**os.environ, **_libpq_env(url)}
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run([str(server.bindir / "pg_dump"), "--format=custom", "--no-password"],
                       stdout=sink, env=env, check=True)
    return time.perf_counter() - started


def _libpq_env(url: str) -> dict[str, str]:
    from backup_job.database import Database

    return {k: v for k, v in Database(url).child_env().items() if k.startswith("PG")}


def time_job(url: str, bucket: str) -> tuple[float, int, dict]:
    """Seconds, peak RSS and log line of one `backup --kind full` run."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "backup_job", "backup", "--kind", "full", "--bucket", bucket],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "DATABASE_URL": url},
    )
    peak = [0]
    sampler = threading.Thread(target=lambda: peak.__setitem__(0, peak_rss_while(process)))
    sampler.start()
    out, _ = process.communicate()
    elapsed = time.perf_counter() - started
    sampler.join()
    log = json.loads(out.decode().strip().splitlines()[-1])
    if log["result"] != "success":
        raise RuntimeError(f"backup failed: {log}")
    return elapsed, peak[0], log


NAIVE_LOOP = """
import hashlib, os, subprocess, sys
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


def time_naive_loop(url: str, bucket: str) -> float:
    """Seconds for the straightforward single-threaded loop (the design the job improves on)."""
    env = {**os.environ, **_libpq_env(url), "PATH": f"{postgres_bindir()}:{os.environ['PATH']}"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", NAIVE_LOOP, bucket, f"naive-{uuid.uuid4().hex}"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def time_upload_only(bucket: storage.Bucket, size: int) -> float:
    """Seconds to upload `size` random bytes from memory in the job's chunk size: the storage side alone."""
    from backup_job.dump import DEFAULT_CHUNK_BYTES

    data = io.BytesIO(os.urandom(size))
    started = time.perf_counter()
    bucket.blob(f"upload-only-{uuid.uuid4().hex}", chunk_size=DEFAULT_CHUNK_BYTES).upload_from_file(
        data, if_generation_match=0, checksum="crc32c"
    )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.backup_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", default="200,600", help="target dump sizes in MB (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side per size (default %(default)s)")
    args = parser.parse_args(argv)

    postgres = PostgresServer().start()
    emulator = StorageEmulator().start()
    results = []
    try:
        gcs = storage.Client()
        for size_mb in (int(s) for s in args.sizes_mb.split(",")):
            url = postgres.create_database(f"bench_{size_mb}")
            print(f"filling a database for a ~{size_mb} MB dump ...", flush=True)
            fill(url, size_mb)
            bucket = gcs.create_bucket(f"bench-{uuid.uuid4().hex[:12]}").name
            baselines, jobs, peaks, naive, size = [], [], [], [], 0
            for _ in range(args.repeat):
                baselines.append(time_baseline(postgres, url))
                naive.append(time_naive_loop(url, bucket))
                elapsed, peak, log = time_job(url, bucket)
                jobs.append(elapsed)
                peaks.append(peak)
                size = log["bytes"]
            upload_only = time_upload_only(gcs.bucket(bucket), size)
            row = {
                "targetMb": size_mb,
                "dumpBytes": size,
                "baselineSeconds": round(statistics.median(baselines), 2),
                "jobSeconds": round(statistics.median(jobs), 2),
                "ratio": round(statistics.median(jobs) / statistics.median(baselines), 3),
                "jobPeakRssMb": round(max(peaks) / 2**20, 1),
                "naiveLoopRatio": round(statistics.median(naive) / statistics.median(baselines), 3),
                "uploadOnlySeconds": round(upload_only, 2),
                "runs": args.repeat,
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    finally:
        emulator.stop()
        postgres.stop()

    print()
    print(f"{'dump':>10} {'pg_dump -Fc':>12} {'job':>8} {'ratio':>6} {'job peak RSS':>13} {'upload alone':>13} "
          f"{'naive loop ratio':>17}")
    for row in results:
        print(f"{row['dumpBytes'] / 1e6:>8.0f}MB {row['baselineSeconds']:>11.2f}s {row['jobSeconds']:>7.2f}s "
              f"{row['ratio']:>6.2f} {row['jobPeakRssMb']:>10.1f} MB {row['uploadOnlySeconds']:>12.2f}s "
              f"{row['naiveLoopRatio']:>17.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the backup job side by side with the tools a team would pick instead, and the floors.

    python -m bench [--sizes-mb 200,600] [--repeat 3] [--json] [--tools job,naive,smart_open,barman]

For each target size it fills one database with a table of random base64 text
(poorly compressible: about 1.37 KB a row, 1.03 KB once zlib is done) until its
custom-format dump is about that size, then runs every tool in turn, `--repeat`
times, against the same PostgreSQL server and the same fake-gcs-server:

- backup_job: `python -m backup_job backup`, then `restore` (the recovery path:
  download, restore, sha256 and row-count verification) into an empty database
- naive loop: pg_dump read, hashed and written to an 8 MiB-chunk upload in one
  thread; restore = download to a file, then pg_restore
- pg_dump | smart_open: smart_open's GCS writer and reader, default settings
- barman-cloud: barman-cloud-backup / barman-cloud-restore of the whole cluster
  (physical), restored by starting a server on it
- floors: pg_dump -Fc > /dev/null (default level and the job's -Z1), the job's
  dump bytes uploaded alone (one streaming request, no interpreter start), and
  pg_restore of that dump from a local file (-j1 and -j2) into an empty database

It prints medians: backup and restore seconds, bytes stored, peak RSS of the
tool's process tree, and the ratio to the floor measured in the same run - the
backup floor is the larger of the faster pg_dump and the upload alone, the
restore floor the faster local pg_restore. `--json` prints one object per tool
and size. Servers listen on 127.0.0.1, live in temporary folders and are
stopped on exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from google.cloud import storage

from bench import barman_cloud, floors, harness, peers
from bench.measure import Run, Watched
from core.contracts import Command
from tests.services import PostgresServer, StorageEmulator

# One row of random text: 1024 random bytes as base64 (about 1.37 KB), about 1.03 KB once pg_dump's zlib is done.
DUMP_BYTES_PER_ROW = 1_040
BACKUP_FLOORS = ("floor: pg_dump -Fc", "floor: pg_dump -Fc -Z1", "floor: upload alone")
RESTORE_FLOORS = ("floor: pg_restore -j1", "floor: pg_restore -j2")
TOOLS = {"job": "backup_job", "naive": "naive loop", "smart_open": "pg_dump | smart_open", "barman": "barman-cloud"}


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
        connection.execute("ALTER TABLE accounts ADD PRIMARY KEY (id)")
        connection.execute("VACUUM ANALYZE")
        connection.execute("CHECKPOINT")


def _median(runs: list[Run], attribute: str) -> float:
    return statistics.median(getattr(r, attribute) for r in runs)


def summarise(tool: str, size_mb: int, outcomes: list[harness.Outcome]) -> dict:
    """One JSON row from a tool's repeats (floors filled in later)."""
    backups = [o.backup for o in outcomes if o.backup]
    restores = [o.restore for o in outcomes if o.restore]
    row: dict = {"tool": tool, "sizeMb": size_mb,
                 "backupSeconds": round(_median(backups, "seconds"), 2) if backups else None,
                 "restoreSeconds": round(_median(restores, "seconds"), 2) if restores else None,
                 "storedBytes": max((o.stored_bytes for o in outcomes), default=0) or None,
                 "peakRssMb": None, "ratioToFloor": None, "restoreRatioToFloor": None, "runs": len(outcomes)}
    peaks = [r.peak_rss_bytes for r in backups + restores if r.peak_rss_bytes]
    if peaks:
        row["peakRssMb"] = round(max(peaks) / 2**20, 1)
        row["backupPeakRssMb"] = round(max(r.peak_rss_bytes for r in backups) / 2**20, 1) if backups else None
        row["restorePeakRssMb"] = round(max(r.peak_rss_bytes for r in restores) / 2**20, 1) if restores else None
    if backups:
        row["backupCpuSeconds"] = {"tool": round(_median(backups, "cpu_seconds"), 2),
                                   "postgres": round(_median(backups, "server_cpu_seconds"), 2),
                                   "storage": round(_median(backups, "storage_cpu_seconds"), 2)}
    if restores:
        row["restoreCpuSeconds"] = {"tool": round(_median(restores, "cpu_seconds"), 2),
                                    "postgres": round(_median(restores, "server_cpu_seconds"), 2),
                                    "storage": round(_median(restores, "storage_cpu_seconds"), 2)}
    for name in sorted({k for o in outcomes for k in o.extra}):
        extra = [o.extra[name] for o in outcomes if name in o.extra]
        key = "restoreCheckSeconds" if name == Command.RESTORE_CHECK else "restoreJobs2Seconds"
        row[key] = round(_median(extra, "seconds"), 2)
    errors = [o.error for o in outcomes if o.error]
    if errors:
        row["error"] = errors[0]
    return row


def add_ratios(rows: list[dict]) -> None:
    """ratioToFloor: backup seconds over the backup floor; restoreRatioToFloor: restore seconds over the restore floor."""
    by_tool = {row["tool"]: row for row in rows}
    pg_dump = min(by_tool[t]["backupSeconds"] for t in BACKUP_FLOORS[:2] if by_tool.get(t, {}).get("backupSeconds"))
    upload = by_tool.get(BACKUP_FLOORS[2], {}).get("backupSeconds") or 0
    backup_floor = max(pg_dump, upload)
    restores = [by_tool[t]["restoreSeconds"] for t in RESTORE_FLOORS if by_tool.get(t, {}).get("restoreSeconds")]
    restore_floor = min(restores) if restores else None
    for row in rows:
        row["backupFloorSeconds"], row["restoreFloorSeconds"] = backup_floor, restore_floor
        if row["backupSeconds"] and row["tool"] not in RESTORE_FLOORS:
            row["ratioToFloor"] = round(row["backupSeconds"] / backup_floor, 2)
        if row["restoreSeconds"] and restore_floor:
            row["restoreRatioToFloor"] = round(row["restoreSeconds"] / restore_floor, 2)


def print_table(rows: list[dict]) -> None:
    def cell(value, spec: str = "") -> str:
        return "-" if value is None else format(value, spec)

    print(f"{'size':>5} {'tool':<24} {'backup s':>9} {'restore s':>10} {'stored MB':>10} {'peak RSS MB':>12} "
          f"{'backup/floor':>13} {'restore/floor':>14}")
    for row in rows:
        stored = row["storedBytes"] / 1e6 if row["storedBytes"] else None
        print(f"{row['sizeMb']:>5} {row['tool']:<24} {cell(row['backupSeconds'], '.2f'):>9} "
              f"{cell(row['restoreSeconds'], '.2f'):>10} {cell(stored, '.1f'):>10} {cell(row['peakRssMb'], '.1f'):>12} "
              f"{cell(row['ratioToFloor'], '.2f'):>13} {cell(row['restoreRatioToFloor'], '.2f'):>14}")
        if row.get("error"):
            print(f"{'':>5}   error: {row['error']}")
    for row in rows:
        if row["tool"] == "backup_job":
            print(f"{row['sizeMb']:>5} backup_job restore-check {row.get('restoreCheckSeconds')} s, restore --jobs 2 "
                  f"{row.get('restoreJobs2Seconds')} s; backup CPU s {row.get('backupCpuSeconds')}")


def run_size(size_mb: int, repeat: int, selected: set[str], postgres: PostgresServer, watched: Watched,
             gcs: storage.Client, scratch: Path, relay: barman_cloud.BarmanRelay | None, log: Callable[[str], None]) -> list[dict]:
    source = f"bench_{size_mb}"
    url = postgres.create_database(source)
    log(f"filling a database for a ~{size_mb} MB dump ...")
    fill(url, size_mb)
    from backup_job.database import row_counts

    with psycopg.connect(url) as connection:
        expected = row_counts(connection)
        database_bytes = connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
    bench = harness.Bench(postgres, watched, source, gcs.create_bucket(f"bench-{uuid.uuid4().hex[:12]}"),
                          scratch, expected)
    runners: dict[str, Callable[[], harness.Outcome]] = {
        "backup_job": lambda: peers.backup_job(bench),
        "floor: pg_dump -Fc": lambda: floors.pg_dump(bench, None),
        "floor: pg_dump -Fc -Z1": lambda: floors.pg_dump(bench, 1),
        "floor: upload alone": lambda: floors.upload(bench),
        "floor: pg_restore -j1": lambda: floors.pg_restore(bench, 1),
        "floor: pg_restore -j2": lambda: floors.pg_restore(bench, 2),
        "naive loop": lambda: peers.naive_loop(bench),
        "pg_dump | smart_open": lambda: peers.smart_open_stream(bench),
    }
    if relay is not None:
        runners["barman-cloud"] = lambda: barman_cloud.barman(bench, relay)
    order = [t for t in runners if t in selected or t.startswith("floor")]
    outcomes: dict[str, list[harness.Outcome]] = {t: [] for t in order}
    for attempt in range(repeat):
        for tool in order:  # the job first: the floors need its dump
            log(f"  {size_mb} MB, run {attempt + 1}/{repeat}: {tool}")
            try:
                outcomes[tool].append(runners[tool]())
            except Exception as exc:  # noqa: BLE001 - a failing peer is reported in its row, the others go on
                detail = getattr(exc, "stderr", b"") or b""
                text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
                message = f"{type(exc).__name__}: {exc} {text.strip()[-600:]}".strip()
                log(f"    failed: {message}")
                outcomes[tool].append(harness.Outcome(error=message))
    rows = [summarise(tool, size_mb, outcomes[tool]) for tool in order]
    add_ratios(rows)
    for row in rows:  # the recovery model's figure: database MB (MiB, as the model counts) restored per second
        row["databaseBytes"] = database_bytes
        if row["restoreSeconds"]:
            row["restoreDatabaseMbPerSecond"] = round(database_bytes / 2**20 / row["restoreSeconds"], 1)
    with psycopg.connect(postgres.url(), autocommit=True) as connection:  # the next size's cluster holds only its own
        connection.execute(f'DROP DATABASE "{source}" WITH (FORCE)')
        connection.execute("CHECKPOINT")
    if bench.local_dump is not None:
        bench.local_dump.unlink(missing_ok=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", default="200,600", help="target dump sizes in MB (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each tool per size (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per tool and size")
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help="tools besides the floors, comma-separated (default %(default)s)")
    args = parser.parse_args(argv)
    chosen = set(args.tools.split(","))
    unknown = chosen - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))} (choose from {', '.join(TOOLS)})")
    selected = {TOOLS[key] for key in chosen}

    def log(message: str) -> None:
        print(message, file=sys.stderr if args.json else sys.stdout, flush=True)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    scratch = Path(tempfile.mkdtemp(prefix="raptorflow-bench-"))
    spool = scratch / "wal-spool"
    spool.mkdir()
    if os.geteuid() == 0:  # the server runs as postgres: its archive_command writes into the spool
        shutil.chown(spool, "postgres", "postgres")
        os.chmod(scratch, 0o755)  # noqa: S103 - postgres must reach the spool and barman's restored data folder
    emulator = postgres = None
    rows: list[dict] = []
    try:
        emulator = StorageEmulator().start()
        gcs = storage.Client()
        relay = None
        if "barman-cloud" in selected:
            wal_bucket = gcs.create_bucket(f"barman-{uuid.uuid4().hex[:12]}")
            relay = barman_cloud.BarmanRelay(spool, f"gs://{wal_bucket.name}/cluster")
        postgres = PostgresServer(barman_cloud.barman_settings(spool) if relay else None).start()
        watched = Watched(int((postgres.data / "postmaster.pid").read_text().split()[0]), emulator._server._process.pid)
        for size_mb in (int(s) for s in args.sizes_mb.split(",")):
            rows += run_size(size_mb, args.repeat, selected, postgres, watched, gcs, scratch, relay, log)
    except KeyboardInterrupt:
        log("interrupted: stopping the servers")
        return 130
    except Exception:  # noqa: BLE001 - the servers are stopped below either way
        traceback.print_exc()
        return 1
    finally:
        if postgres is not None:
            postgres.stop()
        if emulator is not None:
            emulator.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print()
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

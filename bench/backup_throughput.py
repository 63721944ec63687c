"""Benchmark: the backup job side by side with the tools a team would pick instead, and the floors.

    python -m bench [--datasets random,app] [--sizes-mb 200,600] [--repeat 3] [--jobs N] [--json]
                    [--tools job,naive,smart_open,barman] [--resume FILE]

For each dataset and target size it fills one database until its `pg_dump -Fc`
(default level) is about that size (bench/datasets.py: `random`, one table of
random base64, the worst case for compression and parallelism; `app`, 25
tables of an application-like schema whose text compresses like real data),
then runs every tool in turn, `--repeat` times, against the same PostgreSQL
server and the same fake-gcs-server:

- backup_job: `python -m backup_job backup` (its default mode and compression,
  read back from its manifest), then `restore` (the recovery path: download,
  restore, sha256 and row-count verification) into an empty database, and
  `restore --jobs N` and `restore-check` for the record; on the app dataset
  also the other mode (`backup --mode parallel` when the default ran single,
  `--mode single` when it ran parallel), for the parallel restore's target
- naive loop: pg_dump read, hashed and written to an 8 MiB-chunk upload in one
  thread; restore = download to a file, then pg_restore
- pg_dump | smart_open: smart_open's GCS writer and reader, default settings
- barman-cloud: barman-cloud-backup / barman-cloud-restore of the whole cluster,
  restored by starting a server on it: a physical restore, a reference only
  (Supabase allows no file-level access)
- floors (bench/floors.py): pg_dump -Fc at its default level and at -Z1, the
  read floors (`pg_dump -Fc -Z0` thrown away, `pg_dump -Fd -j N -Z0` into a
  temporary folder), the job's stored bytes uploaded alone, and pg_restore of
  the job's archive from a local file (-j1 and -j N) into an empty database

It prints medians and the ratios to the floors measured in the same run
(bench/report.py), seconds per GB at each size, and each target of issue 25,
met or not. `--json` prints one object per dataset, size and tool instead. With `--resume FILE` each finished
dataset and size, and each finished run of every tool, is kept in FILE, and a run with the same FILE and settings
takes those instead of running them again (bench/resume.py): the hours-long run of issue 25 can be stopped
anywhere and continued, losing at most the run in progress.
Servers listen on 127.0.0.1, live in temporary folders and are stopped on exit,
error or Ctrl-C (SIGINT or SIGTERM: exit 130 with one line).

Exit codes: 0 the benchmark ran (a tool that failed is reported in its row),
1 the benchmark itself failed (servers, fill), 2 a usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from google.cloud import storage

from bench import barman_cloud, datasets, floors, harness, peers, report, resume
from bench.measure import Watched
from tests.services import PostgresServer, StorageEmulator

# Where the job's other mode runs beside its default: the datasets with several big tables (random has one).
PARALLEL_DATASETS = ("app",)
TOOLS = {"job": report.JOB, "naive": "naive loop", "smart_open": "pg_dump | smart_open", "barman": report.PHYSICAL}


def _runners(bench: harness.Bench, relay: barman_cloud.BarmanRelay | None) -> dict[str, Callable[[], harness.Outcome]]:
    """Every tool and floor by name, in the order they run: the job first (the floors need its backup)."""
    jobs = bench.jobs
    runners: dict[str, Callable[[], harness.Outcome]] = {
        report.JOB: lambda: peers.backup_job(bench),
        report.JOB_SINGLE: lambda: peers.backup_job(bench, "--mode", harness.SINGLE),
        report.JOB_PARALLEL: lambda: peers.backup_job(bench, "--mode", harness.PARALLEL),
        report.PG_DUMP_FC: lambda: floors.pg_dump(bench, None),
        report.PG_DUMP_Z1: lambda: floors.pg_dump(bench, 1),
        report.READ_FC: lambda: floors.pg_dump(bench, 0),
        report.read_floor_name(jobs): lambda: floors.pg_dump_directory(bench),
        report.UPLOAD: lambda: floors.upload(bench),
        report.restore_floor_name(1): lambda: floors.pg_restore(bench, 1),
        report.restore_floor_name(jobs): lambda: floors.pg_restore(bench, jobs),
        "naive loop": lambda: peers.naive_loop(bench),
        "pg_dump | smart_open": lambda: peers.smart_open_stream(bench),
    }
    if relay is not None:
        runners[report.PHYSICAL] = lambda: barman_cloud.barman(bench, relay)
    return runners


def _failure(exc: Exception) -> str:
    """One line: the exception, and the end of what the failed command printed (its log line, its stderr) without
    the interpreter's warnings."""
    said = []
    for stream in (getattr(exc, "output", None), getattr(exc, "stderr", None)):
        text = stream.decode(errors="replace") if isinstance(stream, bytes) else str(stream or "")
        said += [line for line in text.splitlines() if line.strip() and "Warning" not in line and "warnings.warn" not in line]
    return f"{type(exc).__name__}: {exc} {' '.join(said)[-600:]}".strip()


def run_size(dataset: str, size_mb: int, repeat: int, selected: set[str], jobs: int, postgres: PostgresServer,
             watched: Watched, gcs: storage.Client, scratch: Path, relay: barman_cloud.BarmanRelay | None,
             log: Callable[[str], None], record: resume.Record | None = None) -> list[dict]:
    """Fill one database with `dataset` for a ~size_mb dump, run every tool `repeat` times (less the runs `record`
    kept, each new run kept there as it finishes), return the rows."""
    source = f"bench_{dataset}_{size_mb}"
    url = postgres.create_database(source)
    log(f"filling a {dataset} database for a ~{size_mb} MB dump ...")
    bench = harness.Bench(postgres, watched, source, gcs.create_bucket(f"bench-{uuid.uuid4().hex[:12]}"), scratch,
                          {}, jobs=jobs)
    sizing = datasets.fill(dataset, url, size_mb, postgres.bindir / "pg_dump", bench.env(), log)
    from backup_job.database import row_counts

    with psycopg.connect(url) as connection:
        bench.expected_rows = row_counts(connection)
        database_bytes = connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
    runners = _runners(bench, relay)
    variants = {report.JOB_SINGLE: harness.SINGLE, report.JOB_PARALLEL: harness.PARALLEL}
    order = [t for t in runners if t in selected or t.startswith("floor") or (t in variants and report.JOB in selected)]
    outcomes: dict[str, list[harness.Outcome]] = {t: [] for t in order}
    kept = record.runs_of(dataset, size_mb)[:repeat] if record is not None else []
    for run in kept:
        for tool in order:
            if tool in run:
                outcomes[tool].append(run[tool])
    if kept:
        log(f"  {dataset} {size_mb} MB: {len(kept)} of {repeat} runs from {record.path}")  # type: ignore[union-attr]
    for attempt in range(len(kept), repeat):
        this: dict[str, harness.Outcome] = {}
        for tool in order:
            if tool in variants and (dataset not in PARALLEL_DATASETS
                                     or all(o.mode == variants[tool] for o in outcomes[report.JOB])):
                continue  # the job's default ran in this mode already, or the dataset has one big table
            log(f"  {dataset} {size_mb} MB, run {attempt + 1}/{repeat}: {tool}")
            try:
                this[tool] = runners[tool]()
            except Exception as exc:  # noqa: BLE001 - a failing tool is reported in its row, the others go on
                log(f"    failed: {_failure(exc)}")
                this[tool] = harness.Outcome(error=_failure(exc))
            outcomes[tool].append(this[tool])
        if record is not None:
            record.keep_run(dataset, size_mb, this)
    rows = [report.summarise(tool, dataset, size_mb, outcomes[tool]) for tool in order if outcomes[tool]]
    report.add_ratios(rows)
    for row in rows:  # the recovery model's figure: database MB (MiB, as the model counts) restored per second
        row["databaseBytes"] = database_bytes
        row["fill"] = sizing
        if row["restoreSeconds"]:
            row["restoreDatabaseMbPerSecond"] = round(database_bytes / 2**20 / row["restoreSeconds"], 1)
    if record is not None:  # before the clean-up below: a kill there leaves the rows, not runs that need a new fill
        record.keep(rows)
    with psycopg.connect(postgres.url(), autocommit=True) as connection:  # the next size's cluster holds only its own
        connection.execute(f'DROP DATABASE "{source}" WITH (FORCE)')
        connection.execute("CHECKPOINT")
    bench.forget_files()
    return rows


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(datasets.NAMES),
                        help="datasets, comma-separated (default %(default)s)")
    parser.add_argument("--sizes-mb", default="200,600", help="target pg_dump -Fc sizes in MB (default %(default)s)")
    parser.add_argument("--repeat", type=_positive, default=3, help="runs of each tool per size (default %(default)s)")
    parser.add_argument("--jobs", type=_positive, default=max(2, os.cpu_count() or 1),
                        help="N of pg_dump -Fd -j N, pg_restore -j N and restore --jobs N: at least 2 "
                             "(default: this machine's cores, %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per dataset, size and tool")
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help="tools besides the floors, comma-separated (default %(default)s)")
    parser.add_argument("--resume", type=Path, metavar="FILE",
                        help="keep each finished dataset and size's rows, and each finished run of a size, in FILE, "
                             "and take those already there instead of running them again (the same settings only)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = _parser()
    args = parser.parse_args(argv)
    chosen, names = set(args.tools.split(",")), args.datasets.split(",")
    if unknown := chosen - set(TOOLS):
        parser.error(f"unknown tools: {', '.join(sorted(unknown))} (choose from {', '.join(TOOLS)})")
    if unknown_data := set(names) - set(datasets.NAMES):
        parser.error(f"unknown datasets: {', '.join(sorted(unknown_data))} (choose from {', '.join(datasets.NAMES)})")
    if args.jobs < 2:
        parser.error("--jobs must be at least 2: the -j1 floor is measured anyway")
    try:
        sizes = [_positive(s) for s in args.sizes_mb.split(",")]
    except (ValueError, argparse.ArgumentTypeError):
        parser.error(f"--sizes-mb takes positive whole numbers of MB separated by commas, not {args.sizes_mb!r}")
    selected = {TOOLS[key] for key in chosen}
    record = None
    if args.resume is not None:
        try:
            record = resume.Record(args.resume, {"repeat": args.repeat, "tools": sorted(chosen), "jobs": args.jobs,
                                                 "code": resume.code()})
        except resume.Mismatch as exc:
            parser.error(str(exc))

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
        if report.PHYSICAL in selected:
            wal_bucket = gcs.create_bucket(f"barman-{uuid.uuid4().hex[:12]}")
            relay = barman_cloud.BarmanRelay(spool, f"gs://{wal_bucket.name}/cluster")
        postgres = PostgresServer(barman_cloud.barman_settings(spool) if relay else None).start()
        watched = Watched(int((postgres.data / "postmaster.pid").read_text().split()[0]), emulator._server._process.pid)
        for dataset in names:
            for size_mb in sizes:
                if record is not None and (kept := record.finished(dataset, size_mb)):
                    log(f"{dataset} {size_mb} MB: {len(kept)} rows from {args.resume}")
                    rows += kept
                    continue
                group = run_size(dataset, size_mb, args.repeat, selected, args.jobs, postgres, watched, gcs, scratch,
                                 relay, log, record)
                rows += group
    except KeyboardInterrupt:
        print("interrupted: the servers and temporary folders are removed", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line; the servers are stopped below either way
        print(f"the benchmark failed: {_failure(exc)}", file=sys.stderr, flush=True)
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
        report.print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

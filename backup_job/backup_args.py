"""The `backup` command's knobs of mode, compression and upload, and the request they make.

Each is documented in the module it drives: backup_job.by_table (`--mode`, `--jobs`, `--parallel-table-mb`),
backup_job.codec (`--compression`, `--compress-level`, `--compress-threads`) and backup_job.transfer
(`--resume-window-bytes`).
"""

from __future__ import annotations

import argparse

from backup_job import by_table, codec, dump, transfer
from backup_job.errors import ExitCode, JobError


def add_arguments(backup: argparse.ArgumentParser) -> None:
    """The backup command's knobs of mode, compression and upload."""
    backup.add_argument("--mode", choices=by_table.MODES, default=by_table.AUTO,
                        help="single: one archive; parallel: big tables apart (backup_job.by_table); auto: parallel "
                             "when two tables are big (default %(default)s)")
    backup.add_argument("--jobs", type=int, default=2, metavar="N",
                        help="the parallel mode's table streams at once (default %(default)s)")
    backup.add_argument("--parallel-table-mb", type=int, default=by_table.PARALLEL_TABLE_MB, metavar="MB",
                        help="a table whose heap holds this many MB travels apart (default %(default)s)")
    backup.add_argument("--compression", choices=codec.COMPRESSIONS, default=codec.ZSTD,
                        help="zstd: an uncompressed archive in one zstd frame (default); pg_dump: zlib inside it")
    backup.add_argument("--compress-level", type=int, metavar="L",
                        help=f"zstd 1-19 (default {codec.DEFAULT_ZSTD_LEVEL}; a parallel table stream whose rows "
                             f"compress {codec.COMPRESSIBLE_LEVEL}) or zlib 0-9 (default {codec.DEFAULT_ZLIB_LEVEL})")
    backup.add_argument("--compress-threads", type=int, metavar="N",
                        help="zstd's worker threads for the archive (default: the cores available, "
                             f"{codec.default_threads()}; 1 in the parallel mode, whose table streams run beside it)")
    backup.add_argument("--resume-window-bytes", type=int, default=transfer.DEFAULT_WINDOW_BYTES,
                        help="bytes kept to resume the uploads after a broken connection, shared in equal parts by the "
                             "archive and the table streams running at once in the parallel mode (default "
                             "%(default)s)")


def request_from(args: argparse.Namespace, bucket: str) -> dump.BackupRequest:
    """The request the parsed backup command makes; JobError(USAGE) for knobs out of range."""
    threads = 1 if args.compress_threads is None else args.compress_threads
    level = codec.checked_level(args.compression, args.compress_level, threads)
    if not 1 <= args.jobs <= 64 or args.parallel_table_mb < 1:
        raise JobError(ExitCode.USAGE, "--jobs must be 1-64 and --parallel-table-mb at least 1")
    return dump.BackupRequest(kind=args.kind, bucket=bucket, prefix=args.prefix, reason=args.reason,
                         compression=args.compression, compress_level=level, compress_threads=args.compress_threads,
                         mode=args.mode, jobs=args.jobs, parallel_table_mb=args.parallel_table_mb,
                         window_bytes=args.resume_window_bytes, table_level=args.compress_level)

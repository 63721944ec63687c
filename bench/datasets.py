"""The benchmark's datasets, each filled until its `pg_dump -Fc` is about the requested size.

- `random`: the worst case for a compressor and for parallelism: one table of random bytes as base64 (about
  1.37 KB a row, 1.03 KB once pg_dump's zlib is done: DUMP_BYTES_PER_ROW, measured) holding almost every byte,
  and one small ordinary table.
- `app`: an application-like schema of 25 tables with skewed sizes, keys, foreign keys and indexes, and text that
  compresses like real data (bench/app_dataset.py, which also describes how it is sized).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench import app_dataset

# One row of random text: 1024 random bytes as base64 (about 1.37 KB), about 1.03 KB once pg_dump's zlib is done.
DUMP_BYTES_PER_ROW = 1_040
NAMES = ("random", "app")


def fill_random(url: str, size_mb: int) -> dict:
    """Create the tables: random text sized for a ~size_mb dump, plus an ordinary table."""
    started = time.monotonic()
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
    return {"rows": rows, "fillSeconds": round(time.monotonic() - started, 1)}


def fill(dataset: str, url: str, size_mb: int, pg_dump: Path, env: dict[str, str], log: Callable[[str], None]) -> dict:
    """Fill the (empty) database `url` with `dataset` for a ~size_mb `pg_dump -Fc`; return how it was sized.
    `env` lets pg_dump reach that database (the app dataset measures its dump to size itself)."""
    if dataset == "random":
        return fill_random(url, size_mb)
    return app_dataset.fill(url, size_mb, pg_dump, env, log)

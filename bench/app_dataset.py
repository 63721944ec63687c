"""The `app` dataset: an application-like schema filled server-side, sized so that its `pg_dump -Fc` is about a
requested size.

25 tables: a few big ones (events and an audit log with JSON payloads, orders, order items) and many small ones
(plans, countries, currencies, tags...), with primary keys, foreign keys, unique and secondary indexes, and
text, jsonb, numeric, timestamptz, bool, integer and date columns. Every row is made by SQL (INSERT ... SELECT
FROM generate_series), never row by row from Python.

Text compresses like an application's, not like random bytes: every text value is a slice of one corpus of
pseudo-words (two or three syllables) drawn with Zipf-like frequencies (the word of rank r with weight 1/r),
made once per run from a fixed seed and passed to each INSERT as one parameter. The corpus (CORPUS_WORDS words,
about 33 MB) is larger than zstd's window at any level a backup may use (1 MB at level 2, at most 8 MB up to level
19: https://github.com/facebook/zstd/blob/dev/lib/compress/clevels.h), so a compressor with a longer window than
zlib's 32 KB finds few repeated slices (about its window's share of the corpus: 3 % at level 2), not the
whole-row repeats a small corpus would hand it. With JSON keys,
enumerations and numbers on top, pg_dump -Fc (zlib level 6) stores about a third of the uncompressed (-Z0)
archive; the benchmark measures the ratio in every run (`pgDumpFcOverZ0Bytes`).

Sizing (the calibration): the dump grows linearly in units (one unit = 100 orders with their items, payments,
shipments, events, audit entries, comments, sessions, reviews, users, accounts and products) above a fixed part
(the small tables). `fill` loads the small tables, then a sample of k units and measures `pg_dump -Fc`, then k
more and measures again: the difference is the dump bytes per unit, the rest the fixed part. It then loads the
units the requested size needs and builds the keys, foreign keys and indexes last (faster than maintaining them
row by row), then VACUUM ANALYZE.
"""

from __future__ import annotations

import itertools
import random
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from bench.app_schema import CONSTRAINTS, FIXED, FIXED_ROWS, PER_UNIT, SCALED, SCHEMA

CORPUS_WORDS = 6_000_000
CORPUS_SEED = 25
SYLLABLES = "ka lo mi re to na se vi du po an el or in es ta ri mo ne ul".split()
ESTIMATED_DUMP_BYTES_PER_UNIT = 65_000  # only to size the calibration sample; the fill uses the measured figure
SAMPLE_SHARE = 0.1  # the calibration sample is twice this share of the requested size (at most SAMPLE_MAX_BYTES)
SAMPLE_MAX_BYTES = 20_000_000
CHUNK_UNITS = 4_000  # units per INSERT statement: a few hundred MB, so the corpus parameter is sent seldom
FILL_CONNECTIONS = 2

def corpus() -> bytes:
    """The run's text: CORPUS_WORDS pseudo-words with Zipf-like frequencies, from a fixed seed."""
    rng = random.Random(CORPUS_SEED)
    short = [a + b for a in SYLLABLES for b in SYLLABLES]
    long = [a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES[:10]]
    rng.shuffle(short)
    rng.shuffle(long)
    vocabulary = short + long  # the frequent words are the short ones, as in a language
    weights = itertools.accumulate(1 / rank for rank in range(1, len(vocabulary) + 1))
    return " ".join(rng.choices(vocabulary, cum_weights=list(weights), k=CORPUS_WORDS)).encode()


def dump_bytes(pg_dump: Path, env: dict[str, str]) -> int:
    """Bytes of `pg_dump -Fc` (default level) of the database `env` names, counted from a pipe."""
    process = subprocess.Popen([str(pg_dump), "--format=custom", "--no-password"], stdout=subprocess.PIPE, env=env)
    assert process.stdout is not None
    total = 0
    while block := process.stdout.read(1 << 20):
        total += len(block)
    if process.wait() != 0:
        raise RuntimeError(f"pg_dump exited with {process.returncode} while calibrating the app dataset")
    return total


class Filler:
    """Loads units of the app dataset into one database through FILL_CONNECTIONS connections."""

    def __init__(self, url: str) -> None:
        self.url = url
        text = corpus()
        self.parameters = {"corpus": text, "span": len(text) - 2_000}

    def statements(self, lo: int, hi: int) -> list[str]:
        """The INSERTs that load units [lo, hi), big tables first, in chunks of CHUNK_UNITS."""
        ordered = sorted(SCALED, key=lambda table: -PER_UNIT[table])
        found = []
        for start in range(lo, hi, CHUNK_UNITS):
            end = min(hi, start + CHUNK_UNITS)
            for table in ordered:
                per = PER_UNIT[table]
                select = SCALED[table].replace("{hi}", str(hi))
                found.append(f"INSERT INTO {table} {select} FROM generate_series({start * per + 1}::bigint, "
                             f"{end * per}::bigint) AS i")
        return found

    def run(self, connection: psycopg.Connection, statement: str) -> None:
        """One statement, given the corpus if it uses it."""
        connection.execute(statement, self.parameters if "%(" in statement else None)

    def execute(self, statements: list[str]) -> None:
        """Run the statements spread over the connections (each statement on one)."""
        def worker(share: list[str]) -> None:
            with psycopg.connect(self.url, autocommit=True) as connection:
                for statement in share:
                    self.run(connection, statement)

        shares = [statements[i::FILL_CONNECTIONS] for i in range(FILL_CONNECTIONS)]
        with ThreadPoolExecutor(FILL_CONNECTIONS) as pool:
            for done in [pool.submit(worker, share) for share in shares if share]:
                done.result()


def fill(url: str, size_mb: int, pg_dump: Path, env: dict[str, str], log: Callable[[str], None]) -> dict:
    """Create and fill the app dataset for a ~size_mb `pg_dump -Fc`; return how it was sized."""
    started = time.monotonic()
    target = size_mb * 1_000_000
    filler = Filler(url)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(SCHEMA)
        for table, select in FIXED.items():
            filler.run(connection, f"INSERT INTO {table} {select} FROM generate_series(1, {FIXED_ROWS[table]}) AS i")
    sample = max(1, int(min(target * SAMPLE_SHARE, SAMPLE_MAX_BYTES) / ESTIMATED_DUMP_BYTES_PER_UNIT))
    filler.execute(filler.statements(0, sample))
    first = dump_bytes(pg_dump, env)
    filler.execute(filler.statements(sample, 2 * sample))
    second = dump_bytes(pg_dump, env)
    per_unit = max(1, (second - first) / sample)
    fixed = max(0.0, first - per_unit * sample)
    units = max(2 * sample, round((target - fixed) / per_unit))
    log(f"  app dataset: {per_unit / 1000:.1f} KB of dump per unit, {fixed / 1000:.0f} KB fixed: {units} units")
    filler.execute(filler.statements(2 * sample, units))
    loaded = time.monotonic()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(CONSTRAINTS)
        connection.execute("VACUUM ANALYZE")
        connection.execute("CHECKPOINT")
    return {"units": units, "dumpBytesPerUnit": round(per_unit), "fixedDumpBytes": round(fixed),
            "fillSeconds": round(time.monotonic() - started, 1), "indexSeconds": round(time.monotonic() - loaded, 1)}

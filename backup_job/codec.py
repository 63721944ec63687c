"""How a dump object's bytes relate to the pg_dump archive in them: the manifest's `compression`.

Two kinds of backup exist, and every restore reads both:

- `zstd` (manifest format 2, the default): pg_dump writes its custom-format
  archive uncompressed (`--compress=0`) and the job compresses the stream into
  one zstd frame (RFC 8878) with the zstandard library, on its own worker
  threads, with the frame's content checksum. pg_dump's zlib runs on pg_dump's
  one thread at 10-20 MB/s, the slowest stage of the whole backup; zstd at
  level 3 compresses the same stream several times faster, beside pg_dump. The
  level is a trade measured on the benchmark's application data (200 MB of
  `pg_dump -Fc`, one run): level 3 backs up in 0.23x pg_dump -Fc's time and
  stores 1.05x its bytes; level 6 stores 0.98x in 0.44x the time; level 2 is
  no faster and stores 1.07x. On random data every level stores about 0.99x
  (docs/benchmarks.md). `zstd -d` of the object gives the archive pg_restore reads.
  A table object of the parallel mode holds one table's rows, so its first
  PROBE_BYTES say how the rest compresses: where zstd level 1 makes them at most
  COMPRESSIBLE_RATIO of their size, the stream takes COMPRESSIBLE_LEVEL
  (`level_for`). Measured on the application data (300 MB of `pg_dump -Fc`, the
  parallel mode, every stream at one level): level 3 stored 1.029x pg_dump
  -Fc's bytes in 11.7 s, level 4 1.021x in 11.6 s, level 5 0.994x in 14.6 s,
  level 6 0.965x in 17.5 s (pg_dump -Fc: 47.0 s), and with the choice (its big
  tables at 5, the archive at 3) 0.997x in 13.6 s; on random base64 (600 MB)
  level 5 took 1.24x level 3's time for 0.2 % fewer bytes, so a stream that
  does not compress keeps level 3. The archive mixes tables and keeps the
  level it is given.
- `pg_dump` (format 1, every backup written before, and `--compression pg_dump`):
  the archive compressed each table's data itself (zlib inside the custom
  format); the object is the archive.

A manifest's `sha256` and `sizeBytes` are always those of the stored bytes, so a
restore checks what it downloaded before it decompresses anything; the frame's
own checksum then covers what comes out. The zstandard library checks that
checksum only when it reaches it, and takes a second frame after the first as
more data: so the frame's structure (RFC 8878, section 3.1.1) is followed as
the bytes pass, and a stream that ends before its frame's checksum, goes on
after it, or decompresses to another size than the manifest records is damage.
Decompression is streamed in pieces of at most PIECE_BYTES, so memory stays
bounded whatever the data's ratio.

https://www.rfc-editor.org/rfc/rfc8878#section-3.1.1 ;
https://python-zstandard.readthedocs.io/en/latest/decompressor.html
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import zstandard

from backup_job.errors import ExitCode, JobError

ZSTD = "zstd"
PG_DUMP = "pg_dump"
COMPRESSIONS = (ZSTD, PG_DUMP)
FORMAT_OF = {PG_DUMP: 1, ZSTD: 2}  # the manifest format each writes; format 1 is the one before zstd
DEFAULT_ZSTD_LEVEL = 3  # measured against 2, 4 and 6: the module docstring
DEFAULT_ZLIB_LEVEL = 1  # `--compression pg_dump`: pg_dump's zlib level
LEVELS = {ZSTD: range(1, 20), PG_DUMP: range(0, 10)}
PIECE_BYTES = 1 << 20  # what one write hands on, compressed or decompressed
# The input each zstd worker thread takes at a time. zstd's default at level 2 (4x its 2 MiB window) held about
# 47 MB with two threads; 2 MiB holds about 14 MB and compresses as small and as fast (measured on application
# text: 0.3714 of the input against 0.371).
JOB_BYTES = 2 << 20
PROBE_BYTES = 2 << 20  # a table stream's first bytes, from which its level is chosen (level_for)
COMPRESSIBLE_RATIO = 0.5  # zstd level 1's output over its input at most this: the rows compress (text, JSON)
COMPRESSIBLE_LEVEL = 5  # measured against 3, 4 and 6: the module docstring
MEDIA_TYPES = {ZSTD: "application/zstd", PG_DUMP: "application/vnd.postgresql.custom-dump"}


class Writer(Protocol):
    def write(self, data: bytes, /) -> Any: ...


def of(manifest: dict[str, Any]) -> str:
    """The compression of the backup `manifest` describes (a format-1 manifest has none recorded: pg_dump's)."""
    return str(manifest.get("compression", PG_DUMP))


def problem(manifest: dict[str, Any]) -> str | None:
    """Why the manifest's format and compression do not go together, or None."""
    compression = manifest.get("compression", PG_DUMP)
    if compression not in COMPRESSIONS:
        return f"has compression {str(compression)[:40]!r}, not one of {', '.join(COMPRESSIONS)}"
    if manifest["format"] != FORMAT_OF[compression]:
        return f"has format {manifest['format']} with compression {compression}"
    archive = manifest.get("archiveSizeBytes")
    if compression == ZSTD and (not isinstance(archive, int) or isinstance(archive, bool) or archive < 0):
        return "lacks a valid `archiveSizeBytes`"
    return None


def checked_level(compression: str, level: int | None, threads: int) -> int:
    """`level`, or the compression's default when None; JobError(USAGE) when the compression cannot take it."""
    level = (DEFAULT_ZSTD_LEVEL if compression == ZSTD else DEFAULT_ZLIB_LEVEL) if level is None else level
    allowed = LEVELS[compression]
    if level not in allowed or not 1 <= threads <= 64:
        raise JobError(ExitCode.USAGE, f"--compress-level must be {allowed.start}-{allowed.stop - 1} with "
                                       f"--compression {compression}, and --compress-threads 1-64")
    return level


def default_threads() -> int:
    """zstd's worker threads: the cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def level_for(sample: bytes) -> int:
    """A table stream's level from its first bytes: COMPRESSIBLE_LEVEL when zstd level 1 makes `sample` at most
    COMPRESSIBLE_RATIO of its size, else DEFAULT_ZSTD_LEVEL (the module docstring)."""
    if not sample:
        return DEFAULT_ZSTD_LEVEL
    ratio = len(zstandard.ZstdCompressor(level=1).compress(sample)) / len(sample)
    return COMPRESSIBLE_LEVEL if ratio <= COMPRESSIBLE_RATIO else DEFAULT_ZSTD_LEVEL


class Compressor:
    """One zstd frame, fed block by block; yields the compressed bytes in pieces of PIECE_BYTES (the last
    shorter). With `threads` >= 1 the compression runs on zstd's own threads, beside the caller's."""

    def __init__(self, level: int, threads: int):
        extra = {"job_size": JOB_BYTES} if threads else {}
        params = zstandard.ZstdCompressionParameters.from_level(level, threads=threads, write_checksum=True, **extra)
        self._stream = zstandard.ZstdCompressor(compression_params=params).compressobj()
        self._pending = bytearray()

    def _pieces(self, final: bool) -> list[bytes]:
        cut = len(self._pending) if final else len(self._pending) - len(self._pending) % PIECE_BYTES
        pieces = [bytes(self._pending[i:i + PIECE_BYTES]) for i in range(0, cut, PIECE_BYTES)]
        del self._pending[:cut]
        return pieces

    def compress(self, block: bytes) -> list[bytes]:
        """Whole pieces of compressed output ready after `block` (often none: zstd works ahead in its threads)."""
        self._pending += self._stream.compress(block)
        return self._pieces(final=False)

    def finish(self) -> list[bytes]:
        """The rest of the frame, its end and checksum included."""
        self._pending += self._stream.flush()
        return self._pieces(final=True)


class _Frame:
    """Where a stream of bytes stands in one zstd frame (RFC 8878, 3.1.1), without decompressing: how many of
    the bytes handed to `take` belong to the frame, and whether the frame, its content checksum included, ended."""

    MAGIC = b"\x28\xb5\x2f\xfd"

    def __init__(self) -> None:
        self.ended = False
        self.problem: str | None = None
        self._head = bytearray()  # the bytes of the header now being read
        self._need = 5  # magic number and frame header descriptor
        self._skip = 0  # bytes of a block's content (or the checksum) still to pass
        self._state = "start"

    def take(self, data: bytes) -> int:
        """How many leading bytes of `data` belong to the frame; `problem` says why the rest cannot."""
        at = 0
        while at < len(data) and self.problem is None:
            if self.ended:
                self.problem = "not one zstd frame: bytes follow its end"
                break
            if self._skip:
                step = min(self._skip, len(data) - at)
                self._skip -= step
                at += step
                if not self._skip and self._state == "checksum":
                    self.ended = True
                continue
            step = min(self._need - len(self._head), len(data) - at)
            self._head += data[at:at + step]
            at += step
            if len(self._head) == self._need:
                self._header()
        return at

    def _header(self) -> None:
        head, self._head = bytes(self._head), bytearray()
        if self._state == "start":  # magic number and frame header descriptor
            descriptor = head[4]
            if head[:4] != self.MAGIC or not descriptor & 0x04 or descriptor & 0x08:
                self.problem = "not a zstd frame with a content checksum"
                return
            single = bool(descriptor & 0x20)
            size_field = {0: 1 if single else 0, 1: 2, 2: 4, 3: 8}[descriptor >> 6]
            rest = (0 if single else 1) + (0, 1, 2, 4)[descriptor & 0x03] + size_field
            self._state, self._need = ("header", rest) if rest else ("block", 3)
            return
        if self._state == "header":  # window descriptor, dictionary ID, content size
            self._state, self._need = "block", 3
            return
        value = int.from_bytes(head, "little")  # a block header: last-block bit, type, size
        kind, size = (value >> 1) & 0x03, value >> 3
        if kind == 3:
            self.problem = "not a good zstd frame: a block of the reserved type"
            return
        self._skip = 1 if kind == 1 else size  # an RLE block's content is one byte
        if value & 1:
            self._state = "checksum"
            self._skip += 4  # the content checksum follows the last block


class Decompressing:
    """A write-only file that decompresses one zstd frame into `forward` in pieces of PIECE_BYTES at most.

    Bytes that are not a good frame (a damaged object) stop the forwarding: `broken` then says why, and
    later writes are only counted, so the caller's download still reaches its checksum verdict. Bytes after
    the frame's end are never forwarded. `unfinished()` at the end says whether the stream was exactly one
    whole frame, of `expected` bytes once decompressed when given.
    """

    def __init__(self, forward: Writer, expected: int | None = None):
        self.forward = forward
        self.broken: str | None = None
        self.expected = expected
        self.size = 0
        self._frame = _Frame()
        self._stream = zstandard.ZstdDecompressor().stream_writer(
            _Counting(self), write_size=PIECE_BYTES, write_return_read=True, closefd=False)  # type: ignore[arg-type]

    def write(self, data: bytes) -> int:
        if self.broken is None:
            belongs = self._frame.take(data)
            try:
                self._stream.write(data[:belongs] if belongs < len(data) else data)
            except zstandard.ZstdError as exc:
                self.broken = f"not a good zstd frame: {exc}"
            if self.broken is None and self._frame.problem is not None:
                self.broken = self._frame.problem
        return len(data)

    def flush(self) -> None:
        """Nothing is held back here that a later write would not push on."""

    def unfinished(self) -> str | None:
        """Why what was written, now that it all was, is not one whole frame of the expected size, or None."""
        if self.broken is not None:
            return self.broken
        if not self._frame.ended:
            return "not a whole zstd frame: it ends before its content checksum"
        if self.expected is not None and self.size != self.expected:
            return f"a zstd frame of {self.size:,} bytes, not the {self.expected:,} its manifest records"
        return None


class _Counting:
    """What the decompressor writes into: `forward`, counting the bytes."""

    def __init__(self, owner: Decompressing):
        self._owner = owner

    def write(self, data: bytes) -> int:
        self._owner.size += len(data)
        self._owner.forward.write(data)
        return len(data)


def decoding(compression: str, forward: Writer, expected: int | None = None) -> Writer:
    """What stored bytes of this compression are written into so that `forward` receives the archive (of
    `expected` bytes, when known)."""
    return Decompressing(forward, expected) if compression == ZSTD else forward


def broken(decoder: Writer) -> str | None:
    """Why the bytes written into `decoder` so far did not decompress, or None."""
    return decoder.broken if isinstance(decoder, Decompressing) else None


def unfinished(decoder: Writer) -> str | None:
    """Why all the bytes written into `decoder` are not one whole frame of the expected size, or None."""
    return decoder.unfinished() if isinstance(decoder, Decompressing) else None


def archive_bytes(manifest: dict[str, Any]) -> int:
    """The archive's size once decompressed (what a spool file needs), as the manifest records it."""
    return int(manifest["archiveSizeBytes"] if of(manifest) == ZSTD else manifest["sizeBytes"])

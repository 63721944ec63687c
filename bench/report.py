"""The benchmark's figures: one JSON row per dataset, size and tool, the ratios to the floors of the same run, the
printed table, seconds per GB by size, and each target of issue 25, met or not, with its numbers.

A "GB" here is 10^9 bytes of the dataset's `pg_dump -Fc` at its default level (the size the dataset was made for),
so seconds per GB compare across tools and sizes.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator

from bench.harness import PARALLEL, SINGLE, Outcome
from bench.measure import Run
from core.contracts import Command

JOB, JOB_SINGLE, JOB_PARALLEL = "backup_job", "backup_job --mode single", "backup_job --mode parallel"
JOBS = (JOB, JOB_SINGLE, JOB_PARALLEL)  # the job's default, and the other mode beside it
PG_DUMP_FC, PG_DUMP_Z1, UPLOAD = "floor: pg_dump -Fc", "floor: pg_dump -Fc -Z1", "floor: upload alone"
READ_FC = "floor: read pg_dump -Fc -Z0"
READ_FLOOR, RESTORE_FLOOR = "floor: read", "floor: pg_restore"  # every read floor's and restore floor's name starts so
PEERS = ("naive loop", "pg_dump | smart_open", "barman-cloud")
PHYSICAL = "barman-cloud"
PHYSICAL_NOTE = "physical restore (data files and WAL): a reference only, Supabase allows no file-level access"
# Issue 25's targets (ratios within one run).
BACKUP_TO_PG_DUMP_FC, BACKUP_TO_READ_FLOOR, PEER_MARGIN = 0.6, 1.25, 1.5
RESTORE_TO_FLOOR, PARALLEL_RESTORE_GAIN = 1.1, 1.3
PEAK_RSS_MB, FLAT_RSS_GROWTH = 200, 1.1  # "flat": the largest size's peak at most 10 % above the smallest size's


def read_floor_name(jobs: int) -> str:
    return f"{READ_FLOOR} pg_dump -Fd -j{jobs} -Z0"


def restore_floor_name(jobs: int) -> str:
    return f"{RESTORE_FLOOR} -j{jobs}"


def _median(runs: list[Run], attribute: str) -> float:
    return statistics.median(getattr(r, attribute) for r in runs)


def _stages(runs: list[Run], prefix: str) -> dict:
    """CPU seconds, cores (CPU-s over wall-s) and peak memory of one phase's stages: tool tree, PostgreSQL,
    emulator."""
    wall = _median(runs, "seconds")
    cpu = {"tool": _median(runs, "cpu_seconds"), "postgres": _median(runs, "server_cpu_seconds"),
           "storage": _median(runs, "storage_cpu_seconds")}
    programs = sorted({p for r in runs for p in r.cpu_by_program})
    return {
        f"{prefix}CpuSeconds": {stage: round(seconds, 2) for stage, seconds in cpu.items()},
        f"{prefix}Cores": {**{stage: round(seconds / wall, 2) for stage, seconds in cpu.items()},
                           "total": round(sum(cpu.values()) / wall, 2)} if wall else None,
        f"{prefix}CpuSecondsByProgram": {p: round(statistics.median(r.cpu_by_program.get(p, 0.0) for r in runs), 2)
                                         for p in programs},
        f"{prefix}PeakRssMbByStage": {"tool": round(max(r.peak_rss_bytes for r in runs) / 2**20, 1),
                                      "postgres": round(max(r.server_peak_rss_bytes for r in runs) / 2**20, 1),
                                      "storage": round(max(r.storage_peak_rss_bytes for r in runs) / 2**20, 1)},
    }


def summarise(tool: str, dataset: str, size_mb: int, outcomes: list[Outcome]) -> dict:
    """One JSON row from a tool's repeats (the ratios are filled in by add_ratios)."""
    backups = [o.backup for o in outcomes if o.backup]
    restores = [o.restore for o in outcomes if o.restore]
    modes = [o.mode for o in outcomes if not o.error]
    row: dict = {"tool": tool, "dataset": dataset, "sizeMb": size_mb,
                 "mode": max(set(modes), key=modes.count) if modes else SINGLE,
                 "backupSeconds": round(_median(backups, "seconds"), 2) if backups else None,
                 "restoreSeconds": round(_median(restores, "seconds"), 2) if restores else None,
                 "storedBytes": max((o.stored_bytes for o in outcomes), default=0) or None,
                 "peakRssMb": None, "ratioToFloor": None, "restoreRatioToFloor": None, "ratioToPgDumpFc": None,
                 "ratioToReadFloor": None, "storedBytesRatioToPgDumpFc": None, "runs": len(outcomes)}
    if tool == PHYSICAL:
        row["note"] = PHYSICAL_NOTE
    peaks = [r.peak_rss_bytes for r in backups + restores if r.peak_rss_bytes]
    if peaks:
        row["peakRssMb"] = round(max(peaks) / 2**20, 1)
        row["backupPeakRssMb"] = round(max(r.peak_rss_bytes for r in backups) / 2**20, 1) if backups else None
        row["restorePeakRssMb"] = round(max(r.peak_rss_bytes for r in restores) / 2**20, 1) if restores else None
    if backups:
        row.update(_stages(backups, Command.BACKUP))
    if restores:
        row.update(_stages(restores, Command.RESTORE))
    for name in sorted({k for o in outcomes for k in o.extra}):
        extra = [o.extra[name] for o in outcomes if name in o.extra]
        key = "restoreCheckSeconds" if name == Command.RESTORE_CHECK else f"restoreJobs{name.split()[-1]}Seconds"
        row[key] = round(_median(extra, "seconds"), 2)
    errors = [o.error for o in outcomes if o.error]
    if errors:
        row["error"] = errors[0]
    return row


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 2) if numerator and denominator else None


def add_ratios(rows: list[dict]) -> None:
    """The ratios of one dataset and size's rows to the floors measured among them.

    ratioToFloor (as before): backup seconds over the larger of the faster of pg_dump -Fc and -Z1, and the upload
    alone; ratioToPgDumpFc: over pg_dump -Fc at its default level; ratioToReadFloor: over the faster read floor;
    restoreRatioToFloor: restore seconds over the faster local pg_restore; storedBytesRatioToPgDumpFc: stored
    bytes over pg_dump -Fc's; pgDumpFcOverZ0Bytes: the dataset's compressibility, pg_dump -Fc's bytes over -Z0's."""
    by_tool = {row["tool"]: row for row in rows}

    def seconds(tool: str, key: str = "backupSeconds") -> float | None:
        return by_tool.get(tool, {}).get(key)

    dumps = [s for s in (seconds(PG_DUMP_FC), seconds(PG_DUMP_Z1)) if s]
    backup_floor = max(min(dumps), seconds(UPLOAD) or 0) if dumps else None
    reads = [r["backupSeconds"] for r in rows if r["tool"].startswith(READ_FLOOR) and r["backupSeconds"]]
    restores = [r["restoreSeconds"] for r in rows if r["tool"].startswith(RESTORE_FLOOR) and r["restoreSeconds"]]
    read_floor, restore_floor = min(reads, default=None), min(restores, default=None)
    fc_seconds, fc_bytes = seconds(PG_DUMP_FC), seconds(PG_DUMP_FC, "storedBytes")
    gigabytes = fc_bytes / 1e9 if fc_bytes else None
    for row in rows:
        row.update(backupFloorSeconds=backup_floor, restoreFloorSeconds=restore_floor, readFloorSeconds=read_floor,
                   pgDumpFcSeconds=fc_seconds, pgDumpFcBytes=fc_bytes,
                   pgDumpFcOverZ0Bytes=_ratio(fc_bytes, seconds(READ_FC, "storedBytes")))
        if not row["tool"].startswith(RESTORE_FLOOR):
            row["ratioToFloor"] = _ratio(row["backupSeconds"], backup_floor)
            row["ratioToPgDumpFc"] = _ratio(row["backupSeconds"], fc_seconds)
            row["ratioToReadFloor"] = _ratio(row["backupSeconds"], read_floor)
            row["storedBytesRatioToPgDumpFc"] = _ratio(row["storedBytes"], fc_bytes)
        row["restoreRatioToFloor"] = _ratio(row["restoreSeconds"], restore_floor)
        row["backupSecondsPerGb"] = _ratio(row["backupSeconds"], gigabytes)
        row["restoreSecondsPerGb"] = _ratio(row["restoreSeconds"], gigabytes)


def _cell(value, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict]) -> None:
    """The table, the job's CPU by stage, seconds per GB by size, and the targets."""
    print(f"{'dataset':<7} {'size':>5} {'tool':<32} {'mode':<8} {'backup s':>9} {'restore s':>10} {'stored MB':>10} "
          f"{'RSS MB':>7} {'/Fc':>5} {'/read':>6} {'bytes/Fc':>8} {'restore/floor':>13}")
    for row in rows:
        stored = row["storedBytes"] / 1e6 if row["storedBytes"] else None
        tool = row["tool"] + (" *" if row["tool"] == PHYSICAL else "")
        print(f"{row['dataset']:<7} {row['sizeMb']:>5} {tool:<32} {row['mode']:<8} "
              f"{_cell(row['backupSeconds'], '.2f'):>9} {_cell(row['restoreSeconds'], '.2f'):>10} "
              f"{_cell(stored, '.1f'):>10} {_cell(row['peakRssMb'], '.1f'):>7} {_cell(row['ratioToPgDumpFc'], '.2f'):>5} "
              f"{_cell(row['ratioToReadFloor'], '.2f'):>6} {_cell(row['storedBytesRatioToPgDumpFc'], '.2f'):>8} "
              f"{_cell(row['restoreRatioToFloor'], '.2f'):>13}")
        if row.get("error"):
            print(f"{'':>14}error: {row['error']}")
    if any(row["tool"] == PHYSICAL for row in rows):
        print(f"* {PHYSICAL}: {PHYSICAL_NOTE}")
    print()
    for row in rows:
        if row["tool"] in JOBS and row["backupSeconds"]:
            print(f"{row['dataset']} {row['sizeMb']} MB {row['tool']} ({row['mode']}): pg_dump -Fc / -Z0 bytes "
                  f"{row['pgDumpFcOverZ0Bytes']}; backup CPU s {row.get('backupCpuSeconds')} by program "
                  f"{row.get('backupCpuSecondsByProgram')}, cores {row.get('backupCores')}; restore cores "
                  f"{row.get('restoreCores')}; restore-check {row.get('restoreCheckSeconds')} s")
    print()
    for line in scaling(rows):
        print(line)
    print()
    for line in targets(rows):
        print(line)


def scaling(rows: list[dict]) -> Iterator[str]:
    """Seconds per GB of the job's backup and restore at each size."""
    for dataset in dict.fromkeys(row["dataset"] for row in rows):
        for tool in JOBS:
            mine = [row for row in rows if row["dataset"] == dataset and row["tool"] == tool]
            if mine:
                figures = ", ".join(f"{r['sizeMb']} MB: backup {_cell(r['backupSecondsPerGb'], '.1f')} s/GB, restore "
                                    f"{_cell(r['restoreSecondsPerGb'], '.1f')} s/GB" for r in mine)
                yield f"scaling {dataset} {tool}: {figures}"


def _verdict(ok: bool | None, text: str) -> str:
    return f"{'not measured' if ok is None else 'met' if ok else 'NOT MET'} ({text})"


def _backup_targets(where: str, job: dict, by_tool: dict[str, dict]) -> Iterator[str]:
    """The backup targets of one row of the job, against the floors and peers of its dataset and size."""
    ratio = job["ratioToPgDumpFc"]
    yield f"{where} backup <= {BACKUP_TO_PG_DUMP_FC}x pg_dump -Fc: " + _verdict(
        None if ratio is None else ratio <= BACKUP_TO_PG_DUMP_FC,
        f"{ratio}x: {job['backupSeconds']} s vs {job['pgDumpFcSeconds']} s")
    ratio = job["ratioToReadFloor"]
    yield f"{where} backup <= {BACKUP_TO_READ_FLOOR}x the read floor: " + _verdict(
        None if ratio is None else ratio <= BACKUP_TO_READ_FLOOR, f"{ratio}x of {job['readFloorSeconds']} s")
    ratio = job["storedBytesRatioToPgDumpFc"]
    yield f"{where} stored bytes <= pg_dump -Fc's: " + _verdict(None if ratio is None else ratio <= 1, f"{ratio}x")
    peers = {tool: by_tool[tool]["backupSeconds"] for tool in PEERS if by_tool.get(tool, {}).get("backupSeconds")}
    # A peer that ran but finished no backup is named: leaving it out would read as beaten.
    failed = [tool for tool in PEERS if tool in by_tool and tool not in peers]
    margin = round(min(peers.values()) / job["backupSeconds"], 2) if peers else None
    detail = f"{margin}x; peers {peers}" if peers else "no peer finished"
    if failed:
        detail += f"; failed in every run, not measured: {', '.join(failed)}"
    yield f"{where} backup >= {PEER_MARGIN}x faster than every peer: " + _verdict(
        None if margin is None else margin >= PEER_MARGIN, detail)


def targets(rows: list[dict]) -> Iterator[str]:
    """Each target of issue 25 at each dataset and size: met, not met or not measured, with the numbers."""
    groups: dict[tuple[str, int], dict[str, dict]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["sizeMb"]), {})[row["tool"]] = row
    for (dataset, size), by_tool in groups.items():
        jobs = [by_tool[tool] for tool in JOBS if by_tool.get(tool, {}).get("backupSeconds")]
        for job in jobs:
            yield from _backup_targets(f"target {dataset} {size} MB {job['tool']} ({job['mode']}):", job, by_tool)
        if not jobs:
            continue
        where = f"target {dataset} {size} MB:"
        single = next((job for job in jobs if job["mode"] == SINGLE), None)
        parallel = next((job for job in jobs if job["mode"] == PARALLEL), None)
        ratio = single["restoreRatioToFloor"] if single else None
        yield f"{where} single-stream restore <= {RESTORE_TO_FLOOR}x local pg_restore: " + _verdict(
            None if ratio is None else ratio <= RESTORE_TO_FLOOR,
            f"{ratio}x of {single['restoreFloorSeconds']} s" if single else "no single-mode row")
        gain, detail = None, "needs a parallel and a single-mode row of the job"
        if single and parallel:
            gain = _ratio(single["restoreSeconds"], parallel["restoreSeconds"])
            detail = f"{gain}x: {single['restoreSeconds']} s single, {parallel['restoreSeconds']} s parallel"
        yield f"{where} parallel restore >= {PARALLEL_RESTORE_GAIN}x faster than single-stream: " + _verdict(
            None if gain is None else gain >= PARALLEL_RESTORE_GAIN, detail)
    jobs = [row for row in rows if row["tool"] in JOBS and row["peakRssMb"]]
    for dataset, mode in dict.fromkeys((row["dataset"], row["mode"]) for row in jobs):
        peaks = sorted((row["sizeMb"], row["peakRssMb"]) for row in jobs if (row["dataset"], row["mode"]) == (dataset, mode))
        flat = peaks[-1][1] <= FLAT_RSS_GROWTH * peaks[0][1]
        yield f"target {dataset} {mode} mode: peak RSS < {PEAK_RSS_MB} MB and flat across sizes: " + _verdict(
            max(p for _, p in peaks) < PEAK_RSS_MB and flat, ", ".join(f"{s} MB: {p} MB" for s, p in peaks))

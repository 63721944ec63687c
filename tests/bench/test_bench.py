"""Smoke test of the benchmark's own arithmetic and measuring (no servers: the benchmark itself is `make bench`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import barman_cloud, harness, report
from bench.backup_throughput import main
from bench.measure import Run, Watched, run
from bench.report import add_ratios, summarise


def test_a_measured_command_reports_time_cpu_and_the_rss_of_its_whole_tree():
    me = Watched(os.getpid(), os.getpid())
    child = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'x = bytearray(80 << 20); import time; time.sleep(0.4)'])"
    measured = run([sys.executable, "-c", child], me)
    assert measured.seconds >= 0.4 and measured.cpu_seconds > 0
    assert measured.peak_rss_bytes > 80 << 20, "the grandchild's 80 MB must count"


def test_a_counted_command_reports_its_output_bytes_and_its_cpu_by_program():
    me = Watched(os.getpid(), os.getpid())
    busy = "import sys, time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n" \
           "sys.stdout.buffer.write(b'x' * 3_000_000)"
    measured = run([sys.executable, "-c", busy], me, count_stdout=True)
    assert measured.output_bytes == 3_000_000
    (program,) = measured.cpu_by_program
    assert program.startswith("python") and measured.cpu_by_program[program] >= 0.2, measured.cpu_by_program


def _outcome(backup=None, restore=None, stored=0, mode=harness.SINGLE, error=None):
    return [harness.Outcome(backup=Run(backup) if backup else None, restore=Run(restore) if restore else None,
                            stored_bytes=stored, mode=mode, error=error)]


def _rows(job_backup: float = 5.0, job_restore: float = 6.0, job_stored: int = 900) -> list[dict]:
    rows = [summarise(report.JOB, "app", 200, _outcome(job_backup, job_restore, job_stored)),
            summarise(report.PG_DUMP_FC, "app", 200, _outcome(12.0, stored=1_000)),
            summarise(report.PG_DUMP_Z1, "app", 200, _outcome(10.0, stored=1_200)),
            summarise(report.READ_FC, "app", 200, _outcome(4.0, stored=4_000)),
            summarise(report.read_floor_name(2), "app", 200, _outcome(4.5, stored=4_100, mode=harness.PARALLEL)),
            summarise(report.UPLOAD, "app", 200, _outcome(2.0, stored=900)),
            summarise(report.restore_floor_name(1), "app", 200, _outcome(restore=5.0)),
            summarise(report.restore_floor_name(2), "app", 200, _outcome(restore=5.5, mode=harness.PARALLEL)),
            summarise("naive loop", "app", 200, _outcome(9.0, 7.0, 1_000))]
    add_ratios(rows)
    return rows


def test_ratios_are_against_pg_dump_the_faster_read_floor_and_the_faster_restore_floor():
    job = _rows()[0]
    assert (job["ratioToPgDumpFc"], job["ratioToReadFloor"], job["restoreRatioToFloor"]) == (0.42, 1.25, 1.2)
    assert job["storedBytesRatioToPgDumpFc"] == 0.9 and job["pgDumpFcOverZ0Bytes"] == 0.25
    assert job["ratioToFloor"] == 0.5, "as before: over the larger of the faster pg_dump (-Z1, 10 s) and the upload"
    assert (job["dataset"], job["mode"]) == ("app", harness.SINGLE)
    assert job["backupSecondsPerGb"] == 5.0 / (1_000 / 1e9)


def test_every_row_carries_the_keys_of_issue_25_and_the_earlier_ones():
    for row in _rows():
        assert set(row) >= {"tool", "sizeMb", "backupSeconds", "restoreSeconds", "storedBytes", "peakRssMb",
                            "ratioToFloor", "dataset", "ratioToPgDumpFc", "ratioToReadFloor", "restoreRatioToFloor",
                            "storedBytesRatioToPgDumpFc", "mode"}, row["tool"]


def test_the_targets_say_met_or_not_met_with_the_numbers():
    met = list(report.targets(_rows(job_backup=5.0)))
    assert any("backup <= 0.6x pg_dump -Fc: met (0.42x: 5.0 s vs 12.0 s)" in line for line in met), met
    assert any("backup >= 1.5x faster than every peer: met (1.8x" in line for line in met), met
    assert any("backup <= 1.25x the read floor: met" in line for line in met), met
    missed = list(report.targets(_rows(job_backup=8.0, job_restore=6.0, job_stored=1_100)))
    assert any("backup <= 0.6x pg_dump -Fc: NOT MET (0.67x" in line for line in missed), missed
    assert any("stored bytes <= pg_dump -Fc's: NOT MET (1.1x)" in line for line in missed), missed
    assert any("single-stream restore <= 1.1x local pg_restore: NOT MET (1.2x of 5.0 s)" in line for line in missed)
    assert any("parallel restore >= 1.3x faster than single-stream: not measured" in line for line in missed)


def test_a_peer_that_failed_in_every_run_is_named_not_left_out():
    failed = _outcome(error="CalledProcessError: barman-cloud-backup returned 1")
    rows = [*_rows(job_backup=5.0), summarise(report.PHYSICAL, "app", 200, failed)]
    add_ratios(rows)
    (line,) = [line for line in report.targets(rows) if "faster than every peer" in line]
    assert line.endswith("met (1.8x; peers {'naive loop': 9.0}; failed in every run, not measured: barman-cloud)")


def test_wal_segments_between_two_names_cross_a_log_id():
    assert barman_cloud.wal_segments("0000000100000000000000FE", "000000010000000100000001") == [
        "0000000100000000000000FE", "0000000100000000000000FF", "000000010000000100000000", "000000010000000100000001"]


@pytest.mark.parametrize(("arguments", "message"), [
    (["--tools", "rsync"], "unknown tools: rsync"),
    (["--datasets", "random,tpcc"], "unknown datasets: tpcc"),
    (["--jobs", "1"], "--jobs must be at least 2"),
    (["--sizes-mb", "200,big"], "--sizes-mb takes positive whole numbers"),
])
def test_a_wrong_argument_is_refused_with_one_line(capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_:
        main(arguments)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


# `python -m bench` with a usage error (so nothing runs), then the storage timeout the job's modules loaded with.
SHOW_STORAGE_TIMEOUT = """
import os, runpy, sys
sys.argv = ["bench", "--jobs", "1"]
try:
    runpy.run_module("bench", run_name="__main__")
except SystemExit:
    pass
from backup_job import storage
print(os.environ["BACKUP_STORAGE_TIMEOUT_SECONDS"], storage.STORAGE_TIMEOUT_SECONDS)
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "300 300.0"), ("90", "90 90.0")])
def test_the_benchmark_waits_out_the_emulators_answer_to_a_2_gb_object_unless_told_otherwise(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "BACKUP_STORAGE_TIMEOUT_SECONDS"}
    if given:
        env["BACKUP_STORAGE_TIMEOUT_SECONDS"] = given
    shown = subprocess.run([sys.executable, "-c", SHOW_STORAGE_TIMEOUT], env=env, capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parents[2], check=True, timeout=60)
    assert shown.stdout.splitlines()[-1] == expected


def test_the_parallel_restore_target_compares_the_jobs_parallel_row_with_its_single_row():
    rows = _rows(job_restore=6.0)
    rows.append(summarise(report.JOB_PARALLEL, "app", 200, _outcome(4.0, 4.0, 950, mode=harness.PARALLEL)))
    add_ratios(rows)
    lines = list(report.targets(rows))
    assert any("parallel restore >= 1.3x faster than single-stream: met (1.5x: 6.0 s single, 4.0 s parallel)" in line
               for line in lines), lines
    assert any(line.startswith("target app 200 MB backup_job --mode parallel (parallel): backup <= 0.6x") for line in lines)


def test_an_interrupted_measurement_kills_the_commands_whole_tree(tmp_path):
    me = Watched(os.getpid(), os.getpid())
    pid_file = tmp_path / "grandchild.pid"
    tree = ("import subprocess, sys, time; child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)")

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 2.0)  # the grandchild has started by then
    try:
        with pytest.raises(KeyboardInterrupt):
            run([sys.executable, "-c", tree], me)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{grandchild}").exists() and "Z" not in Path(f"/proc/{grandchild}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "the grandchild outlived the interrupted measurement"
        time.sleep(0.05)


def test_the_memory_target_is_per_mode_and_needs_the_peak_flat_across_sizes():
    def job(size: int, peak: float, mode: str) -> dict:
        return {"tool": report.JOB, "dataset": "app", "sizeMb": size, "peakRssMb": peak, "mode": mode,
                "backupSeconds": None}

    lines = list(report.targets([job(200, 150.0, harness.SINGLE), job(2000, 190.0, harness.SINGLE),
                                 job(200, 120.0, harness.PARALLEL), job(2000, 125.0, harness.PARALLEL)]))
    assert lines == [
        "target app single mode: peak RSS < 200 MB and flat across sizes: NOT MET (200 MB: 150.0 MB, 2000 MB: 190.0 MB)",
        "target app parallel mode: peak RSS < 200 MB and flat across sizes: met (200 MB: 120.0 MB, 2000 MB: 125.0 MB)"]

"""Smoke test of the benchmark's own arithmetic and measuring (no servers: the benchmark itself is `make bench`)."""

from __future__ import annotations

import os
import sys

import pytest

from bench import barman_cloud, harness
from bench.backup_throughput import add_ratios, main, summarise
from bench.measure import Run, Watched, run


def test_a_measured_command_reports_time_cpu_and_the_rss_of_its_whole_tree():
    me = Watched(os.getpid(), os.getpid())
    child = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'x = bytearray(80 << 20); import time; time.sleep(0.4)'])"
    measured = run([sys.executable, "-c", child], me)
    assert measured.seconds >= 0.4 and measured.cpu_seconds > 0
    assert measured.peak_rss_bytes > 80 << 20, "the grandchild's 80 MB must count"


def test_ratios_are_against_the_larger_backup_floor_and_the_faster_restore_floor():
    def outcome(backup=None, restore=None):
        return [harness.Outcome(backup=Run(backup) if backup else None, restore=Run(restore) if restore else None)]

    rows = [summarise("backup_job", 200, outcome(11.0, 6.0)),
            summarise("floor: pg_dump -Fc", 200, outcome(12.0)),
            summarise("floor: pg_dump -Fc -Z1", 200, outcome(10.0)),
            summarise("floor: upload alone", 200, outcome(4.0)),
            summarise("floor: pg_restore -j1", 200, outcome(restore=5.0)),
            summarise("floor: pg_restore -j2", 200, outcome(restore=5.5))]
    add_ratios(rows)
    job = rows[0]
    assert (job["ratioToFloor"], job["restoreRatioToFloor"]) == (1.1, 1.2)
    assert set(job) >= {"tool", "sizeMb", "backupSeconds", "restoreSeconds", "storedBytes", "peakRssMb", "ratioToFloor"}


def test_wal_segments_between_two_names_cross_a_log_id():
    assert barman_cloud.wal_segments("0000000100000000000000FE", "000000010000000100000001") == [
        "0000000100000000000000FE", "0000000100000000000000FF", "000000010000000100000000", "000000010000000100000001"]


def test_an_unknown_tool_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--tools", "rsync"])
    assert "unknown tools: rsync" in capsys.readouterr().err

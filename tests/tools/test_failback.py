"""python -m tools.failback against real PostgreSQL clusters on 127.0.0.1: a US primary with its EU streaming
replica, a failover (the EU promoted, the US crashed after writing past the promotion), writes on the EU, then
the failback - rewound when the clusters have data checksums, rebuilt when pg_rewind cannot run, resumed after
a kill in the switchover, a no-op when run again. The flip (tools.failover demote) is the drill's to test."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time

import psycopg
import pytest

from tests.tools.failback_pair import (
    WAIT_SECONDS,
    Pair,
    as_postgres,
    assert_failed_back,
    pair,
    pg_ctl,
    phases,
    templates,
)
from tools.offline import ROOT

__all__ = ["pair", "templates"]  # the fixtures (tests/tools/failback_pair.py)


def test_failback_rewinds_the_diverged_us_and_switches_over(pair: Pair) -> None:
    result = pair.failback()
    assert result.returncode == 0, result.stderr
    assert phases(result.stdout) == ["rewind", "stream", "catch-up", "switchover", "follow", "failback"], result.stdout
    assert "rewound to the EU's timeline" in result.stdout, "the diverged US must be rewound, not followed"
    assert "no rewind required" in result.stdout.splitlines()[4], f"the cleanly stopped EU needs no rewind: {result.stdout}"
    assert_failed_back(pair)
    assert not set(range(101, 121)) & pair.us.seqs(), "the US's writes after the promotion survived the rewind"
    assert pair.us.sql("SHOW default_transaction_read_only") == [("off",)], "the US came up read-only"
    assert pair.us.sql("SELECT current_setting('default_transaction_read_only')") == [("off",)]


def test_failback_run_twice_changes_nothing(pair: Pair) -> None:
    assert pair.failback().returncode == 0
    timeline = pair.us.sql("SELECT timeline_id FROM pg_control_checkpoint()")
    again = pair.failback()
    assert again.returncode == 0, again.stderr
    assert phases(again.stdout) == [], again.stdout
    assert "nothing to do" in again.stdout
    assert pair.us.sql("SELECT timeline_id FROM pg_control_checkpoint()") == timeline, "a second switchover ran"
    assert_failed_back(pair)


@pytest.mark.parametrize("pair", [False], indirect=True)
def test_failback_rebuilds_when_pg_rewind_cannot_run(pair: Pair) -> None:
    result = pair.failback()
    assert result.returncode == 0, result.stderr
    assert phases(result.stdout)[0] == "rebuild", result.stdout
    assert "data checksums or \"wal_log_hints = on\"" in result.stdout, "the rebuild must say why pg_rewind could not"
    assert "rebuilt" in result.stdout.splitlines()[4], "the EU without checksums is rebuilt too"
    assert_failed_back(pair)
    assert not set(range(101, 121)) & pair.us.seqs(), "the US's diverged writes survived the rebuild"
    leftovers = sorted(p.name for p in pair.us.data.parent.iterdir() if ".failback-" in p.name)
    assert leftovers == [], f"the rebuild left {leftovers}"


def test_failback_rebuilds_when_the_eu_recycled_the_wal_from_the_fork(pair: Pair) -> None:
    # The EU keeps no WAL for standbys (wal_keep_size 0) and checkpoints past several segments: the segment where
    # the timelines part is recycled. A rewound US would wait forever for it; the tool rebuilds it instead.
    pair.eu.pg("pg_ctl", "stop", "-D", str(pair.eu.data), "-m", "fast")
    pair.eu.start(wal_keep_size="0")
    for seq in range(3001, 3009):
        pair.write(pair.eu, range(seq, seq + 1))
        pair.eu.sql("SELECT pg_switch_wal()")
        pair.eu.sql("CHECKPOINT")
    result = pair.failback()
    assert result.returncode == 0, result.stderr
    assert phases(result.stdout)[0] == "rebuild", result.stdout
    assert "the EU no longer holds the WAL from where the timelines part" in result.stdout.splitlines()[0], \
        result.stdout
    assert_failed_back(pair)
    assert set(range(3001, 3009)) <= pair.us.seqs(), "the EU's writes after the recycling are not on the US"
    assert not set(range(101, 121)) & pair.us.seqs(), "the US's diverged writes survived the rebuild"


def test_failback_killed_in_the_switchover_leaves_no_writer_and_continues(pair: Pair) -> None:
    # The US made a streaming replica of the EU beforehand, its replay paused: the switchover stops the EU, then
    # waits for the US to replay the EU's shutdown checkpoint - and is killed there.
    shutil.rmtree(pair.us.data)
    pair.us.replicate(pair.eu)
    pair.us.start()
    pair.wait_replayed(pair.eu, pair.us)
    pair.us.sql("SELECT pg_wal_replay_pause()")
    process = subprocess.Popen(pair.argv(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WAIT_SECONDS
    while subprocess.run([*as_postgres(), pg_ctl(), "status", "-D", str(pair.eu.data)],
                         capture_output=True).returncode == 0:
        assert time.monotonic() < deadline and process.poll() is None, "the switchover never stopped the EU"
        time.sleep(0.1)
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode == 130, err
    assert err.splitlines() == [err.strip()] and err.startswith("interrupted in switchover: "), err
    assert "run again" in err or "runs again" in err
    assert pair.us.sql("SELECT pg_is_in_recovery()") == [(True,)], "the US was promoted although killed before"
    with pytest.raises(psycopg.OperationalError):
        pair.eu.sql("SELECT 1")
    pair.us.sql("SELECT pg_wal_replay_resume()")
    result = pair.failback()
    assert result.returncode == 0, result.stderr
    assert phases(result.stdout) == ["switchover", "follow", "failback"], result.stdout
    assert_failed_back(pair)


@pytest.mark.parametrize("pair", [False], indirect=True)
def test_failback_killed_in_the_rebuild_leaves_no_partial_copy_and_continues(pair: Pair) -> None:
    # 60 MB more on the EU, so that pg_basebackup runs long enough to be killed halfway.
    pair.eu.sql("CREATE TABLE filler AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 100000) AS g")
    partial = pair.us.data.parent / "data.failback-partial"
    process = subprocess.Popen(pair.argv(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WAIT_SECONDS
    while not (partial / "base").exists():
        assert time.monotonic() < deadline and process.poll() is None, "the rebuild never began its copy"
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode == 130, err
    assert err.startswith("interrupted in rebuild: ") and len(err.splitlines()) == 1, err
    assert not partial.exists(), "the killed rebuild left its partial copy"
    assert (pair.us.data / "PG_VERSION").exists(), "the kill lost the US data directory before a copy was complete"
    assert subprocess.run(["pgrep", "-f", f"pg_basebackup -D {partial}"], capture_output=True).returncode == 1, \
        "pg_basebackup outlived the command"
    result = pair.failback()
    assert result.returncode == 0, result.stderr
    assert phases(result.stdout)[0] == "rebuild", result.stdout
    assert_failed_back(pair)

"""python -m tools.failback where acting would lose writes or leave no writer, against real PostgreSQL clusters on
127.0.0.1 (the pair of tests/tools/failback_pair.py, after its failover): an old US primary started again while
the EU is down, a US standby that is not the EU's replica, a switchover out of time, an EU left paused, a site
pg_ctl cannot read. Each ends in one line and a documented exit code, and the next run, once the cause is gone,
finishes the failback with every acknowledged write."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.tools.failback_pair import Pair, as_postgres, assert_failed_back, pair, phases, templates

__all__ = ["pair", "templates"]  # the fixtures (tests/tools/failback_pair.py), shared with the happy paths



def test_failback_refuses_an_old_us_primary_while_the_eu_is_down(pair: Pair) -> None:
    # The old US primary comes back writable on the timeline the EU left; the EU, holding the acknowledged writes
    # 1001-1100 on its newer timeline, is down. Following the US would rewind those writes away (and flip to it).
    pair.us.start()
    pair.eu.pg("pg_ctl", "stop", "-D", str(pair.eu.data), "-m", "fast")
    result = pair.failback()
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: the US accepts writes on timeline 1 ") and \
        len(result.stderr.splitlines()) == 1, result.stderr
    assert phases(result.stdout) == [], f"it acted on a stale US: {result.stdout}"
    pair.eu.start()
    assert pair.eu.sql("SELECT pg_is_in_recovery()") == [(False,)], "the EU was made a standby"
    assert set(range(1001, 1101)) <= pair.eu.seqs(), "the EU's acknowledged writes were rewound away"
    result = pair.failback()  # with the EU started again, the US is the one rewound
    assert result.returncode == 0, result.stderr
    assert phases(result.stdout)[0] == "rewind", result.stdout
    assert_failed_back(pair)


def test_failback_resumes_writes_on_a_paused_eu_before_the_us_rejoins(pair: Pair) -> None:
    # Writes paused on the EU as the switchover pauses them (a run stopped there), but the US does not stream.
    pair.eu.sql("ALTER SYSTEM SET default_transaction_read_only = on")
    pair.eu.sql("SELECT pg_reload_conf()")
    result = pair.failback()
    assert result.returncode == 0, result.stderr
    assert phases(result.stdout)[:2] == ["resume", "rewind"], result.stdout
    assert_failed_back(pair)
    assert pair.us.sql("SHOW default_transaction_read_only") == [("off",)], "the rewind copied the EU's pause"


def test_failback_says_why_it_cannot_read_a_site(pair: Pair) -> None:
    # Run as root without a prefix, pg_ctl refuses to run at all: the running EU primary must not be taken for a
    # crashed one (the operator would be told to start a server that runs).
    if os.geteuid() != 0:
        pytest.skip("pg_ctl refuses only root")
    result = pair.failback("--us-command", "", "--eu-command", "")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == "error: inspect: us: pg_ctl status exited 1: pg_ctl: cannot be run as root\n", result.stderr
    assert phases(result.stdout) == []
    assert pair.eu.sql("SELECT pg_is_in_recovery()") == [(False,)]


def test_failback_switchover_out_of_time_resumes_writes_on_the_eu(pair: Pair) -> None:
    # The US streams from the EU but its replay is paused, behind the EU's last writes; the EU is paused as a run
    # stopped after pausing it leaves it (so the run goes straight to the switchover, which cannot finish in time).
    shutil.rmtree(pair.us.data)
    pair.us.replicate(pair.eu)
    pair.us.start()
    pair.wait_replayed(pair.eu, pair.us)
    pair.us.sql("SELECT pg_wal_replay_pause()")
    pair.write(pair.eu, range(1101, 1111))
    pair.eu.sql("ALTER SYSTEM SET default_transaction_read_only = on")
    pair.eu.sql("SELECT pg_reload_conf()")
    result = pair.failback("--timeout-seconds", "3")
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: switchover: ") and \
        "writes resumed on the EU" in result.stderr, result.stderr
    assert pair.us.sql("SELECT pg_is_in_recovery()") == [(True,)], "the US was promoted without the EU's last writes"
    pair.write(pair.eu, range(1111, 1112))  # the EU takes writes again
    pair.us.sql("SELECT pg_wal_replay_resume()")
    result = pair.failback()
    assert result.returncode == 0, result.stderr
    assert_failed_back(pair)
    assert set(range(1101, 1112)) <= pair.us.seqs()


def test_failback_never_promotes_a_us_standby_that_is_not_the_eus_replica(pair: Pair) -> None:
    # The old US wrote on past the fork (rows 5000-7999 on the old timeline), and is then started by hand as a
    # standby of the EU without a rewind: it cannot stream (the EU's timeline forked before its WAL ends) but
    # has replayed further than the EU ever wrote. With the EU then stopped cleanly, a replay position past the
    # EU's shutdown checkpoint is no proof of a replica: promoting it and following it loses the EU's writes.
    pair.us.start()
    pair.write(pair.us, range(5000, 8000))
    pair.us.pg("pg_ctl", "stop", "-D", str(pair.us.data), "-m", "immediate")
    subprocess.run([*as_postgres(), "touch", str(pair.us.data / "standby.signal")], check=True)
    with open(pair.us.data / "postgresql.auto.conf", "a") as conf:
        conf.write(f"primary_conninfo = '{pair.eu.conninfo}'\n")
    pair.us.start()
    pair.eu.pg("pg_ctl", "stop", "-D", str(pair.eu.data), "-m", "fast")
    result = pair.failback()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is not the EU's replica" in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert pair.us.sql("SELECT pg_is_in_recovery()") == [(True,)], "the stale US was promoted"
    pair.eu.start()
    assert set(range(1001, 1101)) <= pair.eu.seqs()
    # As the line says: with the EU started, the US - given 1 s, not 15, to stream, which it never can - is rewound
    # and the failback ends.
    result = pair.failback("--stream-grace-seconds", "1")
    assert result.returncode == 0, result.stderr
    assert phases(result.stdout)[0] == "rewind", result.stdout
    assert_failed_back(pair)
    assert not set(range(5000, 8000)) & pair.us.seqs()


def test_failback_refuses_while_an_earlier_runs_copy_still_runs(pair: Pair) -> None:
    # A run killed outright (SIGKILL, a lost ssh session) cannot stop its pg_basebackup: a new run would copy into
    # the same folder beside it. A process whose command line is that copy's stands in for it (the real one needs a
    # run to be killed mid-copy at the right moment); pgrep sees command lines the same way.
    partial = f"{pair.us.data}.failback-partial"
    stray = subprocess.Popen(["python3", "-c", "import time; time.sleep(120)", "pg_basebackup", "-D", partial,
                              "-X", "stream"])
    try:
        result = pair.failback()
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr == (f"error: us: a pg_basebackup of an earlier run still writes into {partial} "
                                 f"(pid {stray.pid} on the us host): stop it, then run the same command again\n"), \
            result.stderr
        assert phases(result.stdout) == [], f"it acted beside the copy: {result.stdout}"
    finally:
        stray.kill()
        stray.wait()
    result = pair.failback()
    assert result.returncode == 0, result.stderr
    assert_failed_back(pair)


def test_failback_refuses_when_it_cannot_look_for_a_left_copy(pair: Pair) -> None:
    # A prefix that cannot run pgrep exits 1 as pgrep does when it finds nothing (runuser, sudo), but says why:
    # that is no all-clear.
    result = pair.failback("--eu-command", "sh -c 'echo \"cannot run $0\" >&2; exit 1'")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == "error: inspect: eu: pgrep exited 1: cannot run pgrep\n", result.stderr
    assert phases(result.stdout) == []

"""Failback after a failover: make the US a replica of the promoted EU, switch over to it, and make the EU its
replica again - a resumable state machine over PostgreSQL's own tools.

    python -m tools.failback --us-data DIR --us CONNINFO --eu-data DIR --eu CONNINFO
        [--us-command PREFIX] [--eu-command PREFIX] [--bindir DIR] [--stack dr] [--skip-flip]
        [--timeout-seconds 600] [--interval-seconds 1] [--stream-grace-seconds 15]

`--us` / `--eu` are libpq connection strings of each site's server, reachable from here and from the other
site (each is written into the other's primary_conninfo): a superuser, its password in a passfile
(`passfile=` or PGPASSFILE), not in the string. The grants pg_rewind lists
(https://www.postgresql.org/docs/15/app-pgrewind.html) are not enough: the tool also runs CHECKPOINT
(pg_checkpoint, https://www.postgresql.org/docs/15/sql-checkpoint.html), ALTER SYSTEM on
default_transaction_read_only, pg_reload_conf() and ends other sessions (pg_signal_backend), and streams
(REPLICATION). `--us-data` / `--eu-data` are the data directories on
each database host; `--us-command` / `--eu-command` run a command there as the postgres user (`ssh
postgres@us-db`, `sudo -u postgres`; default: directly, so run it on the database host as postgres). pg_rewind,
pg_basebackup and pg_ctl need that file-level access: this is for self-managed PostgreSQL. Supabase's managed
databases give none; there a failback is a restore or a new project from the EU side
(https://supabase.com/docs/guides/platform/backups, https://supabase.com/docs/guides/platform/read-replicas).

Every run reads both servers (running? primary? which timeline? streaming from whom? writes paused?) and goes on
from there, one timed line per phase; a run that finds the work done changes nothing:

  rewind|rebuild  the US, not streaming from the EU, is stopped and rewound to the EU's timeline
                  (pg_rewind --source-server -R; `no rewind required` when it never wrote past the point where the
                  timelines part); when pg_rewind cannot (no data checksums or wal_log_hints, WAL gone, a rewind
                  interrupted) it is rebuilt (pg_basebackup -R into a fresh directory, swapped in)
  resume          writes paused on the EU by a switchover that stopped early, the US not streaming: writes
                  resumed on the EU first (the US may take long to rejoin, and a rewind would copy the setting)
  stream          the US started as a standby and streaming from the EU (redundancy is back)
  catch-up        the US has replayed everything the EU had written when the phase began (bounded by the timeout)
  switchover      writes paused on the EU (default_transaction_read_only, reloaded, and its client sessions
                  ended), the US replays the EU's last WAL, the EU shut down cleanly (its walsender sends the
                  shutdown checkpoint first) and the US, having replayed that checkpoint, promoted
  flip            python -m tools.failover demote --stack STACK --yes: the stack sends traffic to the US again
                  and the Vercel deployment is redeployed (tools/failover.py); skipped with --skip-flip
  follow          the EU, cleanly stopped at the switchover's last record, rewound (`no rewind required`) with
                  standby.signal and primary_conninfo naming the US (rebuilt when pg_rewind cannot run), started
                  and streaming from the new timeline

Timelines: https://www.postgresql.org/docs/15/continuous-archiving.html#BACKUP-TIMELINES and
https://www.postgresql.org/docs/15/warm-standby.html. Each promotion starts a timeline; a standby follows the
newest (recovery_target_timeline = latest, the default) if its own WAL ends at or before the point where that
timeline branched off. The old US primary wrote past that point (the outage cut it off mid-write), so it is
rewound or rebuilt; the EU, stopped cleanly before the US is promoted, is not. When both sites accept writes,
the one on the older timeline is the old primary and is rewound. A writable US with the EU down is followed
and flipped to only when its timeline is newer than the EU's (it was promoted by the switchover); an old US
primary started again while the EU is down is refused (exit 2), as following it would rewind the EU's writes
away. pg_rewind -R and pg_basebackup -R write the
other site's connection string into primary_conninfo, with application_name the standby's site (us, eu).

A kill at any point leaves one line saying where it stopped, and the same command continues (SIGKILL leaves no
line, and a pg_basebackup or pg_rewind it started may go on: the next run refuses until it has ended): during the
switchover the EU is paused or stopped and the US not yet promoted (no site takes writes) until it runs again.
The flip runs before the follow, so an EU streaming from the US means it went through; a run killed in the
follow flips again (an update with nothing to change, and a redeploy). `--timeout-seconds` bounds each wait
(catch-up, the US replaying the EU's last WAL, a server starting, streaming) and is the flip's health wait;
the copies (pg_rewind, pg_basebackup) run to the end; `--interval-seconds` is every poll's interval,
the flip's too. `--stream-grace-seconds` is how long a US found running as a standby but not streaming from the
EU is given to connect before it is stopped and rewound (longer where the sites' link is slow to connect).

Exit codes:
  0    done: the US is the primary, the EU streams from it (and the stack was flipped)
  1    a wait ran out of time; a switchover that ran out of time resumes writes on the EU first
  2    nothing can be done safely: a bad option, a server not reachable, both sites writable on one timeline,
       the US writable on a timeline not newer than the stopped EU's, a US standby that replayed past the
       stopped EU's last record (not its replica), the EU stopped uncleanly mid-switchover, two different
       clusters, a pg_basebackup or pg_rewind of an earlier run (killed outright, or cut off with its ssh) still
       writing into `<data>.failback-partial` or `<data>` on a database host (found with pgrep, which the hosts
       need: stop that pid there, then run again), pgrep missing or failing
  3    a PostgreSQL tool or statement failed (pg_ctl, pg_basebackup, or pg_rewind and the rebuild after it;
       a statement the role may not run)
  4    the flip failed (tools.failover demote's own error is printed above): run the same command again
  130  interrupted
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import sys
from pathlib import Path

import psycopg

from tools.failback_phases import (
    EXIT_FLIP,
    EXIT_INTERRUPTED,
    EXIT_TIMEOUT,
    EXIT_TOOL,
    EXIT_UNSAFE,
    INTERRUPTED,
    STREAM_GRACE_SECONDS,
    Failback,
    FlipFailed,
    Unsafe,
)
from tools.failback_sites import PARTIAL, Site, SiteError, WaitTimeout, last_line
from tools.operator import Interrupted, Parser, seconds_argument, stack_argument, stoppable


def _prefix(text: str) -> list[str]:
    return shlex.split(text)


def _bindir() -> str:
    found = shutil.which("pg_ctl")
    if found:
        return str(Path(found).resolve().parent)  # Debian links pg_ctl alone into PATH
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return str(versions[-1].parent) if versions else "/usr/lib/postgresql/15/bin"


def no_copy_running(site: Site) -> None:
    """Unsafe when a pg_basebackup or pg_rewind an earlier run started still writes into `site`'s partial folder or
    data directory: a run killed outright (SIGKILL, a lost ssh session) cannot stop it, and a second copy or rewind
    of the same folder would mix the two. pgrep exits 0 when it finds a process and 1, silently, when it finds none;
    runuser and sudo exit 1 too when they cannot run it, but say why on stderr."""
    paths = "|".join(re.escape(path) for path in (f"{site.data}{PARTIAL}", str(site.data)))
    writer = re.compile(rf"(?:^|[\s/])(pg_basebackup|pg_rewind)\s.*?(?:-D\s*|--pgdata=|--target-pgdata=)({paths})/?(?:\s|$)")
    found = site.run("pgrep", "-a", "-f", "[p]g_(basebackup|rewind)", check=False)
    if found.returncode not in (0, 1) or found.stderr.strip():
        raise SiteError(f"{site.name}: pgrep exited {found.returncode}: {last_line(found.stderr or found.stdout)}")
    writers = [(line.split()[0], match) for line in found.stdout.splitlines() if (match := writer.search(line))]
    if writers:
        program, path = writers[0][1].groups()
        raise Unsafe(f"{site.name}: a {program} of an earlier run still writes into {path} (pid "
                     f"{', '.join(pid for pid, _ in writers)} on the {site.name} host): stop it, then run the same "
                     "command again")


def parser() -> argparse.ArgumentParser:
    """The command line."""
    command = Parser(prog="python -m tools.failback", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    for site in ("us", "eu"):
        upper = site.upper()
        command.add_argument(f"--{site}", required=True, metavar="CONNINFO",
                             help=f"libpq connection string of the {upper} server (password in a passfile)")
        command.add_argument(f"--{site}-data", required=True, metavar="DIR", help=f"the {upper} data directory")
        command.add_argument(f"--{site}-command", type=_prefix, default=[], metavar="PREFIX",
                             help=f"runs a command as postgres on the {upper} database host (default: directly)")
    command.add_argument("--bindir", default=None, help="PostgreSQL's programs on the database hosts "
                                                        "(default: where pg_ctl on PATH links to, else Debian's newest)")
    command.add_argument("--stack", type=stack_argument, default="dr", help="the stack the flip demotes (default dr)")
    command.add_argument("--skip-flip", action="store_true", help="leave the stack as it is (no tools.failover demote)")
    command.add_argument("--timeout-seconds", type=seconds_argument(positive=False), default=600.0,
                         help="each wait, and the flip's health wait (default 600)")
    command.add_argument("--interval-seconds", type=seconds_argument(positive=True), default=1.0,
                         help="between polls, the flip's health polls too (default 1)")
    command.add_argument("--stream-grace-seconds", type=seconds_argument(positive=False), default=STREAM_GRACE_SECONDS,
                         help="how long a running US standby that does not stream from the EU gets to connect "
                              f"before it is rewound (default {STREAM_GRACE_SECONDS:g})")
    return command


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.failback`."""
    args = parser().parse_args(argv)
    bindir = args.bindir or _bindir()
    us = Site("us", args.us_data, args.us, args.us_command, bindir)
    eu = Site("eu", args.eu_data, args.eu, args.eu_command, bindir)
    flip = None if args.skip_flip else [sys.executable, "-m", "tools.failover", "demote", "--stack", args.stack,
                                        "--yes", "--timeout-seconds", f"{args.timeout_seconds:g}",
                                        "--interval-seconds", f"{args.interval_seconds:g}"]
    run = Failback(us, eu, args, flip)
    try:
        with stoppable():
            for site in (us, eu):
                no_copy_running(site)
            run.run()
    except (KeyboardInterrupt, Interrupted):
        for site in (us, eu):
            site.stop_children()
        for site in (us, eu):  # a half-made copy is never of use: the next run starts it again
            site.run("rm", "-rf", f"{site.data}{PARTIAL}", check=False)
        print(f"interrupted in {run.phase}: {INTERRUPTED.get(run.phase, 'run the same command again to go on')}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except WaitTimeout as exc:
        print(f"error: {run.phase}: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except Unsafe as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNSAFE
    except SiteError as exc:
        code = EXIT_UNSAFE if run.phase == "inspect" else EXIT_TOOL
        print(f"error: {run.phase}: {exc}", file=sys.stderr)
        return code
    except FlipFailed as exc:
        print(f"error: flip: {exc}; run the same command again", file=sys.stderr)
        return EXIT_FLIP
    except (psycopg.Error, OSError) as exc:  # a statement refused (a role without the rights), a prefix not found
        print(f"error: {run.phase}: {last_line(str(exc))}", file=sys.stderr)
        return EXIT_UNSAFE if run.phase == "inspect" else EXIT_TOOL
    total = sum(seconds for _, seconds, _ in run.done)
    if run.done:
        print(f"{'failback':<10} {total:7.1f} s  done: the US is the primary and the EU streams from it")
    return 0


if __name__ == "__main__":
    sys.exit(main())

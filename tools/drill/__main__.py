"""Recovery drills on one machine: the plan's scenarios run for real, measured against the recovery model.

    python -m tools.drill [--scenario NAME ...] [--size-mb N] [--json] [--markdown FILE] [--record DIR]
                          [--time-scale X]
    python -m tools.drill --clean        remove what a killed drill left (namespaces, processes, folders)
    python -m tools.drill verify [DIR]   check the hash chain of the drill records in DIR (docs/drills)

Needs root (network namespaces), iproute2, PostgreSQL 15, Knot DNS and the Python requirements.
Exit codes: 0 every scenario met its objectives with its data verified; 1 an objective missed, data lost
without explanation, a recovery step failed, a measurement worse than the model's estimate by more than 2x
(the report names the term or the model parameter), or a report that could not be filed (one line, after the
report: it is printed before the record is filed); 2 bad usage or environment (not root, a missing binary,
another drill running, a plan that does not build, a --record DIR or --markdown FILE that cannot be written -
checked before the drill starts); 130 interrupted (SIGINT, SIGTERM or SIGHUP; the world is torn down first).
`verify` needs no root: 0 the chain is intact, 1 a record's content or link is wrong (named), 2 bad usage or an
unreadable record (tools/drill/records.py). See docs/drill.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from tools.drill import records

if __name__ == "__main__" and sys.argv[1:2] == ["verify"]:  # before the drill's own imports: `verify` needs none
    sys.exit(records.main(sys.argv[2:]))

# google-api-core's notice about Python 3.11 is not the operator's concern during a drill.
warnings.filterwarnings("ignore", message="You are using a Python version", category=FutureWarning)

from tools.drill import dns, filing, postgres, render, report, storage  # noqa: E402
from tools.drill.harness import Drill, Options, Outcome  # noqa: E402
from tools.drill.scenarios import SCENARIOS, chosen  # noqa: E402
from tools.drill.world import USAGE, DrillError, Lock, clean_stale, scrub  # noqa: E402

EXIT_MET, EXIT_MISSED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
SMALL_MB = 16


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP: unwind so that the world is torn down."""


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _bounded(kind: type[int] | type[float], low: float, high: float, what: str) -> Any:
    """An argparse type: a number of `kind` between `low` and `high`."""
    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"give {what} between {low:g} and {high:g}")
        return value
    return convert


def parser() -> argparse.ArgumentParser:
    """The command line."""
    cli = argparse.ArgumentParser(prog="python -m tools.drill", description=__doc__.split("\n\n")[0])
    cli.add_argument("--scenario", action="append", choices=SCENARIOS, metavar="NAME",
                     help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}")
    cli.add_argument("--size-mb", type=_bounded(int, 1, 100_000, "a whole number of MB"), default=None,
                     help=f"database size to load (default: a small drill of {SMALL_MB} MB)")
    cli.add_argument("--time-scale", type=_bounded(float, 1, 3600, "a time scale (1: real time)"), default=60.0,
                     help="plan seconds per drill second for TTLs and transfer intervals (default 60)")
    cli.add_argument("--json", action="store_true", help="print one JSON object per scenario")
    cli.add_argument("--markdown", type=Path, metavar="FILE", help="also write the report as Markdown to FILE")
    cli.add_argument("--record", type=Path, metavar="DIR",
                     help="also file the drill's record (Markdown and JSON, chained to the newest record) in DIR")
    cli.add_argument("--clean", action="store_true", help="only remove what a killed drill left, then exit")
    return cli


def preflight() -> None:
    """Root and every binary the world needs, or DrillError(USAGE) saying what to install."""
    if os.geteuid() != 0:
        raise DrillError(USAGE, "the drill needs root (it creates network namespaces): run it as root")
    if shutil.which("ip") is None:
        raise DrillError(USAGE, "`ip` not found: apt-get install iproute2")
    postgres.bindir()
    dns.binaries()
    storage.binary()
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise DrillError(USAGE, "no `postgres` user (PostgreSQL refuses root): apt-get install postgresql-15") from None


def writable(args: argparse.Namespace) -> None:
    """--record DIR a writable folder (or one that can be made in a writable folder) and --markdown FILE's folder
    writable, or DrillError(USAGE): checked before the drill starts, so that its report is never lost."""
    if args.record is not None:
        folder = args.record if args.record.exists() else args.record.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise DrillError(USAGE, f"--record {args.record}: {folder} is not a folder this user can write to")
    if args.markdown is not None:
        folder = args.markdown.parent
        if args.markdown.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise DrillError(USAGE, f"--markdown {args.markdown}: not a file in a folder this user can write to")


def file_report(args: argparse.Namespace, drill: Drill, outcome: Outcome, markdown: str) -> int:
    """Write --markdown FILE and file --record DIR (after the report is printed): EXIT_MET, or one line and
    EXIT_MISSED when a file cannot be written."""
    try:
        if args.markdown:
            filing.replace_atomically(args.markdown, markdown)
        if args.record:
            used = {name: getattr(drill.plans, name) for name in ("prod", "dr", "promoted")}
            scenarios = [json.loads(scrub(json.dumps(r.to_json()))) for r in outcome.results]
            filed = filing.write(args.record, markdown, scenarios, outcome.world, outcome.throughput,
                                 records.plan_digests(used), uncommitted=bool(outcome.world.get("uncommittedChanges")))
            print(f"drill record: {' and '.join(str(path) for path in filed)}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"error: the drill's report above could not be filed: {scrub(str(exc))[:300]}", file=sys.stderr)
        return EXIT_MISSED
    return EXIT_MET


def main(argv: list[str] | None = None) -> int:
    """Run the drill (or `verify` the records); return its exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["verify"]:
        return records.main(argv[1:])
    args = parser().parse_args(argv)
    started = time.monotonic()
    os.environ.pop("STORAGE_EMULATOR_HOST", None)  # each site has its own emulator; the drill names it every time

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f} s] {scrub(message)}", file=sys.stderr, flush=True)

    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    lock: Lock | None = None
    drill: Drill | None = None
    try:
        preflight()
        writable(args)
        lock = Lock()
        lock.acquire()
        for item in clean_stale():
            progress(f"removed what a killed drill left: {item}")
        if args.clean:
            return EXIT_MET
        drill = Drill(Options(chosen(args.scenario or SCENARIOS), args.size_mb or SMALL_MB, args.time_scale), progress)
        outcome = drill.run()
    except Interrupted as exc:
        print(f"interrupted by {exc}: the drill's world is torn down, nothing is left running", file=sys.stderr)
        return EXIT_INTERRUPTED
    except DrillError as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        return exc.code
    except Exception as exc:  # noqa: BLE001 - one line for the operator; RFDR_DEBUG=1 shows the traceback
        if os.environ.get("RFDR_DEBUG"):
            traceback.print_exc()
        print(f"error: the drill failed unexpectedly ({type(exc).__name__}: {scrub(str(exc))[:300]}); "
              "run again with RFDR_DEBUG=1 for details", file=sys.stderr)
        return EXIT_MISSED
    finally:
        for s in previous:
            signal.signal(s, signal.SIG_IGN)  # teardown is not interrupted half-way
        if drill is not None:
            progress("tearing the world down")
            drill.teardown()
        if lock is not None:
            lock.release()
        for s, handler in previous.items():
            signal.signal(s, handler)

    results = outcome.results
    markdown = scrub(render.markdown(results, outcome.world, outcome.throughput))
    print(scrub(report.as_json(results) if args.json else render.text(results, outcome.world, outcome.throughput)))
    filed = file_report(args, drill, outcome, markdown)
    missed = [r for r in results if not r.met]
    for result in missed:
        reason = result.failure or "; ".join(result.model_findings) or (
            "data not verified" if not result.data_ok else "an objective was missed")
        print(f"drill: {result.scenario} NOT MET: {scrub(reason)}", file=sys.stderr)
    return EXIT_MISSED if missed else filed


if __name__ == "__main__":
    sys.exit(main())

"""Rotate every credential the stacks hold after a leak: the database password everywhere it is held, and a list
of what remains for a vendor's console.

    python -m tools.rotate STACK [STACK ...] [--incident ID] [--timeout-seconds 600] [--interval-seconds 5]
                           [--project-dir DIR]

The database password is the one in the first stack's `databaseUrl`. The rotation is a journal of steps kept in
the first stack's config (tools/rotate_config.py), each finished before the next begins:

  journal               a new password is generated and stored as a Pulumi secret, with the old one, FIRST:
                        an interrupt anywhere after it never loses the only copy of the password in force
  alter-role            ALTER ROLE to the new password, as a SCRAM verifier computed here (tools/rotate_database.py);
                        skipped when the server already takes the new password
  store                 every secret of every STACK that holds the old password (`databaseUrl`, the scratch URL,
                        a Vercel secret value...) gets the new one (`pulumi config set --secret`, value on stdin)
  roll-tokens           each Cloudflare API token the stacks hold is rolled through Cloudflare's API where the
                        token may roll itself, and the new value stored at once (tools/rotate_tokens.py); a signal
                        waits from the roll until it is stored (a SIGKILL cannot: the token then shows as not
                        rolled and is listed for the dashboard)
  up                    `pulumi up` of each STACK: new Secret Manager versions, new Vercel variable values; each
                        replaced version is disabled by `up` itself, as the stacks' SecretVersions declare
                        deletion_policy DISABLE (components/building_blocks.py; the policy pack holds them to it)
  redeploy              Vercel applies a changed variable only to a new deployment: a STACK with a `vercel` section
                        whose secret values hold the password has its production deployment redeployed and
                        waited for until READY (tools/vercel_deploy.py)
  verify                the new password logs in and the old one is refused; the role's sessions opened before
                        the ALTER ROLE are ended (a leaked password may have opened one)
  disable-old-versions  only now, with the new versions in use, any older version of the stacks' Secret Manager
                        secrets still ENABLED (one added by hand, or left by an `up` of another deletion_policy) is
                        disabled, never destroyed (tools/rotate_versions.py); after `up` with DISABLE, none is
  done                  the journal says so and forgets both passwords

It prints each step as it finishes, then what it rotated and what remains manual - vendor-issued secrets (Stripe,
Resend, Slack, Supabase keys, the Vercel and Cloudflare API tokens) with where to rotate each (tools/rotate_manual.py).
Nothing it prints contains a secret: lines from `pulumi up` are scrubbed of every value the stacks hold.

`--incident ID` (default: today's UTC date) names the rotation. Run again with the same ID, it finishes what an
interrupted run began - never rotating twice - or, when it finished, says so and changes nothing. A new ID starts
a new rotation; an unfinished rotation of another ID must be finished first. `--timeout-seconds` bounds the
redeploy's wait for READY (default: the model's Vercel redeploy, core/limits.py) and `--interval-seconds` its polls.
`pulumi up` needs each stack's credentials; the Vercel token is $VERCEL_TOKEN or the stack's `vercel:apiToken`;
Secret Manager takes $GOOGLE_OAUTH_ACCESS_TOKEN or gcloud's (`$SECRET_MANAGER_API_URL`, `$VERCEL_API_URL` and
`$CLOUDFLARE_API_URL` point at stand-ins in tests and drills).

Exit codes:
  0    rotated (or the incident's rotation had finished already); the manual list may not be empty
  1    verification failed: the old password is still accepted, or the new one refused
  2    nothing was changed: bad usage, no Pulumi CLI, no such stack, no `databaseUrl` with a password, or an
       unfinished rotation of another incident
  3    the Pulumi CLI failed (config or `up`): the journal holds the new password; fix the cause, run again
  4    the Vercel redeploy failed or was not READY in time; run again
  5    the database accepts neither the old nor the new password (or cannot be reached): nothing more is changed;
       when it refuses both, the journal is forgotten too: reset the password, put it in `databaseUrl`, run again
  6    a Secret Manager call failed; run again
  130  interrupted by SIGINT, SIGTERM or SIGHUP: run the same command again to finish

FOR TESTS: RFDR_ROTATE_PAUSE_BEFORE=STEP makes the command print `pausing before STEP` and wait (at most
5 minutes) before that step, so a test can interrupt it exactly there.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from core import limits
from tools.offline import ROOT
from tools.operator import children
from tools.rotate_run import EXIT_INTERRUPTED, EXIT_PULUMI, EXIT_SETUP, Failed, Rotation
from tools.secrets import CliError, Interrupted, Signals


class RotationSignals(Signals):
    """tools.secrets' handler (a signal waits while the CLI writes a value), which also passes SIGTERM on to the
    Pulumi CLI this started, so an interrupted `up` does not run on alone."""

    def __call__(self, signum: int, frame: object) -> None:
        if self.setting is None:
            for pid in children():
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        super().__call__(signum, frame)


def _seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a finite number of seconds > 0")
    return value


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.rotate`."""
    parser = argparse.ArgumentParser(prog="python -m tools.rotate", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stacks", nargs="+", metavar="STACK", help="stacks whose credentials to rotate; the first "
                        "holds the database URL and the journal")
    parser.add_argument("--incident", default=datetime.now(UTC).strftime("%Y-%m-%d"), metavar="ID",
                        help="the rotation's name: a second run with it finishes or confirms it (default: today, UTC)")
    parser.add_argument("--timeout-seconds", type=_seconds, default=limits.VERCEL_REDEPLOY_MINUTES * 60.0,
                        help="how long the Vercel redeploy may take to be READY (default: the model's redeploy)")
    parser.add_argument("--interval-seconds", type=_seconds, default=5.0, help="poll interval of the redeploy")
    parser.add_argument("--project-dir", type=Path, default=ROOT, metavar="DIR",
                        help="folder of Pulumi.yaml and the stack files (default: this repo)")
    args = parser.parse_intermixed_args(argv)
    if not (args.project_dir / "Pulumi.yaml").is_file():
        parser.error(f"--project-dir {args.project_dir} holds no Pulumi.yaml")
    signals = RotationSignals()
    rotation = Rotation(args, signals)
    try:
        with signals.installed():
            return rotation.run()
    except Failed as exc:
        rotation.say(f"error: {exc}" + ("" if exc.code == EXIT_SETUP and rotation.step_now == "journal"
                                        else f" (at step {rotation.step_now}; run the same command again)"), error=True)
        return exc.code
    except CliError as exc:
        rotation.say(f"error: {exc}", error=True)
        return EXIT_SETUP if rotation.step_now == "journal" and not rotation.rotated else EXIT_PULUMI
    except (Interrupted, KeyboardInterrupt) as exc:
        for number in Signals.SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        how = exc.how if isinstance(exc, Interrupted) else "SIGINT"
        print(f"interrupted by {how} at step {rotation.step_now}: run the same command again to finish the rotation",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

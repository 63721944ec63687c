"""A TEST STAND-IN for the Pulumi CLI, put first on PATH by tests: not Pulumi.

The real CLI cannot be installed on these machines (no downloads beyond the package registries), so the
operator commands that drive it through the Automation API are tested against this script. It answers what
they ask (`version`, `stack select`, `stack ls --json`, `stack output --json` from $STAND_IN_OUTPUTS,
`stack history --json`, `config get KEY --json` from the JSON map $STAND_IN_CONFIG - decrypted, as the CLI
prints a secret it is asked for by name), records every call (argv, stdin, and the file given
with `--config-file`) as JSON lines in $STAND_IN_LOG, writes a ciphertext of the passphrase provider's shape
for `config set --secret` (and plain values for `config set`) into Pulumi.<stack>.yaml, named after the
stack's short name as the CLI names it (`myorg/dr` -> Pulumi.dr.yaml), or fails `config set` with
$STAND_IN_CONFIG_SET_STDERR when that is given, and for `preview` / `up` sleeps
$STAND_IN_SLEEP_SECONDS and exits $STAND_IN_EXIT with $STAND_IN_STDERR - after a success, with the summary
event the Automation API waits for in the file given with `--event-log`, and either way ending that file with
the cancel event the CLI writes last (without it the Automation API's log watcher is joined only after its
5-second timeout). It says it is v3.200.0: the last version that the Automation API hands a file for engine
events (later ones stream them over gRPC). The version, the history entry and the event log are the drill's
stand-in CLI's own (tools/drill/pulumi_cli.py), so both stand-ins answer the Automation API alike.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = '''#!{python}
import json, os, sys
sys.path.insert(0, {root!r})
# Each call is a new interpreter: what only some calls need is imported by them.
args = [a for a in sys.argv[1:] if a != "--non-interactive"]
record = {{"argv": args}}
if "--config-file" in args:
    record["configFile"] = open(args[args.index("--config-file") + 1]).read()
if args == ["version"]:
    from tools.drill.pulumi_cli import VERSION
    print(VERSION); sys.exit(0)
if args[:2] == ["config", "set"]:
    record["stdin"] = sys.stdin.read()
with open(os.environ["STAND_IN_LOG"], "a") as out:
    out.write(json.dumps(record) + "\\n")
if args[:2] == ["stack", "select"]:
    sys.exit(0)
if args[:2] == ["stack", "ls"]:
    print(json.dumps([{{"name": name, "current": False}} for name in os.environ["STAND_IN_STACKS"].split(",")]))
    sys.exit(0)
if args[:2] == ["config", "get"]:
    known = json.loads(os.environ.get("STAND_IN_CONFIG", "{{}}"))
    stack = args[args.index("--stack") + 1]
    if args[2] not in known:
        print(f"error: configuration key '{{args[2]}}' not found for stack '{{stack}}'", file=sys.stderr); sys.exit(255)
    print(json.dumps({{"value": known[args[2]], "secret": True}})); sys.exit(0)
if args[:2] == ["config", "set"]:
    if os.environ.get("STAND_IN_CONFIG_SET_STDERR"):
        print(os.environ["STAND_IN_CONFIG_SET_STDERR"], file=sys.stderr); sys.exit(255)
    import base64, yaml
    stack = args[args.index("--stack") + 1]
    rest = [a for a in args[2:] if a not in ("--secret", "--plaintext", "--path", "--stack", stack, "--")]
    path, value = rest[0], (rest[1] if len(rest) > 1 else record["stdin"])
    stack_file = os.path.join(os.getcwd(), f"Pulumi.{{stack.rsplit('/', 1)[-1]}}.yaml")
    document = yaml.safe_load(open(stack_file)) or {{}}
    node = document.setdefault("config", {{}})
    top, *more = path.removeprefix("raptorflow-dr:").split(".")
    key = "raptorflow-dr:" + top
    if more:
        node = node.setdefault(key, {{}})
        for part in more[:-1]:
            node = node.setdefault(part, {{}})
        key = more[-1]
    if "--secret" in args:
        document.setdefault("encryptionsalt", "v1:c2FsdHNhbHQ=:v1:bm9uY2VOT05DRTEy:Y2lwaGVydGV4dC1vZi1wdWx1bWk=")
        sealed = base64.b64encode(os.urandom(len(value) + 16)).decode()
        node[key] = {{"secure": "v1:" + base64.b64encode(os.urandom(12)).decode() + ":" + sealed}}
    else:
        node[key] = value
    yaml.safe_dump(document, open(stack_file, "w"))
    sys.exit(0)
if args[:2] == ["stack", "output"]:
    print(os.environ.get("STAND_IN_OUTPUTS", "{{}}")); sys.exit(0)
if args[:2] == ["stack", "history"]:
    from tools.drill.pulumi_cli import history_entry
    print(json.dumps([history_entry()]))
    sys.exit(0)
if args and args[0] in ("preview", "up"):
    import time
    from tools.drill.pulumi_cli import write_event_log
    time.sleep(float(os.environ.get("STAND_IN_SLEEP_SECONDS", "0")))
    print(os.environ.get("STAND_IN_STDERR", ""), file=sys.stderr)
    code = int(os.environ.get("STAND_IN_EXIT", "0"))
    if "--event-log" in args:
        write_event_log(args[args.index("--event-log") + 1], code == 0)
    sys.exit(code)
print("stand-in: unexpected " + " ".join(args), file=sys.stderr); sys.exit(9)
'''


def install(folder: Path, stacks: str) -> dict[str, str]:
    """Write the stand-in as `folder/bin/pulumi`; return an environment with it first on PATH."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    cli = bin_dir / "pulumi"
    cli.write_text(SCRIPT.format(python=sys.executable, root=str(ROOT)))
    cli.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "STAND_IN_LOG": str(folder / "calls.log"),
            "STAND_IN_STACKS": stacks, "PULUMI_SKIP_UPDATE_CHECK": "true"}


def calls(folder: Path) -> list[dict]:
    """What the stand-in was asked, in order."""
    import json

    log = folder / "calls.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

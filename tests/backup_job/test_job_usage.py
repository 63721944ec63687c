"""What the backup job refuses before any work, with exit 2 and one line: a bucket name Cloud Storage would
refuse, an unknown or mistyped argument (its secret hidden), a prefix that climbs out of the bucket.
"""

from __future__ import annotations

import pytest

from backup_job import cli
from backup_job import storage as layout
from backup_job.errors import COMMANDS, ExitCode
from tests.backup_job.jobs import FAST_STORAGE, closed_port, job, one_log_line
from tests.services import postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


@pytest.mark.parametrize("name, rule", [
    ("ab", "3-63 characters"),
    ("a" * 64, "3-63 characters"),
    ("a." * 111 + "ab", "3-63 characters"),  # 224 characters with dots
    ("part." + "a" * 64, "longer than 63"),
    ("Backups", "lowercase"),
    ("-backups", "start and end"),
    ("backups_", "start and end"),
    ("back/ups", "lowercase"),
    ("192.168.5.4", "IP address"),
    ("goog-backups", '"goog"'),
    ("my-google-backups", '"google"'),
])
def test_a_bucket_name_cloud_storage_refuses_is_a_usage_error(name, rule):
    with pytest.raises(layout.JobError) as caught:
        layout.check_bucket(name)
    assert caught.value.code == ExitCode.USAGE and rule in str(caught.value)
    assert "https://cloud.google.com/storage/docs/buckets#naming" in str(caught.value)


@pytest.mark.parametrize("name", ["abc", "a" * 63, "raptorflow-prod-db-dumps", "my_bucket.example.com",
                                  ".".join(["a" * 63] * 3) + ".a" * 14, "192.168.5.x", "1.2.3.4.5"])
def test_a_bucket_name_cloud_storage_allows_passes(name):
    assert layout.check_bucket(name) == name


@pytest.mark.parametrize("command", ["backup", "list"])
def test_an_invalid_bucket_name_exits_2_with_one_line(command, source_url):
    """Before any storage call: the storage here is unreachable, which would be exit 4."""
    extra = ("--kind", "full") if command == "backup" else ()
    code, out, err, _ = job(command, *extra, "--bucket", "Prod_Backups", env={
        "DATABASE_URL": source_url, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{closed_port()}", **FAST_STORAGE})
    assert code == ExitCode.USAGE, out + err
    message = err.strip().splitlines()[-1] if command == "list" else one_log_line(out)["message"]
    assert "bucket name 'Prod_Backups' may hold only lowercase letters" in message and "\n" not in message


def test_the_known_commands_are_the_parsers_subcommands():
    (commands,) = [action for action in cli.build_parser()._actions if action.dest == "command"]
    assert commands.choices is not None and set(commands.choices) == set(COMMANDS)


@pytest.mark.parametrize("args, said", [
    (("backup", "--kind", "full", "--bogus"), "unrecognized arguments: --bogus"),
    (("backup",), "the following arguments are required: --kind"),
    (("restore", "--jobs", "many"), "invalid int value: 'many'"),
    (("list", "--bogus"), "unrecognized arguments: --bogus"),
    (("backup", "--kind", "full", "--databaseurl=postgresql://app:Sekr3t-pw@db.example/app"),
     "unrecognized arguments: --databaseurl=postgresql://app:[password]@db.example/app"),
], ids=["unknown-flag", "missing-required", "bad-type", "list-unknown-flag", "secret-in-a-mistyped-flag"])
def test_an_argument_error_also_ends_with_the_json_line(args, said):
    code, out, err, _ = job(*args)
    log = one_log_line(out)
    assert code == ExitCode.USAGE and "usage: python -m backup_job" in err
    assert {k: log[k] for k in ("event", "result", "exitCode", "failure", "command")} == {
        "event": "raptorflow.backup", "result": "failure", "exitCode": 2, "failure": "usage", "command": args[0]}
    assert said in log["message"] and said in err
    assert "Sekr3t" not in out + err


def test_a_prefix_that_climbs_out_is_refused(bucket):
    code, _out, err, _ = job("list", "--bucket", bucket.name, "--prefix", "../..")
    assert code == ExitCode.USAGE and "is not an object prefix" in err

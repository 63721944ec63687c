"""How the job takes its database URL - from the environment or a mounted file, its parameters passed on to
pg_dump and pg_restore or refused - and keeps the password out of everything it prints.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from backup_job import dump
from backup_job.database import Database
from backup_job.errors import ExitCode
from tests.backup_job.jobs import job, one_log_line
from tests.services import postgres_bindir
from tools.offline import ROOT

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


@pytest.mark.parametrize("query, expected", [
    ("keepalives=1", "sets keepalives, which pg_dump and pg_restore could only get on their command line"),
    ("connect_timeout=abc", "connect_timeout must be a whole number of seconds"),
], ids=["keyword-without-env", "bad-timeout"])
def test_url_parameters_are_passed_on_or_refused(bucket, source_url, query, expected):
    code, out, _err, _ = job("backup", "--kind", "full", "--bucket", bucket.name,
                            env={"DATABASE_URL": f"{source_url}?{query}"})
    assert code == ExitCode.USAGE and expected in one_log_line(out)["message"]


def test_every_tls_keyword_reaches_the_children():
    url = ("postgresql://u:pw@db.example:5432/app?sslmode=verify-full&channel_binding=require&sslcrl=/c.pem"
           "&sslsni=1&ssl_min_protocol_version=TLSv1.3&gssencmode=disable&target_session_attrs=read-write")
    env = Database(url).child_env()
    assert {k: env[k] for k in ("PGSSLMODE", "PGCHANNELBINDING", "PGSSLCRL", "PGSSLSNI", "PGSSLMINPROTOCOLVERSION",
                                "PGGSSENCMODE", "PGTARGETSESSIONATTRS")} == {
        "PGSSLMODE": "verify-full", "PGCHANNELBINDING": "require", "PGSSLCRL": "/c.pem", "PGSSLSNI": "1",
        "PGSSLMINPROTOCOLVERSION": "TLSv1.3", "PGGSSENCMODE": "disable", "PGTARGETSESSIONATTRS": "read-write"}


@pytest.mark.parametrize("url", [
    "postgresql://u:Zq9@secret@127.0.0.1:1/app",
    "postgres://app@corp:Zq9@secret@127.0.0.1:1/app?sslmode=disable",
])
def test_a_password_with_an_unencoded_at_sign_never_reaches_the_log_line(url, bucket):
    """libpq would read the password's tail as the host and print it in its error: the job refuses the URL
    first (exit 2), and no fragment of the password is in its JSON line."""

    result = subprocess.run([sys.executable, "-m", "backup_job", "backup", "--kind", "full", "--bucket", bucket.name],
                            cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "DATABASE_URL": url})
    assert result.returncode == ExitCode.USAGE
    log = one_log_line(result.stdout)
    assert "%40" in log["message"]
    assert "Zq9" not in result.stdout + result.stderr and "secret" not in result.stdout + result.stderr


def test_database_url_from_a_mounted_file_and_password_never_shown(bucket, postgres, source_url, tmp_path,
                                                                   monkeypatch):
    secret_file = tmp_path / "database-url"
    secret_file.write_text(source_url + "\n")
    code, out, err, _ = job("backup", "--kind", "schema", "--bucket", bucket.name, "--database-url-file", str(secret_file))
    assert code == 0, out + err
    assert postgres.password not in out + err

    seen: list[list[str]] = []
    original = dump.subprocess.Popen

    def spy(command, **kwargs):
        seen.append(list(command))
        return original(command, **kwargs)

    monkeypatch.setattr(dump.subprocess, "Popen", spy)
    dump.run_backup(Database(source_url), dump.BackupRequest(kind="schema", bucket=bucket.name))
    assert seen and not any(postgres.password in arg or "postgresql://" in arg for arg in seen[0]), seen


def test_bad_password_is_reported_without_the_password(bucket, postgres):
    wrong = postgres.url("app").replace(postgres.password, "not-the-password-xyz")
    code, out, err, _ = job("backup", "--kind", "full", "--bucket", bucket.name, env={"DATABASE_URL": wrong})
    assert code == ExitCode.DATABASE_UNREACHABLE
    assert "not-the-password-xyz" not in out + err


def test_missing_database_url_is_a_usage_error(bucket):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_URL")}
    result = subprocess.run([sys.executable, "-m", "backup_job", "backup", "--kind", "full", "--bucket", bucket.name],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == ExitCode.USAGE and "no database URL" in one_log_line(result.stdout)["message"]

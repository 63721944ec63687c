"""Configuration backups: the ConfigVault on the prod plan, and the DNS zone export against local servers."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
from typing import ClassVar

import pytest

from backup_job.errors import ExitCode
from tests.services import serving
from tools.offline import ROOT, is_secret

SECRET = "gcp:secretmanager/secret:Secret"
VERSION = "gcp:secretmanager/secretVersion:SecretVersion"
SECRET_MEMBER = "gcp:secretmanager/secretIamMember:SecretIamMember"

# ---------------------------------------------------------------- ConfigVault


def _vault(plan) -> dict[str, dict]:
    return {r.inputs["secretId"]: r.inputs for r in plan.of_type(SECRET) if r.name.startswith("config-")}


def test_each_setting_is_a_secret_replicated_to_both_regions_with_cmek(prod_plan):
    vault = _vault(prod_plan)
    assert set(vault) == {"sentry-dsn", "stripe-secret-key", "resend-api-key"}
    for secret_id, secret in vault.items():
        replicas = secret["replication"]["userManaged"]["replicas"]
        assert [r["location"] for r in replicas] == ["us-central1", "europe-west1"], secret_id
        for replica in replicas:
            key = replica["customerManagedEncryption"]["kmsKeyName"]
            assert f"/locations/{replica['location']}/" in key, "a CMEK key must be in the replica's region"
        assert secret["deletionProtection"] is True and secret["labels"]["environment"] == "prod"


def test_secret_values_are_secret_inputs_and_plain_ones_only_where_marked(prod_plan):
    versions = {r.name: r.inputs for r in prod_plan.of_type(VERSION) if r.name.startswith("config-")}
    assert is_secret(versions["config-stripe-secret-key-value"]["secretData"])
    assert is_secret(versions["config-resend-api-key-value"]["secretData"])
    # The provider stores every version as a secret; the plain one is the config's plain value.
    data = versions["config-sentry-dsn-value"]["secretData"]
    assert (data["value"] if is_secret(data) else data) == "https://public@o0.ingest.sentry.io/0"


def test_only_the_named_readers_may_read_the_settings(prod_plan):
    grants = [m.inputs for m in prod_plan.of_type(SECRET_MEMBER) if m.name.startswith("config-")]
    assert len(grants) == 3
    assert {(g["role"], g["member"]) for g in grants} == {
        ("roles/secretmanager.secretAccessor", "serviceAccount:deploy@raptorflow-prod.iam.gserviceaccount.com")}


def test_the_secret_manager_agent_may_use_each_regional_key(prod_plan):
    grants = [r.inputs for r in prod_plan.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
              if r.name.startswith("config-")]
    assert len(grants) == 2
    assert all(g["member"].endswith("@gcp-sa-secretmanager.iam.gserviceaccount.com") for g in grants)


def test_no_vault_value_appears_in_plan_output(run_cli):
    result = run_cli("tools.plan", "prod", "--json")
    assert "c2V0LXdpdGgtcHVsdW1pLWNvbmZpZy1zZXQtLXNlY3JldA" not in result.stdout


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["raptorflow-dr:primary"]["configVault"]["settings"].append({"name": "API_TOKEN", "value": "abc"}),
     "API_TOKEN is secret: its value goes in the secret `configVaultSecrets`"),
], ids=["plain-value-for-a-secret"])
def test_vault_config_errors(run_cli, stack_file, edit, expected):
    result = run_cli("tools.plan", "prod", "--stack-file", str(stack_file("prod", edit)))
    assert result.returncode == 2 and expected in result.stderr and "abc" not in result.stderr


def test_dns_export_is_scheduled_daily_in_the_standby_stack_and_not_paused(dr_plan):
    schedules = {r.inputs["name"]: r.inputs for r in dr_plan.of_type("gcp:cloudscheduler/job:Job")}
    export = schedules["db-backup-dns-export"]
    assert (export["schedule"], export["timeZone"], export["paused"]) == ("0 3 * * *", "UTC", False)
    (job,) = [r.inputs for r in dr_plan.of_type("gcp:cloudrunv2/job:Job") if r.inputs["name"] == "db-backup-dns-export"]
    container = job["template"]["template"]["containers"][0]
    assert container["args"] == ["export-dns", "--zone-id", "9f1c2b3a4d5e6f708192a3b4c5d6e7f8"]
    env = {e["name"]: e["value"] for e in container["envs"]}
    assert env["BACKUP_BUCKET"] == "raptorflow-dr-db-dumps-replica" and env["BACKUP_PREFIX"] == "cloudflare"
    assert env["CLOUDFLARE_API_TOKEN_FILE"].startswith("/secrets/")


# ---------------------------------------------------------------- export-dns against local servers

ZONE = b"""\
;; Domain:     raptorflow.app.
;; Exported:   2026-11-28 03:00:00
$ORIGIN raptorflow.app.
@\t3600\tIN\tSOA\tada.ns.cloudflare.com. dns.cloudflare.com. 2049000000 10000 2400 604800 3600
@\t1\tIN\tA\t203.0.113.10
www\t1\tIN\tCNAME\tus.raptorflow.app.
api\t60\tIN\tCNAME\tapi-us.raptorflow.app.
"""
TOKEN = "cf-test-token-do-not-print"


class _Cloudflare(http.server.BaseHTTPRequestHandler):
    status, body = 200, ZONE
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self):
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(self.status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def cloudflare():
    _Cloudflare.status, _Cloudflare.body, _Cloudflare.seen = 200, ZONE, []
    with serving(_Cloudflare) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/client/v4"
    server.server_close()


def export(bucket, api, *extra, token_file=None):
    env = {**os.environ, "CLOUDFLARE_API_BASE_URL": api}
    if token_file is None:
        env["CLOUDFLARE_API_TOKEN"] = TOKEN
    args = [sys.executable, "-m", "backup_job", "export-dns", "--zone-id", "zone123", "--bucket", bucket.name,
            "--prefix", "cloudflare", *extra]
    if token_file:
        args += ["--api-token-file", str(token_file)]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)


def test_export_stores_the_zone_and_its_manifest(bucket, cloudflare, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    result = export(bucket, cloudflare, token_file=token_file)
    assert result.returncode == 0, result.stdout + result.stderr
    log = json.loads(result.stdout)
    assert _Cloudflare.seen == [("/client/v4/zones/zone123/dns_records/export", f"Bearer {TOKEN}")]
    assert log["object"].startswith("cloudflare/dns/") and log["object"].endswith(".zone")
    assert bucket.blob(log["object"]).download_as_bytes() == ZONE
    manifest = json.loads(bucket.blob(log["object"] + ".manifest.json").download_as_bytes())
    import hashlib

    assert (manifest["kind"], manifest["records"], manifest["sha256"]) == ("dns", 4, hashlib.sha256(ZONE).hexdigest())
    assert TOKEN not in result.stdout + result.stderr
    listing = subprocess.run([sys.executable, "-m", "backup_job", "list", "--bucket", bucket.name, "--prefix",
                              "cloudflare"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert log["object"] in listing.stdout and " dns " in listing.stdout


@pytest.mark.parametrize("status, body, expected", [
    (403, b'{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}', "Cloudflare answered 403"),
    (200, b"", "exported no records"),
    (200, b";; only comments\n$ORIGIN raptorflow.app.\n", "exported no records"),
], ids=["forbidden", "empty-body", "no-records"])
def test_a_failed_or_empty_export_is_an_error_and_stores_nothing(bucket, cloudflare, status, body, expected):
    _Cloudflare.status, _Cloudflare.body = status, body
    result = export(bucket, cloudflare)
    assert result.returncode == ExitCode.EXPORT_FAILED
    log = json.loads(result.stdout)
    assert (log["result"], log["failure"]) == ("failure", "export_failed") and expected in log["message"]
    assert list(bucket.list_blobs()) == []
    assert TOKEN not in result.stdout + result.stderr


def test_no_token_is_a_usage_error(bucket, cloudflare):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_API_TOKEN")}
    env["CLOUDFLARE_API_BASE_URL"] = cloudflare
    result = subprocess.run([sys.executable, "-m", "backup_job", "export-dns", "--zone-id", "z", "--bucket",
                             bucket.name], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == ExitCode.USAGE and "no Cloudflare API token" in result.stdout


def test_no_setting_is_kept_in_two_places_of_config():
    import yaml

    prod = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    dr = yaml.safe_load((ROOT / "Pulumi.dr.yaml").read_text())["config"]
    vault = {s["name"] for s in prod["raptorflow-dr:primary"]["configVault"]["settings"]}
    vercel = set(dr["raptorflow-dr:standby"]["vercel"]["variables"]) | set(dr["raptorflow-dr:standby"]["vercel"]["secretVariables"])
    assert not vault & vercel, f"kept twice: {sorted(vault & vercel)}"

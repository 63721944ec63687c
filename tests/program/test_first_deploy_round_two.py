"""A first `pulumi up` into empty projects, and a rebuild after a teardown, as the APIs and the engine impose:
the image registry before the jobs, a bounded wait for IAM propagation, what a teardown keeps imported again,
and alerts that stay quiet until something is really missing.

Sources: Artifact Registry (docker repositories, cleanup policies: cloud.google.com/artifact-registry/docs/
repositories/cleanup-policy), Cloud Run (a job cannot be created before its image exists), IAM (access change
propagation: cloud.google.com/iam/docs/access-change-propagation), Cloud KMS (key rings are never deleted; a
destroyed key's versions take the data they encrypt), pulumi-gcp import ids (storage.Bucket `{project}/{bucket}`,
kms.KeyRing `projects/{p}/locations/{l}/keyRings/{name}`, artifactregistry.Repository
`projects/{p}/locations/{l}/repositories/{id}`), Cloud Monitoring uptime checks (HttpCheck.headers).
"""

from __future__ import annotations

import re

import pytest

from components import defaults
from tools.offline import Plan, unwrap
from tools.offline_mocks import PLANNED_AT

REPOSITORY = "gcp:artifactregistry/repository:Repository"
REPOSITORY_READER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
RUN_JOB = "gcp:cloudrunv2/job:Job"
SLEEP = "time:index/sleep:Sleep"
BUCKET = "gcp:storage/bucket:Bucket"
TRANSFER = "gcp:storage/transferJob:TransferJob"
KEY_GRANT = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
KEPT_TYPES = {BUCKET, "gcp:kms/keyRing:KeyRing", "gcp:kms/cryptoKey:CryptoKey", REPOSITORY}
SERVING_TYPES = {"cloudflare:index/dnsRecord:DnsRecord",
                 "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"}


@pytest.fixture(params=["prod", "dr"])
def plan(request, make_plan) -> Plan:
    return make_plan(request.param)


def test_each_site_has_its_registry_and_every_job_waits_until_cloud_run_may_pull_from_it(plan):
    (repository,) = plan.of_type(REPOSITORY)
    region = "us-central1" if plan.stack == "prod" else "europe-west1"
    inputs = unwrap(repository.inputs)
    assert (inputs["location"], inputs["format"], inputs["repositoryId"]) == (region, "DOCKER", "raptorflow")
    assert inputs["dockerConfig"] == {"immutableTags": True} and inputs["cleanupPolicyDryRun"] is False
    policies = {p["id"]: p for p in inputs["cleanupPolicies"]}
    untagged_seconds = defaults.IMAGE_UNTAGGED_DELETE_DAYS * defaults.SECONDS_PER_DAY
    assert policies["delete-old-untagged"]["condition"] == {"tagState": "UNTAGGED", "olderThan": f"{untagged_seconds}s"}
    assert policies["keep-recent"]["mostRecentVersions"] == {"keepCount": defaults.IMAGE_KEEP_VERSIONS}
    # Cloud Run pulls as its service agent, not as the job's identity (artifact-registry/docs/integrate-cloud-run).
    (reader,) = plan.of_type(REPOSITORY_READER)
    grant = unwrap(reader.inputs)
    assert grant["role"] == "roles/artifactregistry.reader"
    assert re.fullmatch(r"serviceAccount:service-\d+@serverless-robot-prod\.iam\.gserviceaccount\.com", grant["member"])
    url = f"{region}-docker.pkg.dev/raptorflow-{plan.stack}/raptorflow/"
    jobs = plan.of_type(RUN_JOB)
    assert jobs
    for job in jobs:
        assert unwrap(job.inputs)["template"]["template"]["containers"][0]["image"].startswith(url), job.name
        assert {repository.urn, reader.urn} <= set(job.dependencies), f"{job.name} may be created before it can pull"


@pytest.mark.parametrize("image, said", [
    ("us-central1-docker.pkg.dev/raptorflow-prod/raptorflow/backup-job:1.0.0",
     "is not in this site's repository europe-west1-docker.pkg.dev/raptorflow-dr/raptorflow/"),
    ("europe-west1-docker.pkg.dev/raptorflow-dr/raptorflow/backup-job:latest", "needs a release tag"),
    ("europe-west1-docker.pkg.dev/raptorflow-dr/raptorflow/backup-job@sha256:" + "a" * 64, "needs a release tag"),
    ("europe-west1-docker.pkg.dev/raptorflow-dr/raptorflow/backup-job", "needs a release tag"),
], ids=["other-site", "latest", "digest", "untagged"])
def test_an_image_outside_the_sites_registry_or_without_a_release_tag_is_refused(run_cli, stack_file, image, said):
    path = stack_file("dr", lambda c: c["raptorflow-dr:databaseBackup"].update(image=image))
    result = run_cli("tools.plan", "dr", "--stack-file", str(path))
    assert result.returncode == 2
    assert f"databaseBackup.image '{image}' {said}" in result.stderr


@pytest.mark.parametrize("seconds", [120, 300])
def test_creates_that_check_a_grant_at_once_wait_for_it_to_propagate(make_plan, seconds):
    for stack in ("prod", "dr"):
        plan = make_plan(stack, f"raptorflow-dr:deploy.iamPropagationSeconds={seconds}")
        by_urn = {r.urn: r for r in plan.resources}
        waiting = [r for r in plan.resources if r.type == BUCKET or (r.type == TRANSFER)]
        assert waiting
        for resource in waiting:
            (sleep,) = [by_urn[u] for u in resource.dependencies if by_urn.get(u) and by_urn[u].type == SLEEP]
            assert sleep.inputs["createDuration"] == f"{seconds}s"
            grants = set(sleep.dependencies)
            assert grants <= set(resource.dependencies), "the grants stay direct dependencies too"
            assert len(sleep.inputs["triggers"]) == len(grants), "a replaced grant waits again"
            if resource.type == BUCKET:
                assert {by_urn[g].type for g in grants} == {KEY_GRANT}
            else:
                assert all("IAMMember" in by_urn[g].type for g in grants)


def test_no_wait_when_propagation_is_set_to_zero(make_plan):
    plan = make_plan("dr", "raptorflow-dr:deploy.iamPropagationSeconds=0")
    assert plan.of_type(SLEEP) == []


def _import_id(resource) -> str:
    """The id pulumi-gcp imports each kept type by, from the resource's own inputs."""
    inputs = unwrap(resource.inputs)
    if resource.type == BUCKET:
        return f"{inputs['project']}/{inputs['name']}"
    if resource.type == "gcp:kms/keyRing:KeyRing":
        return f"projects/{inputs['project']}/locations/{inputs['location']}/keyRings/{inputs['name']}"
    if resource.type == "gcp:kms/cryptoKey:CryptoKey":
        return f"{inputs['keyRing']}/cryptoKeys/{inputs['name']}"
    return f"projects/{inputs['project']}/locations/{inputs['location']}/repositories/{inputs['repositoryId']}"


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_a_teardown_keeps_what_cannot_be_recreated_and_a_rebuild_imports_it(make_plan, stack):
    normal, rebuild = make_plan(stack), make_plan(stack, "raptorflow-dr:deploy.rebuild=true")
    kept = {r.name for r in normal.resources if r.retain_on_delete}
    serving = {r.name for r in normal.resources if r.type in SERVING_TYPES}
    assert kept == {r.name for r in normal.resources if r.type in KEPT_TYPES} | serving, \
        "retained exactly: data, keys, images, and the DNS records and env vars production is served by"
    assert all(r.protect for r in normal.resources if r.retain_on_delete and r.type in KEPT_TYPES)
    assert bool(serving) == (stack == "dr")
    assert not [r.name for r in normal.resources if r.import_id and r.type in KEPT_TYPES]
    imported = {r.name: r.import_id for r in rebuild.resources if r.type in KEPT_TYPES}
    assert imported == {r.name: _import_id(r) for r in rebuild.resources if r.type in KEPT_TYPES}
    assert len(imported) >= (4 if stack == "prod" else 7)


def test_the_teardown_run_lifts_deletion_protection_and_the_pack_refuses_it(run_cli):
    result = run_cli("tools.plan", "prod", "--set", "raptorflow-dr:deploy.teardown=true")
    assert result.returncode == 1, "the policy gate must refuse a teardown config in a pull request"
    assert "[mandatory] raptorflow-run-jobs-protected" in result.stdout
    assert "[mandatory] raptorflow-secretmanager-secrets-kept" in result.stdout


def _due(query: str) -> int | None:
    found = re.search(r"vector\(time\(\)\) > (\d+)\)$", query)
    return int(found[1]) if found else None


def test_a_fresh_deploy_does_not_page_for_a_backup_or_copy_not_yet_due(make_plan):
    created = 1767225600  # PLANNED_AT, the creation time the offline plan gives every job
    assert PLANNED_AT == "2026-01-01T00:00:00Z"
    checked = 0
    for stack in ("prod", "dr"):
        for alert in make_plan(stack).of_type("gcp:monitoring/alertPolicy:AlertPolicy"):
            kind = unwrap(alert.inputs)["userLabels"]["raptorflow-alert"]
            if kind not in ("backup-age", "transfer-behind"):
                continue
            query = unwrap(alert.inputs)["conditions"][0]["conditionPrometheusQueryLanguage"]["query"]
            window = re.search(r"\[(\d+)h\]", query)
            assert window is not None
            window_hours = int(window[1])
            assert _due(query) == created + window_hours * 3600, f"{alert.name}: quiet until its first run is late"
            checked += 1
    assert checked == 7, "full and schema on both sites, the DNS export and the two replicas"


def test_uptime_checks_of_bare_addresses_send_the_public_name_as_host(dr_plan):
    checks = {r.name: unwrap(r.inputs) for r in dr_plan.of_type("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig")}
    for site in ("primary", "standby"):
        apex = checks[f"monitoring-check-apex-{site}"]
        assert apex["monitoredResource"]["labels"]["host"] in ("203.0.113.10", "198.51.100.10")
        assert apex["httpCheck"]["headers"] == {"Host": "raptorflow.app"}, "a name-based origin needs its name"
        assert "headers" not in checks[f"monitoring-check-app-{site}"]["httpCheck"], "a CNAME target is a name"

"""What the engine and the APIs impose on a first `pulumi up` into empty projects, checked on the recorded plan:
the dependency graph (each resource waits for what its API needs first) and the values the APIs accept.

Sources: Cloud Run (secrets must exist and be readable when a job is created; CPU/memory table:
cloud.google.com/run/docs/configuring/jobs/cpu), Cloud Monitoring (PromQL on a metric with no data needs
disable_metric_validation; an alert on a log-based metric needs the metric), Cloud KMS CMEK (the service agent
needs encrypter/decrypter before a bucket uses the key), Service Usage (APIs are off on a fresh project),
Storage Transfer (sink-cloud-storage, cross-bucket-replication), Cloudflare DNS and Vercel (existing records and
variables must be imported: pulumi-cloudflare `<zone_id>/<record_id>`, pulumiverse-vercel `[team/]project/env`).
"""

from __future__ import annotations

import re

import pytest

from components.bucket_replica import SOURCE_NOTIFIER_PERMISSIONS
from components.project_apis import SERVICE_TYPE, api_of
from policies.raptorflow_policies.rules.iam_no_broad_roles import CUSTOM_ROLE_PERMISSIONS
from tools.offline import Plan, unwrap

RUN_JOB = "gcp:cloudrunv2/job:Job"
ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
METRIC = "gcp:logging/metric:Metric"
BUCKET = "gcp:storage/bucket:Bucket"
KEY_GRANT = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
TRANSFER = "gcp:storage/transferJob:TransferJob"


def closure(plan: Plan, urn: str) -> set[str]:
    """Every URN the engine creates before `urn` (its dependencies, transitively)."""
    by_urn = {r.urn: r for r in plan.resources}
    seen: set[str] = set()
    todo = list(by_urn[urn].dependencies)
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(by_urn[current].dependencies if current in by_urn else ())
    return seen


@pytest.fixture(params=["prod", "dr"])
def plan(request, make_plan) -> Plan:
    return make_plan(request.param)


def test_every_google_resource_waits_for_its_api(plan):
    services = {unwrap(r.inputs)["service"]: r.urn for r in plan.of_type(SERVICE_TYPE)}
    checked = 0
    for resource in plan.resources:
        api = api_of(resource.type)
        if api is None or not resource.custom:
            continue
        assert api in services, f"{resource.name} needs {api}, which the stack never enables"
        assert services[api] in closure(plan, resource.urn), f"{resource.name} may be created before {api} is on"
        checked += 1
    assert checked > 50, "the check saw the program's resources"


def test_apis_stay_on_when_the_stack_is_destroyed(plan):
    for service in plan.of_type(SERVICE_TYPE):
        assert service.inputs["disableOnDestroy"] is False, f"{service.name} would disable a shared API"
        assert service.inputs["disableDependentServices"] is False


def test_a_job_waits_for_the_secret_version_and_grant_it_mounts(plan):
    by_secret: dict[str, set[str]] = {}
    for resource in plan.resources:
        if resource.type in ("gcp:secretmanager/secretVersion:SecretVersion",
                             "gcp:secretmanager/secretIamMember:SecretIamMember"):
            by_secret.setdefault(resource.name.rsplit("-", 1)[0], set()).add(resource.urn)
    for job in plan.of_type(RUN_JOB):
        secret_id = job.inputs["template"]["template"]["volumes"][0]["secret"]["secret"]
        needed = by_secret[secret_id]
        assert len(needed) == 2 and needed <= closure(plan, job.urn), (
            f"{job.name} may be created before {secret_id}'s version and accessor grant exist")


def test_cmek_buckets_wait_for_their_key_grant(plan):
    grants = {r.inputs["cryptoKeyId"]: r.urn for r in plan.of_type(KEY_GRANT)}
    buckets = plan.of_type(BUCKET)
    assert buckets
    for bucket in buckets:
        key = bucket.inputs["encryption"]["defaultKmsKeyName"]
        assert grants[key] in closure(plan, bucket.urn), f"{bucket.name} may use {key} before the agent may"


def test_alerts_on_log_based_metrics_wait_for_the_metric_and_skip_validation(plan):
    metrics = {r.inputs["name"]: r.urn for r in plan.of_type(METRIC)}
    checked = 0
    for alert in plan.of_type(ALERT):
        for condition in alert.inputs["conditions"]:
            promql = condition.get("conditionPrometheusQueryLanguage")
            if promql is None:
                continue
            for metric in re.findall(r"logging_googleapis_com:user_(\w+)", promql["query"]):
                assert metrics[metric] in alert.dependencies, f"{alert.name} may be created before {metric}"
                assert promql["disableMetricValidation"] is True, f"{alert.name}: {metric} has no data yet"
                checked += 1
    assert checked >= 2


def test_replication_waits_for_every_grant_it_needs(dr_plan, prod_plan):
    project_grants = {(r.inputs["role"], r.inputs["member"]) for r in dr_plan.of_type(
        "gcp:projects/iAMMember:IAMMember")}
    assert ("roles/storagetransfer.serviceAgent",
            dr_plan.named("db-dumps-replica-source-notifier").inputs["member"]) in project_grants
    publisher = [member for role, member in project_grants if role == "roles/pubsub.publisher"]
    assert publisher == ["serviceAccount:service-" + publisher[0].split("-", 1)[1]]
    assert "@gs-project-accounts.iam.gserviceaccount.com" in publisher[0]
    for job in dr_plan.of_type(TRANSFER):
        if "replicationSpec" not in job.inputs:
            continue
        replica = job.name.removesuffix("-replication")
        needed = {dr_plan.named(name).urn for name in (
            f"{replica}-source-notifier", "replication-access-agent-topics", "replication-access-source-publisher",
            f"{replica}-sink-objectviewer")}
        assert needed <= set(job.dependencies), f"{job.name} may start before it can set up notifications"


def test_dr_reads_prods_storage_agent_from_prods_outputs_and_looks_up_nothing_in_prod(monkeypatch, prod_plan):
    # get_project_service_account on prod's project from the dr stack needs resourcemanager.projects.get on prod,
    # which the dr identity lacks (https://cloud.google.com/storage/docs/projects#service-agents): prod exports it.
    import tools.offline as offline
    import tools.offline_mocks as mocks

    asked: list[tuple[str, str | None]] = []
    answer = mocks._invoke_result

    def recording(token, args):
        asked.append((token.rsplit(":", 1)[-1], args.get("project")))
        return answer(token, args)

    monkeypatch.setattr(mocks, "_invoke_result", recording)
    dr = offline.plan_stack("dr", ("raptorflow-dr:labels.team=adoption",), as_filed={"prod": prod_plan})
    assert asked and {project for _, project in asked} == {"raptorflow-dr"}, asked
    agent = prod_plan.outputs["storageServiceAgent"]
    assert agent.endswith("@gs-project-accounts.iam.gserviceaccount.com")
    publisher = dr.named("replication-access-source-publisher").inputs
    assert (publisher["role"], publisher["member"]) == ("roles/pubsub.publisher", f"serviceAccount:{agent}")


def test_the_notifier_role_is_the_least_that_sets_up_notifications(prod_plan):
    role = prod_plan.named("transfer-source-notifier").inputs
    assert tuple(role["permissions"]) == SOURCE_NOTIFIER_PERMISSIONS == CUSTOM_ROLE_PERMISSIONS


def test_both_transfer_jobs_of_a_replica_are_watched(dr_plan):
    jobs = {r.name: r for r in dr_plan.of_type(TRANSFER)}
    ids = {name: f"transferJobs/{__import__('hashlib').sha256(name.encode()).hexdigest()[:20]}" for name in jobs}
    for replica, slug in (("db-dumps-replica", "db-dumps"), ("user-files-replica", "user-files")):
        daily, events = ids[f"{replica}-transfer"], ids[f"{replica}-replication"]
        behind = dr_plan.named(f"monitoring-transfer-{slug}-behind").inputs
        query = behind["conditions"][0]["conditionPrometheusQueryLanguage"]["query"]
        assert f'job_id=~"{daily}|{events}"' in query, "copies by either job keep the replica current"
        failed = dr_plan.named(f"monitoring-transfer-{slug}-failed").inputs
        assert f'"{daily}" OR "{events}"' in failed["conditions"][0]["conditionMatchedLog"]["filter"]


@pytest.mark.parametrize("cpu, memory, message", [
    ("3", 2048, "Input should be '1', '2', '4', '6' or '8'"),
    ("4", 1024, "memoryMib 1024 does not fit cpu 4: Cloud Run jobs with 4 vCPU take 2048-16384 MiB"),
    ("6", 2048, "memoryMib 2048 does not fit cpu 6: Cloud Run jobs with 6 vCPU take 4096-24576 MiB"),
    ("1", 8192, "memoryMib 8192 does not fit cpu 1: Cloud Run jobs with 1 vCPU take 512-4096 MiB"),
], ids=["cpu-3", "cpu-4-small", "cpu-6-small", "cpu-1-large"])
def test_cloud_run_sizes_are_what_the_api_accepts(cpu, memory, message):
    from components.config import DatabaseBackupSettings

    with pytest.raises(ValueError, match=re.escape(message)):
        DatabaseBackupSettings(image="img", cpu=cpu, memory_mib=memory)
    assert DatabaseBackupSettings(image="img", cpu="4", memory_mib=2048).cpu == "4"


def test_pre_deploy_runners_may_run_the_backup_jobs_and_wait_for_them_and_nothing_more(prod_plan):
    # `gcloud run jobs execute --wait` polls the execution it started: run.executions.get, which
    # roles/run.jobsExecutorWithOverrides lacks (https://cloud.google.com/run/docs/reference/iam/roles).
    runner = "serviceAccount:deploy@raptorflow-prod.iam.gserviceaccount.com"
    role = prod_plan.named("db-backup-run-watcher")
    assert role.inputs["permissions"] == ["run.executions.get", "run.executions.list"]
    watch_role = f"projects/raptorflow-prod/roles/{role.inputs['roleId']}"
    grants = [r.inputs for r in prod_plan.of_type("gcp:cloudrunv2/jobIamMember:JobIamMember")
              if r.inputs["member"] == runner]
    assert sorted((g["name"], g["role"]) for g in grants) == [
        ("db-backup-full", watch_role), ("db-backup-full", "roles/run.jobsExecutorWithOverrides"),
        ("db-backup-schema", watch_role), ("db-backup-schema", "roles/run.jobsExecutorWithOverrides"),
    ]


@pytest.mark.parametrize("generation", [1, 2])
def test_custom_role_ids_carry_the_build_generation_so_a_rebuild_never_reuses_one(make_plan, generation):
    # A deleted custom role's id stays taken for 7-37 days (cloud.google.com/iam/docs/creating-custom-roles).
    prod = make_plan("prod", f"raptorflow-dr:deploy.generation={generation}")
    ids = sorted(r.inputs["roleId"] for r in prod.of_type("gcp:projects/iAMCustomRole:IAMCustomRole"))
    assert ids == [f"raptorflowBackupRunWatcherG{generation}", f"raptorflowTransferSourceNotifierG{generation}"]
    assert prod.outputs["transferSourceNotifierRole"].endswith(f"/roles/raptorflowTransferSourceNotifierG{generation}")


def test_existing_dns_records_and_vercel_vars_are_adopted_not_created(make_plan):
    record_id, env_id = "0123456789abcdef0123456789abcdef", "FdT2e1E5Of6Cihmt"
    plan = make_plan("dr", f"raptorflow-dr:standby.failover.hostnames[0].existingRecordId={record_id}",
                     f"raptorflow-dr:standby.vercel.existingEnvIds.REGION={env_id}")
    assert plan.named("dns-apex-record").import_id == f"9f1c2b3a4d5e6f708192a3b4c5d6e7f8/{record_id}"
    assert plan.named("vercel-env-region").import_id == f"team_raptorflow0001/prj_raptorflowweb0001/{env_id}"
    assert plan.named("dns-www-record").import_id is None, "only names with an id are imported"

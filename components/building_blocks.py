"""Building blocks several components compose: a key ring with a rotating key that a service agent may use,
a Secret Manager secret with its value and readers, and a Cloud Run job started on a schedule.

They create plain resources under the component that calls them (they are not components themselves), so a
component built from them keeps its resources' names and URNs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp
import pulumiverse_time as time

from core.contracts import JobRun, run_job_uri

from . import defaults

ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
SECRET_MOUNT_DIRECTORY = "/secrets"
SCHEDULER_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def adoption_options(parent: pulumi.Resource, import_id: str | None, adopting: bool,
                     mutable: Sequence[str]) -> pulumi.ResourceOptions:
    """Options of a resource that may already exist outside the stack: imported by `import_id` when set.

    Pulumi CLIs before the import-then-update change (pulumi/pulumi#19339) import only when the program's inputs
    equal the live resource's ("inputs to import do not match the existing resource"), after copying each
    `ignore_changes` input from the live resource (Pulumi's import design notes,
    developer-docs/architecture/import.md); newer ones import and then update in the same run. So on the
    adopting run (`deploy.adopting`, set by `tools.adopt`) the `mutable` inputs - what the program sets
    differently from a hand-made resource - are ignored: the import matches on either CLI and that run changes
    nothing live; the next, normal run updates them in place. Once the resource is in the state the import id
    is ignored, and without `adopting` nothing is ignored.
    """
    ignored = list(mutable) if adopting and import_id else None
    # What production is served by (a DNS record, an env var of the live app) outlives the stack: `pulumi destroy`
    # or a name dropped from the config forgets it and leaves it serving; a rebuild adopts it again.
    return pulumi.ResourceOptions(parent=parent, import_=import_id, ignore_changes=ignored, retain_on_delete=True)


def kept(parent: pulumi.Resource, import_id: str, rebuild: bool,
         depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
    """Options of what a teardown keeps (backups, their keys, the image registry): protected, and retained on
    delete, so `pulumi destroy` leaves it in the cloud; a rebuild (`deploy.rebuild`) imports it by `import_id`
    instead of failing to create what already exists."""
    return pulumi.ResourceOptions(parent=parent, protect=True, retain_on_delete=True,
                                  import_=import_id if rebuild else None, depends_on=list(depends_on) or None)


def propagated(parent: pulumi.Resource, name: str, grants: Sequence[pulumi.CustomResource],
               seconds: int) -> list[pulumi.Resource]:
    """What a create that checks `grants` at once must wait for: the grants, then `seconds` for them to reach
    every Google service (https://cloud.google.com/iam/docs/access-change-propagation).

    Cloud Storage checks the key grant when it creates a CMEK bucket and Storage Transfer checks bucket access when
    it creates a job; neither error is retried by the provider, and creation order alone does not wait for
    propagation. pulumiverse-time's Sleep is the maintained way to wait in a plan: it waits on create, and again
    when a grant is replaced (its `triggers` are the grants' ids), never on an update that changes nothing."""
    if not grants or seconds == 0:
        return list(grants)
    wait = time.Sleep(
        name, create_duration=f"{seconds}s", triggers={f"grant-{i}": g.id for i, g in enumerate(grants)},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(grants)),
    )
    return [*grants, wait]


def days_to_seconds(days: int) -> int:
    """The one place where config days become the seconds Google's APIs take."""
    return days * defaults.SECONDS_PER_DAY


@dataclass(frozen=True)
class RotatingKey:
    """A key ring and a key that rotates, usable by one service agent."""

    key: gcp.kms.CryptoKey
    agent_grant: gcp.kms.CryptoKeyIAMMember
    """What must exist before the agent can encrypt with the key."""


def rotating_key(
    parent: pulumi.Resource, prefix: str, *, ring_name: str, key_name: str, grant_name: str, project: str,
    location: str, rotation_days: int, labels: dict[str, str], agent_member: pulumi.Input[str],
    rebuild: bool = False,
) -> RotatingKey:
    """Key ring `<prefix>-keyring` and key `<prefix>-key`, rotating every `rotation_days`, and the agent's
    encrypter/decrypter grant `grant_name`.

    Both are protected and retained on delete: Cloud KMS never deletes a key ring, and destroying a key would
    destroy its versions and with them every backup they encrypt (pulumi-gcp kms.KeyRing and kms.CryptoKey
    docs). A `rebuild` imports them by their ids instead of creating them again."""
    ring_id = f"projects/{project}/locations/{location}/keyRings/{ring_name}"
    ring = gcp.kms.KeyRing(f"{prefix}-keyring", name=ring_name, project=project, location=location,
                           opts=kept(parent, ring_id, rebuild))
    key = gcp.kms.CryptoKey(
        f"{prefix}-key", name=key_name, key_ring=ring.id, purpose="ENCRYPT_DECRYPT",
        rotation_period=f"{days_to_seconds(rotation_days)}s", labels=labels,
        opts=kept(parent, f"{ring_id}/cryptoKeys/{key_name}", rebuild),
    )
    grant = gcp.kms.CryptoKeyIAMMember(
        grant_name, crypto_key_id=key.id, role=ENCRYPTER_DECRYPTER, member=agent_member,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return RotatingKey(key, grant)


@dataclass(frozen=True)
class ReadableSecret:
    """A Secret Manager secret, and what must exist before a reader can use it."""

    secret: gcp.secretmanager.Secret
    ready: tuple[pulumi.Resource, ...]
    """The secret's version and its accessor grants (Cloud Run resolves a mounted version at create time)."""


def readable_secret(
    parent: pulumi.Resource, name: str, *, secret_id: str, project: str,
    replicas: Sequence[gcp.secretmanager.SecretReplicationUserManagedReplicaArgs], value: pulumi.Input[str],
    readers: Sequence[tuple[str, pulumi.Input[str]]], labels: dict[str, str],
    depends_on: Sequence[pulumi.Resource] = (), aliases: Sequence[pulumi.Alias] = (),
    deletion_protection: bool = True,
) -> ReadableSecret:
    """Secret `name` (deletion-protected, user-managed replicas), version `<name>-value` holding `value` (wrap
    it in `pulumi.Output.secret` unless it is a plain setting), and an accessor grant per `(resource name,
    member)` of `readers`. `aliases` apply to each (resources moved here from another component)."""
    child = pulumi.ResourceOptions(parent=parent, aliases=list(aliases))
    secret = gcp.secretmanager.Secret(
        name, secret_id=secret_id, project=project,
        replication=gcp.secretmanager.SecretReplicationArgs(
            user_managed=gcp.secretmanager.SecretReplicationUserManagedArgs(replicas=list(replicas))
        ),
        deletion_protection=deletion_protection, labels=labels,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on) or None, aliases=list(aliases)),
    )
    # A new value replaces the version (create before delete: `latest` resolves to the new one first); the old one
    # is then disabled, not destroyed - kept, as the plan keeps config versioned, and re-enabled if the new value is
    # wrong, as Google advises before destroying one
    # (https://cloud.google.com/secret-manager/docs/destroy-secret-version;
    # https://www.pulumi.com/registry/packages/gcp/api-docs/secretmanager/secretversion/#deletion_policy_python).
    version = gcp.secretmanager.SecretVersion(f"{name}-value", secret=secret.id, secret_data=value,
                                              deletion_policy="DISABLE", opts=child)
    grants = [
        gcp.secretmanager.SecretIamMember(grant_name, secret_id=secret.id, project=project, role=SECRET_ACCESSOR,
                                          member=member, opts=child)
        for grant_name, member in readers
    ]
    return ReadableSecret(secret, (version, *grants))


@dataclass(frozen=True)
class JobSpec:
    """What one scheduled Cloud Run job runs, as whom, with which mounted secret, and when."""

    role: str
    """Names the job `<prefix>-<role>`, its schedule and its grants."""
    run: JobRun
    """What the backup job is told to do: the job's arguments and the labels that say what it runs."""
    identity: gcp.serviceaccount.Account
    secret: ReadableSecret
    secret_env: str
    """The env var that holds the mounted secret's path."""
    env: dict[str, pulumi.Input[str]]
    timeout_seconds: int
    cron: str
    paused: bool
    runners: Sequence[str] = ()
    """Principals that may also run the job with overridden args."""


@dataclass(frozen=True)
class JobRuntime:
    """What every job of a component shares: where, which image and size, who starts them and how."""

    project: str
    region: str
    image: str
    cpu: str
    memory_mib: int
    retries: int
    attempt_deadline_seconds: int
    scheduler_retry_count: int
    scheduler: gcp.serviceaccount.Account
    labels: dict[str, str]
    runner_watch_role: pulumi.Input[str] | None = None
    """The custom role that lets a manual runner follow the execution it started (`projects/P/roles/ID`)."""
    deletion_protection: bool = True
    """Off only for the teardown run before `pulumi destroy` (`deploy.teardown`)."""
    image_ready: Sequence[pulumi.Resource] = ()
    """What must exist before a job can be created with the image: its repository and the readers' grants."""


# Runs a job with overridden args (run.jobs.run + run.jobs.runWithOverrides), nothing else:
# https://cloud.google.com/run/docs/reference/iam/roles ("Cloud Run Jobs Executor With Overrides").
MANUAL_RUN_ROLE = "roles/run.jobsExecutorWithOverrides"


def scheduled_job(parent: pulumi.Resource, prefix: str, runtime: JobRuntime, spec: JobSpec,
                  aliases: Sequence[pulumi.Alias] = ()) -> gcp.cloudrunv2.Job:
    """A Cloud Run job with the secret mounted as a file, the scheduler's invoker grant, and a Cloud Scheduler
    job that starts it through the Run Admin API (`.../jobs/JOB:run`) on `spec.cron` (UTC)."""
    child = pulumi.ResourceOptions(parent=parent, aliases=list(aliases))
    volume = "secret"
    name = f"{prefix}-{spec.role}"
    envs = {**spec.env, spec.secret_env: f"{SECRET_MOUNT_DIRECTORY}/{volume}/value"}
    job = gcp.cloudrunv2.Job(
        name,
        name=name,
        project=runtime.project,
        location=runtime.region,
        deletion_protection=runtime.deletion_protection,
        labels={**runtime.labels, **spec.run.labels},
        template=gcp.cloudrunv2.JobTemplateArgs(
            task_count=1,
            template=gcp.cloudrunv2.JobTemplateTemplateArgs(
                service_account=spec.identity.email,
                timeout=f"{spec.timeout_seconds}s",
                max_retries=runtime.retries,
                containers=[gcp.cloudrunv2.JobTemplateTemplateContainerArgs(
                    image=runtime.image,
                    args=spec.run.argv,
                    envs=[gcp.cloudrunv2.JobTemplateTemplateContainerEnvArgs(name=key, value=value)
                          for key, value in envs.items()],
                    resources=gcp.cloudrunv2.JobTemplateTemplateContainerResourcesArgs(
                        limits={"cpu": runtime.cpu, "memory": f"{runtime.memory_mib}Mi"}
                    ),
                    volume_mounts=[gcp.cloudrunv2.JobTemplateTemplateContainerVolumeMountArgs(
                        name=volume, mount_path=f"{SECRET_MOUNT_DIRECTORY}/{volume}"
                    )],
                )],
                volumes=[gcp.cloudrunv2.JobTemplateTemplateVolumeArgs(
                    name=volume,
                    secret=gcp.cloudrunv2.JobTemplateTemplateVolumeSecretArgs(
                        secret=spec.secret.secret.secret_id,
                        items=[gcp.cloudrunv2.JobTemplateTemplateVolumeSecretItemArgs(path="value", version="latest")],
                    ),
                )],
            ),
        ),
        # Cloud Run resolves the mounted version at create time: "Secret .../versions/latest was not found"
        # or permission denied unless the version and the accessor grant exist first.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*spec.secret.ready, *runtime.image_ready],
                                    aliases=list(aliases)),
    )
    may_run = gcp.cloudrunv2.JobIamMember(
        f"{name}-scheduler-may-run", name=job.name, project=runtime.project, location=runtime.region,
        role="roles/run.invoker", member=runtime.scheduler.member, opts=child,
    )
    gcp.cloudscheduler.Job(
        f"{name}-schedule",
        name=name,
        project=runtime.project,
        region=runtime.region,
        description=f"Starts {spec.role} ({spec.cron} {defaults.SCHEDULE_TIME_ZONE})",
        schedule=spec.cron,
        time_zone=defaults.SCHEDULE_TIME_ZONE,
        paused=spec.paused,
        attempt_deadline=f"{runtime.attempt_deadline_seconds}s",
        retry_config=gcp.cloudscheduler.JobRetryConfigArgs(
            retry_count=runtime.scheduler_retry_count, min_backoff_duration="30s", max_backoff_duration="600s",
            max_doublings=4,
        ),
        http_target=gcp.cloudscheduler.JobHttpTargetArgs(
            http_method="POST",
            uri=job.name.apply(lambda job_name: run_job_uri(runtime.project, runtime.region, job_name)),
            oauth_token=gcp.cloudscheduler.JobHttpTargetOauthTokenArgs(
                service_account_email=runtime.scheduler.email, scope=SCHEDULER_SCOPE
            ),
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[may_run], aliases=list(aliases)),
    )
    for index, member in enumerate(spec.runners):
        gcp.cloudrunv2.JobIamMember(
            f"{name}-manual-runner-{index}", name=job.name, project=runtime.project, location=runtime.region,
            role=MANUAL_RUN_ROLE, member=member, opts=child,
        )
        if runtime.runner_watch_role is not None:
            gcp.cloudrunv2.JobIamMember(
                f"{name}-manual-runner-{index}-watch", name=job.name, project=runtime.project,
                location=runtime.region, role=runtime.runner_watch_role, member=member, opts=child,
            )
    return job

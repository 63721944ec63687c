"""The Secret Manager part of `python -m tools.rotate`: once the new secret versions are in use, disable the
old ones.

`pulumi up` replaces a `gcp.secretmanager.SecretVersion` whose `secret_data` changed: it adds a version, and what
becomes of the old one is the resource's `deletion_policy` (`DELETE`, pulumi-gcp's default, destroys it;
`DISABLE`, what the stacks declare (components/building_blocks.py, held by the policy pack), disables it;
`ABANDON` leaves it enabled; https://www.pulumi.com/registry/packages/gcp/api-docs/secretmanager/secretversion/).
Whatever the policy, an old version still ENABLED after the rotation (one added by hand, say) is disabled here -
not destroyed: a disabled version can be enabled again if a reader turns out to need it, and it stays as
evidence for the incident. The stacks' Cloud Run jobs mount version `latest`, so the newest version is the one
in use.

REST calls (https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets.versions):
`GET v1/projects/P/secrets/S/versions` (newest first, page by page with `pageSize` and `nextPageToken`;
https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets.versions/list) and
`POST v1/projects/P/secrets/S/versions/V:disable`
(https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets.versions/disable). The token is
$GOOGLE_OAUTH_ACCESS_TOKEN, else `gcloud auth print-access-token`; $SECRET_MANAGER_API_URL replaces
https://secretmanager.googleapis.com for a stand-in (tests, drills; plain http only to the loopback address).
"""

from __future__ import annotations

import os
import subprocess
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tools.vercel_deploy import VercelApi, VercelError, checked_url

DEFAULT_API_URL = "https://secretmanager.googleapis.com"
URL_VARIABLE = "SECRET_MANAGER_API_URL"
TOKEN_VARIABLE = "GOOGLE_OAUTH_ACCESS_TOKEN"
GCLOUD_TIMEOUT_SECONDS = 30
PAGE_SIZE = 1000
"""Versions asked for per page: well within the client's response limit (the API allows up to 25000)."""


class VersionsError(Exception):
    """A Secret Manager call failed; one line, no token."""


@dataclass(frozen=True)
class SecretRef:
    """A Secret Manager secret of a stack."""

    project: str
    secret_id: str

    @property
    def name(self) -> str:
        """Its resource name."""
        return f"projects/{self.project}/secrets/{self.secret_id}"


def access_token(environ: Mapping[str, str] = os.environ) -> str:
    """$GOOGLE_OAUTH_ACCESS_TOKEN, else gcloud's; VersionsError when there is neither."""
    if environ.get(TOKEN_VARIABLE):
        return environ[TOKEN_VARIABLE]
    try:
        result = subprocess.run(["gcloud", "auth", "print-access-token"], capture_output=True, text=True,
                                timeout=GCLOUD_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        result = None
    if result is None or result.returncode != 0 or not result.stdout.strip():
        raise VersionsError(f"no Google access token: set {TOKEN_VARIABLE} or log in with `gcloud auth login`")
    return result.stdout.strip()


def api(environ: Mapping[str, str] = os.environ) -> VercelApi:
    """A JSON API client for Secret Manager (the bearer-token client the Vercel calls use)."""
    try:
        base = checked_url(URL_VARIABLE, DEFAULT_API_URL, environ)
    except VercelError as exc:
        raise VersionsError(str(exc)) from None
    return VercelApi(access_token(environ), None, base, label="Secret Manager")


def disable_old(client: VercelApi, secret: SecretRef) -> list[str]:
    """Disable every ENABLED version of `secret` but the newest; the names of those disabled."""
    path = f"/v1/{urllib.parse.quote(secret.name)}/versions"
    try:
        versions: list[object] = []
        query = {"pageSize": str(PAGE_SIZE)}
        while True:
            page = client.call("GET", path, query=query)
            versions += page.get("versions") or []
            if not page.get("nextPageToken"):
                break
            query = {**query, "pageToken": str(page["nextPageToken"])}
        enabled = [str(v["name"]) for v in versions if isinstance(v, dict) and v.get("state") == "ENABLED"]
        newest = max(enabled, key=lambda name: int(name.rsplit("/", 1)[1]), default=None)
        disabled = []
        for name in enabled:
            if name != newest:
                client.call("POST", f"/v1/{urllib.parse.quote(name)}:disable", body={})
                disabled.append(name)
        return disabled
    except VercelError as exc:
        raise VersionsError(str(exc)) from None
    except (KeyError, ValueError, IndexError):
        raise VersionsError(f"Secret Manager listed versions of {secret.name} in an unexpected shape") from None


def secrets_of(resources: Iterable[tuple[str, Mapping[str, object]]]) -> list[SecretRef]:
    """The Secret Manager secrets among a plan's (type, inputs)."""
    from core.resource_types import ResourceType

    return sorted({SecretRef(str(inputs.get("project")), str(inputs.get("secretId")))
                   for kind, inputs in resources if kind == ResourceType.SECRET},
                  key=lambda ref: ref.name)


def disable_all(client: VercelApi, resources: Iterable[tuple[str, Mapping[str, object]]]) -> list[str]:
    """`disable_old` for every Secret Manager secret among a plan's (type, inputs); the versions disabled."""
    return [name for secret in secrets_of(resources) for name in disable_old(client, secret)]

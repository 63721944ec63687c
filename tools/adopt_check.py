"""Before an adoption: each id the stack config gives is the record or variable it is declared for.

A Pulumi CLI since pulumi/pulumi#19339 imports a resource and then updates it to the program's inputs in the
same run, instead of refusing one that differs. So an `existingRecordId` copied from the wrong line would rename
or retype an unrelated record, and a wrong `existingEnvIds` entry would overwrite another production variable.
`tools.adopt` therefore reads each one first, read-only:

- Cloudflare: `GET /zones/ZONE/dns_records/ID` (https://developers.cloudflare.com/api/resources/dns/subresources/
  records/methods/get/): its `result.name` and `result.type` must be the hostname's and its record type;
- Vercel: `GET /v1/projects/PROJECT/env/ID` (https://vercel.com/docs/rest-api/projects/retrieve-the-decrypted-
  value-of-an-environment-variable-of-a-project-by-id): its `key` must be the variable's.

Tokens: `CLOUDFLARE_API_TOKEN`, else the stack's `cloudflare:apiToken`; `VERCEL_TOKEN`, else `vercel:apiToken`
(read through the Automation API, never printed). `CLOUDFLARE_API_URL` and `VERCEL_API_URL` replace the APIs'
addresses for a stand-in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from core.contracts import ResourceType
from tools.offline import Plan, unwrap
from tools.vercel_deploy import VercelApi, VercelError, api_url, checked_url
from tools.vercel_deploy import token as vercel_token

DNS_RECORD = ResourceType.DNS_RECORD
VERCEL_ENV = ResourceType.VERCEL_VARIABLE
CLOUDFLARE_API = "https://api.cloudflare.com/client/v4"
CLOUDFLARE_URL_VARIABLE, CLOUDFLARE_TOKEN_VARIABLE = "CLOUDFLARE_API_URL", "CLOUDFLARE_API_TOKEN"


def _cloudflare_token(environ: Mapping[str, str], stack: Any) -> str:
    if environ.get(CLOUDFLARE_TOKEN_VARIABLE):
        return environ[CLOUDFLARE_TOKEN_VARIABLE]
    from pulumi import automation as auto

    try:
        value = str(stack.get_config("cloudflare:apiToken").value or "")
    except auto.errors.CommandError:
        value = ""
    if not value:
        raise VercelError("no Cloudflare token: the stack has no cloudflare:apiToken (`pulumi config set --secret "
                          f"cloudflare:apiToken --stack STACK`) and {CLOUDFLARE_TOKEN_VARIABLE} is not set")
    return value


def wrong_ids(plan: Plan, stack: Any, environ: Mapping[str, str] = os.environ) -> list[str]:
    """One line per adopted record or variable whose id names something else (or nothing); VercelError when an
    API cannot be asked at all."""
    records = [r for r in plan.resources if r.import_id and r.type == DNS_RECORD]
    variables = [r for r in plan.resources if r.import_id and r.type == VERCEL_ENV]
    problems: list[str] = []
    if records:
        cloudflare = VercelApi(_cloudflare_token(environ, stack), None,
                               checked_url(CLOUDFLARE_URL_VARIABLE, CLOUDFLARE_API, environ), "Cloudflare")
        for record in records:
            inputs = unwrap(record.inputs)
            zone, record_id = str(record.import_id).split("/", 1)
            live = _read(cloudflare, f"/zones/{zone}/dns_records/{record_id}", problems, inputs["name"])
            found = (live or {}).get("result") or {}
            if live is not None and (found.get("name"), found.get("type")) != (inputs["name"], inputs["type"]):
                problems.append(f"existingRecordId {record_id} of {inputs['name']} ({inputs['type']}) is the "
                                f"{found.get('type')} record of {found.get('name')}")
    if variables:
        team = unwrap(variables[0].inputs).get("teamId")
        vercel = VercelApi(vercel_token(environ, stack), team, api_url(environ))
        for variable in variables:
            inputs = unwrap(variable.inputs)
            env_id = str(variable.import_id).rsplit("/", 1)[-1]
            live = _read(vercel, f"/v1/projects/{inputs['projectId']}/env/{env_id}", problems, inputs["key"])
            if live is not None and live.get("key") != inputs["key"]:
                problems.append(f"existingEnvIds.{inputs['key']} {env_id} is the variable {live.get('key')}")
    return problems


def _read(api: VercelApi, path: str, problems: list[str], what: str) -> dict[str, Any] | None:
    """The object at `path`, or None with the reason in `problems` when the API says there is none."""
    try:
        return api.call("GET", path)
    except VercelError as exc:
        if exc.transient:
            raise
        problems.append(f"{what}: {exc}")
        return None

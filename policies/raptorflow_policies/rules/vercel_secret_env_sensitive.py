"""Vercel env vars that hold secrets are `sensitive` (write-only in Vercel)."""

from __future__ import annotations

import re

from pulumi_policy import Severity

from .._base import VERCEL_ENV, Weakening, resource_policy

CONFIG = {
    "secretNamePattern": {
        "type": "string",
        "description": "Env var names that hold secrets.",
        "default": "(SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|API_KEY|SERVICE_ROLE|_KEY$)",
    }
}
# Values that are secrets whatever their name: JWTs, Stripe-style keys, URLs with a password.
SECRET_VALUE = re.compile(r"^(eyJ[\w-]+\.[\w-]+\.|sk_(live|test)_|xox[bap]-|[a-z]+://[^/:@\s]+:[^@\s]+@)")


def _check(args, violate):
    if args.resource_type != VERCEL_ENV or args.props.get("sensitive") is True:
        return
    key, value = str(args.props.get("key", "")), str(args.props.get("value", ""))
    if re.search(args.get_config().get("secretNamePattern", CONFIG["secretNamePattern"]["default"]), key):
        violate(f"Vercel env var {key} looks like a secret by its name but is not sensitive")
    elif SECRET_VALUE.match(value):
        violate(f"Vercel env var {key} holds a secret-looking value but is not sensitive")


POLICY = resource_policy(
    "raptorflow-vercel-secret-env-sensitive",
    "Vercel env vars holding secrets are `sensitive`.",
    "Vercel sensitive env vars",
    Severity.HIGH,
    "list the variable under standby.vercel.secretVariables and its values in the secret vercelSecretValues",
    _check,
    config=CONFIG,
)

WEAKENINGS = [
    Weakening("dr", "Vercel env var SUPABASE_SERVICE_ROLE_KEY looks like a secret by its name but is not sensitive",
              "vercel-env-supabase-service-role-key", {"sensitive": False}),
    Weakening("dr", "Vercel env var SUPABASE_URL holds a secret-looking value but is not sensitive",
              "vercel-env-supabase-url", {"value": "postgresql://app:hunter2@db.example.com/app"}),
]

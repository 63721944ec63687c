"""Vercel rule: env vars that hold secrets are sensitive (write-only in Vercel)."""

from __future__ import annotations

import re

from pulumi_policy import Severity

from ._base import VERCEL_ENV, resource_policy

SECRET_CONFIG = {
    "secretNamePattern": {
        "type": "string",
        "description": "Env var names that hold secrets.",
        "default": "(SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|API_KEY|SERVICE_ROLE|_KEY$)",
    }
}
# Values that are secrets whatever their name: JWTs, Stripe-style keys, URLs with a password.
SECRET_VALUE = re.compile(r"^(eyJ[\w-]+\.[\w-]+\.|sk_(live|test)_|xox[bap]-|[a-z]+://[^/:@\s]+:[^@\s]+@)")


def _sensitive(args, violate):
    if args.resource_type != VERCEL_ENV or args.props.get("sensitive") is True:
        return
    key, value = str(args.props.get("key", "")), str(args.props.get("value", ""))
    if re.search(args.get_config().get("secretNamePattern", SECRET_CONFIG["secretNamePattern"]["default"]), key):
        violate(f"Vercel env var {key} looks like a secret by its name but is not sensitive")
    elif SECRET_VALUE.match(value):
        violate(f"Vercel env var {key} holds a secret-looking value but is not sensitive")


vercel_secret_sensitive = resource_policy(
    "raptorflow-vercel-secret-env-sensitive",
    "Vercel env vars holding secrets are `sensitive`.",
    "Vercel sensitive env vars",
    Severity.HIGH,
    "list the variable under vercel.secretVariables and its values in the secret vercelSecretValues",
    _sensitive,
    config=SECRET_CONFIG,
)

POLICIES = [vercel_secret_sensitive]

"""What `python -m tools.rotate` cannot rotate itself, and where an operator rotates it.

A secret a vendor issues (a Stripe or Resend key, a Slack token, a Supabase service-role key, an API token of
Vercel or Cloudflare) is rotated at the vendor: the command lists each by its config key with the place to do it
and the command that stores the new value afterwards (the vault's and Vercel's values then reach Secret Manager
and Vercel with `pulumi up`). Only the key names are printed, never a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tools.rotate_config import NAMESPACE, Entry
from tools.stack_yaml import PROJECT

SLACK = "Slack: https://api.slack.com/apps -> the alert app -> OAuth & Permissions -> revoke and reinstall"
CLOUDFLARE = ("Cloudflare: My Profile -> API Tokens -> the token -> Roll "
              "(https://developers.cloudflare.com/fundamentals/api/how-to/roll-token/)")
VERCEL_TOKEN = "Vercel: Account Settings -> Tokens: create a new token, then delete the old (https://vercel.com/account/tokens)"
VENDORS = {
    "STRIPE": "Stripe: Dashboard -> Developers -> API keys -> Roll key (https://docs.stripe.com/keys#rolling-keys)",
    "RESEND": "Resend: Dashboard -> API Keys: create a key, then delete the old (https://resend.com/api-keys)",
    "SUPABASE": "Supabase: Project Settings -> API -> JWT secret -> generate a new secret (new anon and service-role keys)",
}
PROVIDER_KEYS = {"vercel:apiToken": VERCEL_TOKEN, "cloudflare:apiToken": CLOUDFLARE}


def where(key: str) -> str | None:
    """Where the secret at full config `key` is rotated by hand, or None for a key this catalogue does not know."""
    if key in PROVIDER_KEYS:
        return PROVIDER_KEYS[key]
    own = key.removeprefix(f"{PROJECT}:")
    if own == "slackAuthToken":
        return SLACK
    if own == "cloudflareExportToken":
        return CLOUDFLARE
    if own.endswith("DatabaseUrl") or own == "databaseUrl":
        return "a database role of its own: give it a new password in that database (Supabase: Project Settings -> Database)"
    name = own.split(".")[1] if own.startswith(("configVaultSecrets.", "vercelSecretValues.")) else own
    vendor = next((text for prefix, text in VENDORS.items() if name.upper().startswith(prefix)), None)
    return vendor or "its issuer's console"


def store_command(key: str, stack: str) -> str:
    """The command that stores the new value (the CLI prompts for it)."""
    own = key.removeprefix(f"{PROJECT}:")
    return f"pulumi config set --secret{' --path' if '.' in own else ''} --stack {stack} '{own}'"


def manual_lines(keys: Iterable[tuple[str, str]]) -> list[str]:
    """One line per (stack, full key) left to rotate by hand."""
    return [f"  {stack} {key.removeprefix(f'{PROJECT}:')}: {where(key)}; then `{store_command(key, stack)}` and "
            f"`pulumi up --stack {stack}`" for stack, key in keys]


def manual_keys(config: Mapping[str, Mapping[str, Entry]], new: str, rolled: set[str]) -> list[tuple[str, str]]:
    """(stack, full key) of each secret of `config` (stack -> key -> entry) the rotation left as it was: holding
    neither the new password `new` nor a token rolled (`STACK/KEY` in `rolled`), nor part of the journal."""
    return [(stack, entry.key) for stack, entries in config.items() for entry in entries.values()
            if entry.secret and not entry.key.startswith(f"{NAMESPACE}:") and new not in entry.value
            and f"{stack}/{entry.key}" not in rolled]


def report(incident: str, rotated: list[str], manual: list[tuple[str, str]]) -> list[str]:
    """The closing lines: what the rotation changed, then each (stack, full key) left to rotate by hand."""
    return [f"incident {incident}: rotation finished. Rotated:", *(f"  {line}" for line in rotated),
            f"Manual ({len(manual)}): rotate at the vendor, then store the new value:", *manual_lines(manual)]

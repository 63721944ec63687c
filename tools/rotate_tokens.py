"""The Cloudflare part of `python -m tools.rotate`: roll each Cloudflare API token the stacks hold, where the token
may roll itself.

Cloudflare's "Roll Token" (`PUT /user/tokens/{token_id}/value`, body `{}`, answers `{"result": NEW_VALUE}`;
https://developers.cloudflare.com/api/resources/user/subresources/tokens/subresources/value/methods/update)
needs the "API Tokens Write" permission; the token's id comes from `GET /user/tokens/verify`
(https://developers.cloudflare.com/api/resources/user/subresources/tokens/methods/verify), which any valid token
may call. Rolling invalidates the old value at once, so the new one is stored as a Pulumi secret the moment it
arrives. A token without that permission (Cloudflare answers 403), an API that does not offer the call, or a
stored token Cloudflare no longer accepts is left to the dashboard (tools/rotate_manual.py); so is a token whose
roll was cut between Cloudflare's answer and the store: the next run finds it invalid and says so.

$CLOUDFLARE_API_URL replaces https://api.cloudflare.com/client/v4 (tests, drills); no value is ever printed.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tools.adopt_check import CLOUDFLARE_API, CLOUDFLARE_URL_VARIABLE
from tools.stack_yaml import PROJECT
from tools.vercel_deploy import VercelApi, VercelError, checked_url

if TYPE_CHECKING:
    from tools.rotate_config import Entry, StackConfig
    from tools.secrets import Signals

TOKEN_KEYS = (f"{PROJECT}:cloudflareExportToken", "cloudflare:apiToken")
"""The config keys that hold Cloudflare API tokens: the zone export's read-only token and the provider's."""


@dataclass(frozen=True)
class Rolled:
    """The outcome of one token: its new value (None when not rolled) and, if not, why."""

    value: str | None
    why_not: str = ""


def roll(token: str, environ: Mapping[str, str] = os.environ) -> Rolled:
    """Roll `token` through Cloudflare's API (it authenticates as itself); Rolled(None, why) when it cannot."""
    try:
        base = checked_url(CLOUDFLARE_URL_VARIABLE, CLOUDFLARE_API, environ)
    except VercelError as exc:
        return Rolled(None, str(exc))
    api = VercelApi(token, None, base, label="Cloudflare")
    try:
        verified = api.call("GET", "/user/tokens/verify").get("result") or {}
    except VercelError as exc:
        return Rolled(None, f"Cloudflare did not verify the stored token ({exc}); roll it in the dashboard")
    token_id = str(verified.get("id") or "") if isinstance(verified, dict) else ""
    if not token_id:
        return Rolled(None, "Cloudflare's verify answered no token id")
    try:
        answer = api.call("PUT", f"/user/tokens/{urllib.parse.quote(token_id, safe='')}/value", body={})
    except VercelError as exc:
        return Rolled(None, f"the token may not roll itself ({exc})")
    new = answer.get("result")
    if not isinstance(new, str) or not new:
        return Rolled(None, "Cloudflare's roll answered no token value")
    return Rolled(new)


def roll_held(stacks: list[StackConfig], config: dict[str, dict[str, Entry]], rolled: set[str], signals: Signals,
              say: Callable[[str], None], values: set[str]) -> list[str]:
    """The rotation's roll-tokens step: roll each token of TOKEN_KEYS the stacks hold and `rolled` (`STACK/KEY`)
    does not list, store the new value in every stack that held the old one, and note it in the journal (the
    first stack's `rotation:rolledTokens`). A signal waits from the roll until then: the roll kills the old value
    and the new one exists only in this process until it is stored. `config` is updated and each new value added
    to `values` (what no output may show) as soon as it exists; returns the report's lines."""
    from tools.rotate_config import ROLLED, Entry

    rotated: list[str] = []
    for stack in stacks:
        for key in TOKEN_KEYS:
            entry = config[stack.stack].get(key)
            if entry is None or f"{stack.stack}/{key}" in rolled:
                continue
            shown = key.removeprefix(PROJECT + ":")
            with signals.deferred(f"{stack.stack}/{key}"):
                outcome = roll(entry.value)
                if outcome.value is None:
                    say(f"stack {stack.stack}: {shown} not rolled: {outcome.why_not}")
                    continue
                values.add(outcome.value)
                for holder in stacks:
                    for same in [e for e in config[holder.stack].values() if e.value == entry.value]:
                        holder.set_secret(same.key, outcome.value)
                        config[holder.stack][same.key] = Entry(same.key, outcome.value, True)
                        rolled.add(f"{holder.stack}/{same.key}")
                        rotated.append(f"stack {holder.stack}: {same.key.removeprefix(PROJECT + ':')} "
                                       "(Cloudflare Roll Token)")
                stacks[0].set_plain(ROLLED, ",".join(sorted(rolled)))
                config[stacks[0].stack][ROLLED] = Entry(ROLLED, ",".join(sorted(rolled)), False)
            say(f"stack {stack.stack}: {shown} rolled through Cloudflare's API and stored")
    return rotated

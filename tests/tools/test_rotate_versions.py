"""tools.rotate's last step on its own: disabling the old Secret Manager versions, over HTTP against the labelled
Secret Manager stand-in. Whatever `pulumi up` left enabled (a SecretVersion with deletion_policy ABANDON, a value
added by hand) is disabled; the newest version, the one the jobs mount as `latest`, never is."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import pytest

from core.resource_types import ResourceType
from tests.services import serving
from tools import rotate_versions as versions
from tools.drill import secret_manager
from tools.vercel_deploy import VercelApi

PROJECT = "raptorflow-dr"


@pytest.fixture
def stand_in() -> Iterator[tuple[secret_manager.SecretManagerStandIn, VercelApi]]:
    manager = secret_manager.SecretManagerStandIn(secrets.token_hex(16))
    with serving(manager.handler()) as http:
        environ = {versions.URL_VARIABLE: f"http://127.0.0.1:{http.server_address[1]}",
                   versions.TOKEN_VARIABLE: manager.token}
        yield manager, versions.api(environ)


def add(manager: secret_manager.SecretManagerStandIn, secret: str, value: str) -> None:
    status, _ = manager.handle("POST", f"/v1/projects/{PROJECT}/secrets/{secret}:addVersion",
                               {"payload": {"data": base64.b64encode(value.encode()).decode()}})
    assert status == 200


def test_every_enabled_version_but_the_newest_is_disabled_once(stand_in):
    manager, client = stand_in
    manager.seed(PROJECT, "db-url", "v1")
    add(manager, "db-url", "v2")
    add(manager, "db-url", "v3")
    manager.handle("POST", f"/v1/projects/{PROJECT}/secrets/db-url/versions/2:destroy", {})
    ref = versions.SecretRef(PROJECT, "db-url")
    assert versions.disable_old(client, ref) == [f"projects/{PROJECT}/secrets/db-url/versions/1"]
    assert manager.states(PROJECT, "db-url") == ["DISABLED", "DESTROYED", "ENABLED"]
    assert versions.disable_old(client, ref) == [], "a second run disables nothing"
    status, answer = manager.handle("GET", f"/v1/projects/{PROJECT}/secrets/db-url/versions/latest:access", None)
    assert status == 200 and manager.payload(PROJECT, "db-url", 3) == "v3", answer


def test_versions_past_the_first_page_are_disabled_too(stand_in):
    manager, client = stand_in
    manager.page_cap = 2
    manager.seed(PROJECT, "many", "v1")
    for value in ("v2", "v3", "v4", "v5"):
        add(manager, "many", value)
    disabled = versions.disable_old(client, versions.SecretRef(PROJECT, "many"))
    assert len(disabled) == 4, f"the versions on pages 2 and 3 too: {disabled}"
    assert manager.states(PROJECT, "many") == ["DISABLED"] * 4 + ["ENABLED"]


def test_a_disabled_version_can_no_longer_be_read(stand_in):
    manager, client = stand_in
    manager.seed(PROJECT, "key", "old")
    add(manager, "key", "new")
    versions.disable_old(client, versions.SecretRef(PROJECT, "key"))
    status, answer = manager.handle("GET", f"/v1/projects/{PROJECT}/secrets/key/versions/1:access", None)
    assert (status, answer["error"]["status"]) == (400, "FAILED_PRECONDITION"), answer


def test_the_secrets_come_from_the_plan_and_a_missing_one_is_one_line(stand_in):
    _, client = stand_in
    plan = [(ResourceType.SECRET, {"project": PROJECT, "secretId": "b"}), (ResourceType.SECRET_VERSION, {}),
            (ResourceType.SECRET, {"project": PROJECT, "secretId": "a"})]
    assert [ref.secret_id for ref in versions.secrets_of(plan)] == ["a", "b"]
    with pytest.raises(versions.VersionsError, match=r"^Secret Manager API GET /v1/projects/raptorflow-dr/secrets/a/"
                                                      r"versions answered 404"):
        versions.disable_all(client, plan)


def test_no_token_and_no_gcloud_is_one_line(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(versions.VersionsError, match="no Google access token"):
        versions.access_token({})

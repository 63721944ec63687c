"""export-dns against what the Cloudflare API might answer (two local origins stand in for it): a redirect to
another origin is not followed with the token, an HTML page is not stored as a zone; and every scheduled
command, export-dns included, succeeds twice in a row.
"""

from __future__ import annotations

import http.server
from typing import ClassVar

import pytest

from backup_job import storage as layout
from backup_job.errors import ExitCode
from tests.backup_job.jobs import job, one_log_line
from tests.services import serving

ZONE = b"$ORIGIN example.app.\n@\t1\tIN\tA\t203.0.113.10\nwww\t1\tIN\tCNAME\texample.app.\n"


class _Api(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}
    seen: ClassVar[list[tuple[int, str, str | None]]] = []

    def do_GET(self):
        server = self.server
        assert isinstance(server, http.server.HTTPServer)
        port = server.server_port
        type(self).seen.append((port, self.path, self.headers.get("Authorization")))
        status, headers, body = type(self).answers.get(f"{port}{self.path}", (404, {}, b""))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def two_origins():
    _Api.answers, _Api.seen = {}, []
    with serving(_Api) as first, serving(_Api) as second:
        yield [first.server_address[1], second.server_address[1]]


def _export(bucket, port):
    return job("export-dns", "--zone-id", "z1", "--bucket", bucket.name, "--prefix", "cloudflare",
               env={"CLOUDFLARE_API_TOKEN": "cf-secret-token", "CLOUDFLARE_API_BASE_URL": f"http://127.0.0.1:{port}"})


def test_a_redirect_to_another_origin_is_not_followed_with_the_token(bucket, two_origins):
    api, elsewhere = two_origins
    _Api.answers[f"{api}/zones/z1/dns_records/export"] = (
        302, {"Location": f"http://127.0.0.1:{elsewhere}/steal"}, b"")
    code, out, err, _ = _export(bucket, api)
    assert code == ExitCode.EXPORT_FAILED and "redirected to another origin" in one_log_line(out)["message"]
    assert [seen for seen in _Api.seen if seen[0] == elsewhere] == [], "the other origin was contacted"
    assert "cf-secret-token" not in out + err
    assert list(bucket.list_blobs()) == []


def test_an_html_page_is_not_stored_as_a_zone(bucket, two_origins):
    api, _ = two_origins
    _Api.answers[f"{api}/zones/z1/dns_records/export"] = (200, {}, b"<html><body>Please log in</body></html>")
    code, _out, _err, _ = _export(bucket, api)
    assert code == ExitCode.EXPORT_FAILED and list(bucket.list_blobs()) == []


def test_every_scheduled_command_succeeds_twice_in_a_row(bucket, source_url, scratch_url, two_origins):
    api, _ = two_origins
    _Api.answers[f"{api}/zones/z1/dns_records/export"] = (200, {}, ZONE)
    for attempt in (1, 2):
        for args, env in (
            (("backup", "--kind", "full", "--prefix", "supabase"), {"DATABASE_URL": source_url}),
            (("backup", "--kind", "schema", "--prefix", "supabase"), {"DATABASE_URL": source_url}),
            (("restore-check", "--prefix", "supabase"), {"SCRATCH_DATABASE_URL": scratch_url}),
        ):
            code, out, err, _ = job(*args, "--bucket", bucket.name, env=env)
            assert code == 0, f"{args[0]} run {attempt}: {out}{err}"
        code, out, err, _ = _export(bucket, api)
        assert code == 0, f"export-dns run {attempt}: {out}{err}"
    assert len(layout.scan(bucket, "supabase").complete) == 4
    assert len(layout.scan(bucket, "cloudflare").complete) == 2

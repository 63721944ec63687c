"""STAND-IN for the Cloudflare API (v4, the DNS-record endpoints the project uses), in front of the real DNS server.

It holds the zone's records as Cloudflare does (id, name, type, content, ttl, proxied) and publishes every
change to knotd at once (Cloudflare's edge also switches at once). Endpoints, under /client/v4:

    GET    /zones/{zone}/dns_records                 list
    POST   /zones/{zone}/dns_records                 create
    PATCH  /zones/{zone}/dns_records/{id}            update content / ttl / proxied (what `pulumi up` does)
    DELETE /zones/{zone}/dns_records/{id}            delete
    GET    /zones/{zone}/dns_records/export          the zone as BIND, as Cloudflare exports it (proxied
                                                     records with TTL 1 and `; cf_tags=cf-proxied:true`)
    POST   /zones/{zone}/dns_records/import          a BIND file as the request body (the real endpoint takes
                                                     a multipart form); SOA and apex NS lines are skipped

Every request needs `Authorization: Bearer <token>`. It listens on 10.213.0.2:8080 in rfdr-net, plain HTTP
(the real API is HTTPS; `backup_job export-dns` reaches it through CLOUDFLARE_API_BASE_URL).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tools.drill.dns import KnotServer
from tools.drill.world import ADDRESSES, serve_http, stop_http

PORT = 8080
API_PATH = "/client/v4"
_ROUTE = re.compile(r"^/client/v4/zones/(?P<zone>[0-9a-f]+)/dns_records(?:/(?P<rest>[^/?]+))?/?$")


def base_url() -> str:
    """The stand-in's API base (CLOUDFLARE_API_BASE_URL for the backup job)."""
    return f"http://{ADDRESSES['api']}:{PORT}{API_PATH}"


def bind_export(domain: str, records: list[dict[str, Any]]) -> str:
    """The zone as Cloudflare's export writes it."""
    origin = domain.rstrip(".") + "."
    lines = [f";; Domain: {domain}", ";; Exported by the drill's Cloudflare API stand-in", "",
             f"{origin}\t3600\tIN\tSOA\tns1.{origin} hostmaster.{origin} 1 10000 2400 604800 3600",
             f"{origin}\t86400\tIN\tNS\tns1.{origin}"]
    for record in records:
        content = record["content"] + ("." if record["type"] == "CNAME" and not record["content"].endswith(".") else "")
        tags = f" ; cf_tags=cf-proxied:{'true' if record.get('proxied') else 'false'}"
        lines.append(f"{record['name'].rstrip('.')}.\t{int(record['ttl'])}\tIN\t{record['type']}\t{content}{tags}")
    return "\n".join(lines) + "\n"


def parse_bind(domain: str, text: str) -> list[dict[str, Any]]:
    """Records of a BIND export (as Cloudflare's import reads it): SOA and apex NS skipped."""
    records = []
    apex = domain.rstrip(".")
    for raw in text.splitlines():
        line, _, comment = raw.partition(";")
        fields = line.split()
        if not fields or raw.lstrip().startswith(("$", ";")):
            continue
        name, rest = fields[0].rstrip("."), fields[1:]
        ttl = 1
        while rest and (rest[0].isdigit() or rest[0] in ("IN", "CH", "HS")):
            if rest[0].isdigit():
                ttl = int(rest[0])
            rest = rest[1:]
        kind, content = rest[0], " ".join(rest[1:])
        if kind == "SOA" or (kind == "NS" and name == apex):
            continue
        records.append({"name": name, "type": kind, "content": content.rstrip(".") if kind == "CNAME" else content,
                        "ttl": ttl, "proxied": "cf-proxied:true" in comment})
    return records


class CloudflareStandIn:
    """STAND-IN for Cloudflare's DNS API: a record store that publishes to the real DNS server."""

    def __init__(self, zone_id: str, domain: str, token: str, server: KnotServer) -> None:
        self.zone_id, self.domain, self.token, self.server = zone_id, domain, token, server
        self.records: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (method, path) of every authorised request, for the report
        self._http: ThreadingHTTPServer | None = None

    def load(self, records: list[dict[str, Any]]) -> None:
        """Replace the zone's records (the state before the drill) and publish."""
        with self.lock:
            self.records = {uuid.uuid4().hex: dict(r) for r in records}
            self._publish()

    def _publish(self) -> None:
        self.server.publish(sorted(self.records.values(), key=lambda r: (r["name"], r["type"])))

    def listing(self) -> list[dict[str, Any]]:
        """Records with their ids, as the list endpoint returns them."""
        with self.lock:
            return [{"id": key, **value} for key, value in sorted(self.records.items())]

    def start(self) -> None:
        """Serve the API in rfdr-net until `stop`."""
        self._http = serve_http("net", (ADDRESSES["api"], PORT), self._handler(), "rfdr-cloudflare-stand-in")

    def stop(self) -> None:
        """Stop serving."""
        stop_http(self._http)
        self._http = None

    def _handle(self, method: str, path: str, body: bytes) -> tuple[int, str, str]:
        """(status, content type, body) for one authorised request."""
        match = _ROUTE.match(path)
        if not match or match["zone"] != self.zone_id:
            return 404, "application/json", json.dumps({"success": False, "errors": [{"code": 7003, "message":
                                                                                        "Could not route"}]})
        rest = match["rest"]
        with self.lock:
            if method == "GET" and rest == "export":
                return 200, "text/plain", bind_export(self.domain, list(self.records.values()))
            if method == "POST" and rest == "import":
                added = parse_bind(self.domain, body.decode("utf-8", errors="replace"))
                for record in added:
                    self.records[uuid.uuid4().hex] = record
                self._publish()
                return 200, "application/json", json.dumps({"success": True, "result": {"recs_added": len(added)}})
            if method == "GET" and rest is None:
                result = [{"id": key, **value} for key, value in sorted(self.records.items())]
                return 200, "application/json", json.dumps({"success": True, "result": result})
            if method == "POST" and rest is None:
                record = json.loads(body)
                key = uuid.uuid4().hex
                self.records[key] = {k: record[k] for k in ("name", "type", "content", "ttl", "proxied") if k in record}
                self._publish()
                return 200, "application/json", json.dumps({"success": True, "result": {"id": key, **self.records[key]}})
            if rest in self.records and method == "PATCH":
                changes = json.loads(body)
                self.records[rest].update({k: changes[k] for k in ("content", "ttl", "proxied") if k in changes})
                self._publish()
                return 200, "application/json", json.dumps({"success": True, "result": {"id": rest, **self.records[rest]}})
            if rest in self.records and method == "DELETE":
                del self.records[rest]
                self._publish()
                return 200, "application/json", json.dumps({"success": True, "result": {"id": rest}})
        return 404, "application/json", json.dumps({"success": False, "errors": [{"code": 81044, "message":
                                                                                    "Record does not exist."}]})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {stand_in.token}":
                    status, kind, text = 403, "application/json", json.dumps(
                        {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]})
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                    stand_in.requests.append((self.command, self.path))
                    status, kind, text = stand_in._handle(self.command, self.path.split("?")[0], body)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError):
                    self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the drill reports what matters."""

        return Handler

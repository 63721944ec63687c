"""A real authoritative DNS server for the zone (Knot DNS, Debian's `knot`), and a resolver client.

knotd runs in the rfdr-net namespace on 10.213.0.53:53 and serves the zone file the Cloudflare API
stand-in writes; every change is a new serial and `knotc zone-reload`. Clients never read the zone file:
they query the server with dnspython, follow the CNAME chain and honour the answer's TTL (divided by the
drill's time scale), as a resolver would.

Proxied records are served with their content and a TTL of 300 s (Cloudflare's "auto"); the real edge would
answer with its own addresses instead, and switch at once - the drill measures the DNS-only path, which
is the slower one.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.rdatatype
import dns.resolver

from tools.drill.world import ADDRESSES, USAGE, DrillError, World, run

AUTO_TTL_SECONDS = 300  # what a proxied record's "automatic" TTL is at a resolver
PORT = 53
QUERY_TIMEOUT_SECONDS = 1.0
START_TIMEOUT_SECONDS = 15.0


def binaries() -> tuple[str, str]:
    """knotd and knotc from Debian's `knot` package."""
    knotd, knotc = shutil.which("knotd"), shutil.which("knotc")
    if not knotd or not knotc:
        raise DrillError(USAGE, "Knot DNS not found: apt-get install knot (the drill's authoritative DNS server)")
    return knotd, knotc


def served_ttl(record: dict[str, Any]) -> int:
    """The TTL a resolver sees for a record (proxied: automatic)."""
    return AUTO_TTL_SECONDS if record.get("proxied") else int(record["ttl"])


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


def zone_text(domain: str, serial: int, records: list[dict[str, Any]]) -> str:
    """The zone file knotd serves: SOA, NS, and every record (CNAME targets absolute)."""
    origin = _absolute(domain)
    lines = [f"$ORIGIN {origin}", f"@ 3600 IN SOA ns1.{origin} hostmaster.{origin} {serial} 3600 600 86400 60",
             f"@ 3600 IN NS ns1.{origin}", f"ns1 3600 IN A {ADDRESSES['dns']}"]
    for record in records:
        content = _absolute(record["content"]) if record["type"] == "CNAME" else record["content"]
        lines.append(f"{_absolute(record['name'])} {served_ttl(record)} IN {record['type']} {content}")
    return "\n".join(lines) + "\n"


class KnotServer:
    """knotd serving one zone from a file in the private folder."""

    def __init__(self, world: World, domain: str) -> None:
        self.world, self.domain = world, domain
        self.knotd, self.knotc = binaries()
        self.home = world.folder / "dns"
        (self.home / "db").mkdir(parents=True)
        self.zone_file = self.home / f"{domain}.zone"
        self.config = self.home / "knot.conf"
        self.config.write_text(f"""server:
    rundir: "{self.home}"
    user: root:root
    listen: {ADDRESSES['dns']}@{PORT}
control:
    listen: "{self.home}/knot.sock"
database:
    storage: "{self.home}/db"
log:
  - target: stderr
    any: warning
zone:
  - domain: {domain}
    storage: "{self.home}"
    file: "{self.zone_file.name}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
""")
        self.serial = 0

    def publish(self, records: list[dict[str, Any]]) -> None:
        """Write the zone with a new serial and have knotd load it (starts knotd the first time)."""
        self.serial += 1
        self.zone_file.write_text(zone_text(self.domain, self.serial, records))
        if "knotd" not in self.world.processes:
            self.world.spawn("net", "knotd", [self.knotd, "-c", str(self.config)])
            self._wait_loaded()
        else:
            run([self.knotc, "-c", str(self.config), "zone-reload", self.domain], timeout=30)

    def _wait_loaded(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            status = run([self.knotc, "-c", str(self.config), "zone-status", self.domain], timeout=10, check=False)
            if status.returncode == 0 and "serial" in status.stdout:
                return
            time.sleep(0.1)
        raise DrillError(USAGE, f"knotd did not load the zone within {START_TIMEOUT_SECONDS:.0f} s "
                                f"(log: {self.world.folder / 'logs' / 'knotd.log'})")


@dataclass(frozen=True)
class Answer:
    """What the DNS server answered for a name: the chain of (name, type, data, ttl) and the final address."""

    chain: tuple[tuple[str, str, str, int], ...]
    address: str | None

    @property
    def ttl(self) -> int:
        """The smallest TTL of the chain: how long a resolver may keep the answer."""
        return min((entry[3] for entry in self.chain), default=0)

    def first(self) -> tuple[str, str, str, int] | None:
        """The record of the queried name itself."""
        return self.chain[0] if self.chain else None


def query(name: str, record_type: str = "A") -> Answer:
    """Ask the drill's DNS server (call from a thread in rfdr-net). NXDOMAIN or no answer: an empty chain."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [ADDRESSES["dns"]]
    resolver.port = PORT
    resolver.lifetime = QUERY_TIMEOUT_SECONDS
    try:
        answer = resolver.resolve(name, record_type, raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers, dns.exception.Timeout):
        return Answer((), None)
    chain = []
    address = None
    for rrset in answer.response.answer:
        for item in rrset:
            data = item.to_text()
            chain.append((rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), data, rrset.ttl))
            if rrset.rdtype == dns.rdatatype.A:
                address = address or data
    return Answer(tuple(chain), address)


def matches(record: dict[str, Any], answer: Answer) -> bool:
    """Whether the server's answer for the record's name is the record: type, content and served TTL."""
    first = answer.first()
    if first is None:
        return False
    name, kind, data, ttl = first
    want = _absolute(record["content"]) if record["type"] == "CNAME" else record["content"]
    return (name, kind, data, ttl) == (_absolute(record["name"]), record["type"], want, served_ttl(record))


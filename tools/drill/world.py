"""The drill's world: three network namespaces, a bridge, a private folder, and every process started in them.

    rfdr-net   "the internet": a bridge (10.213.0.1/24) that joins the sites; the drill's clients, the
               authoritative DNS server (10.213.0.53) and the Cloudflare API stand-in (10.213.0.2)
    rfdr-us    the primary site (10.213.0.10), joined to the bridge by the veth rfdr-us0 / rfdr-usb
    rfdr-eu    the standby site (10.213.0.20), joined by rfdr-eu0 / rfdr-eub

The addresses exist only inside these namespaces: nothing of the drill listens in the host's namespace
(PostgreSQL's Unix sockets and knot's control socket are files in the private folder). Cutting a site is
taking its veth down. Every process is started inside a namespace, so killing the namespace's processes and
deleting it removes all of them - which is also how the next run cleans up a world that a killed run left.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

PREFIX = "rfdr-"
NAMESPACES = {"net": "rfdr-net", "us": "rfdr-us", "eu": "rfdr-eu"}
SUBNET_BITS = 24
ADDRESSES = {"net": "10.213.0.1", "api": "10.213.0.2", "dns": "10.213.0.53", "us": "10.213.0.10", "eu": "10.213.0.20"}
FOLDER_PREFIX = "rfdr-drill-"
# `ip netns exec NAME` bind-mounts each file of /etc/netns/NAME over /etc: the namespace's own resolv.conf.
NETNS_ETC = Path("/etc/netns")
LOCK_FILE = Path("/run/rfdr-drill.lock")
"""One per machine, as the namespaces are (not under $TMPDIR, which differs between shells)."""
CLONE_NEWNET = 0x40000000
STOP_GRACE_SECONDS = 5.0

T = TypeVar("T")


class DrillError(Exception):
    """A failure the operator sees as one line, with the drill's exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


USAGE, MISSED = 2, 1

# Values that must never be printed (the database password, the API token): every line the drill prints,
# and every message it passes on from a child process, goes through `scrub`.
SECRETS: set[str] = set()


def secret(value: str) -> str:
    """Register a value that `scrub` removes from output; return it."""
    SECRETS.add(value)
    return value


def scrub(text: str) -> str:
    """`text` without any registered secret."""
    for value in SECRETS:
        text = text.replace(value, "[secret]")
    return text

_libc = ctypes.CDLL(None, use_errno=True)


def enter(site: str) -> None:
    """Move the calling thread (only it) into the site's network namespace."""
    descriptor = os.open(f"/run/netns/{NAMESPACES[site]}", os.O_RDONLY)
    try:
        if _libc.setns(descriptor, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {NAMESPACES[site]} failed")
    finally:
        os.close(descriptor)


def in_site(site: str, function: Callable[..., T], *args: Any, timeout: float = 600.0) -> T:
    """Run `function(*args)` in a thread inside the site's namespace; return its result or raise its error."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            enter(site)
            outcome["value"] = function(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=body, name=f"rfdr-{site}-call", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise DrillError(MISSED, f"a step in {NAMESPACES[site]} did not finish within {timeout:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]



def serve_http(site: str, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
               name: str) -> ThreadingHTTPServer:
    """An HTTP server bound to `address` inside the site's namespace, serving on a daemon thread of that namespace;
    raises what binding it raised. Stop it with `stop_http`."""
    ready = threading.Event()
    outcome: dict[str, Any] = {}

    def serve() -> None:
        try:
            enter(site)
            server = ThreadingHTTPServer(address, handler)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread below
            outcome["error"] = exc
            ready.set()
            return
        outcome["server"] = server
        ready.set()
        server.serve_forever(poll_interval=0.2)

    threading.Thread(target=serve, name=name, daemon=True).start()
    ready.wait(10)
    if "error" in outcome:
        raise outcome["error"]
    if "server" not in outcome:
        raise DrillError(MISSED, f"{name} did not start serving within 10 s")
    return outcome["server"]


def stop_http(server: ThreadingHTTPServer | None) -> None:
    """Stop a server `serve_http` started (None: nothing to stop)."""
    if server is not None:
        server.shutdown()
        server.server_close()

def run(argv: list[str], timeout: float = 120.0, env: dict[str, str] | None = None,
        check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded in time); a failure is a DrillError naming the command."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DrillError(MISSED, f"{Path(argv[0]).name} did not finish within {timeout:.0f} s") from None
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        raise DrillError(MISSED, f"{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(argv[:6]))} "
                                 f"exited {result.returncode}: {detail[0][:300]}")
    return result


def in_namespace(site: str, argv: list[str]) -> list[str]:
    """`argv` run inside the site's namespace."""
    return ["ip", "netns", "exec", NAMESPACES[site], *argv]


def _namespace_pids(name: str) -> list[int]:
    result = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, timeout=30)
    return [int(pid) for pid in result.stdout.split() if pid.isdigit()]


def _kill_namespace(name: str) -> int:
    """SIGKILL every process in the namespace, then delete it; return how many processes were killed."""
    killed = 0
    for _ in range(10):  # bounded: a process may fork while we look
        pids = _namespace_pids(name)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.2)
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)
    return killed


def existing_namespaces() -> list[str]:
    """The drill's namespaces that exist now."""
    result = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
    return sorted(line.split()[0] for line in result.stdout.splitlines() if line.startswith(PREFIX))


def _netns_folders() -> list[Path]:
    """The namespaces' /etc files (/etc/netns/rfdr-*)."""
    return sorted(NETNS_ETC.glob(f"{PREFIX}*")) if NETNS_ETC.is_dir() else []


def leftover_folders(keep: Path | None = None) -> list[Path]:
    """Private folders of drill runs (other than `keep`)."""
    return sorted(p for p in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*") if p != keep)


def clean_stale(keep: Path | None = None) -> list[str]:
    """Remove what a killed run left: its namespaces (and every process in them) and its private folders.

    Only called while holding the drill lock, so no live drill owns what is removed.
    """
    cleaned = []
    for name in existing_namespaces():
        killed = _kill_namespace(name)
        cleaned.append(f"namespace {name} ({killed} processes)")
    for folder in _netns_folders():
        shutil.rmtree(folder, ignore_errors=True)
        cleaned.append(f"folder {folder}")
    for folder in leftover_folders(keep):
        shutil.rmtree(folder, ignore_errors=True)
        cleaned.append(f"folder {folder}")
    return cleaned


class Lock:
    """One drill at a time on a machine: the namespaces and addresses are fixed."""

    def __init__(self) -> None:
        self._file = LOCK_FILE.open("a+")

    def acquire(self) -> None:
        """Take the lock or raise DrillError(USAGE) naming the holder."""
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "?"
            raise DrillError(USAGE, f"another drill is running (pid {holder}); wait for it or stop it") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        """Let the next drill run."""
        with contextlib.suppress(OSError):
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


class World:
    """The namespaces, their links and the processes started in them; `teardown` removes everything."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
        self.folder.chmod(0o711)  # PostgreSQL (user postgres) reaches its own subfolders
        (self.folder / "logs").mkdir()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def build(self) -> None:
        """Create the namespaces, the bridge and the two site links, all inside the namespaces."""
        for name in NAMESPACES.values():
            run(["ip", "netns", "add", name])
            run(["ip", "-n", name, "link", "set", "lo", "up"])
        self.resolver("net", ADDRESSES["dns"])  # the operator's tools resolve the zone's names through knotd
        net = NAMESPACES["net"]
        run(["ip", "-n", net, "link", "add", "rfdr-br", "type", "bridge"])
        run(["ip", "-n", net, "link", "set", "rfdr-br", "up"])
        for role in ("net", "api", "dns"):
            run(["ip", "-n", net, "addr", "add", f"{ADDRESSES[role]}/{SUBNET_BITS}", "dev", "rfdr-br"])
        for site in ("us", "eu"):
            inner, outer = f"rfdr-{site}0", f"rfdr-{site}b"
            run(["ip", "-n", NAMESPACES[site], "link", "add", inner, "type", "veth", "peer", "name", outer, "netns", net])
            run(["ip", "-n", net, "link", "set", outer, "master", "rfdr-br"])
            run(["ip", "-n", net, "link", "set", outer, "up"])
            run(["ip", "-n", NAMESPACES[site], "addr", "add", f"{ADDRESSES[site]}/{SUBNET_BITS}", "dev", inner])
            run(["ip", "-n", NAMESPACES[site], "link", "set", inner, "up"])

    def add_address(self, site: str, address: str) -> None:
        """Give the site one more address (a public IP a DNS record names), routed to it from the internet."""
        run(["ip", "-n", NAMESPACES[site], "addr", "add", f"{address}/32", "dev", f"rfdr-{site}0"])
        run(["ip", "-n", NAMESPACES["net"], "route", "add", f"{address}/32", "via", ADDRESSES[site]])

    def resolver(self, site: str, nameserver: str) -> None:
        """Processes started in the site's namespace resolve names through `nameserver` (glibc's resolver)."""
        folder = NETNS_ETC / NAMESPACES[site]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "resolv.conf").write_text(f"nameserver {nameserver}\noptions timeout:1 attempts:2\n")

    def secret_file(self, name: str, text: str) -> Path:
        """A root-only file in the private folder (a mounted secret: database URLs, the API token)."""
        path = self.folder / "secrets" / name
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.write_text(text)
        path.chmod(0o600)
        return path

    def cut(self, site: str) -> None:
        """Take the site's link down: nothing reaches it and nothing leaves it."""
        run(["ip", "-n", NAMESPACES[site], "link", "set", f"rfdr-{site}0", "down"])

    def spawn(self, site: str, name: str, argv: list[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start a long-running process in the site's namespace; its output goes to logs/<name>.log."""
        log = (self.folder / "logs" / f"{name}.log").open("ab")
        process = subprocess.Popen(in_namespace(site, argv), stdout=log, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL, start_new_session=True, cwd=cwd)
        log.close()
        self.processes[name] = process
        return process

    def stop(self, name: str) -> None:
        """Stop one process started by `spawn` (SIGTERM, then SIGKILL after a grace period)."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_GRACE_SECONDS)

    def keep_logs(self) -> Path:
        """Copy the world's logs (processes and PostgreSQL) out of the private folder before it goes."""
        target = Path(tempfile.mkdtemp(prefix="rfdr-logs-"))
        for log in [*self.folder.glob("logs/*.log"), *self.folder.glob("*/postgres/server.log")]:
            shutil.copy(log, target / (log.parent.parent.name + "-" + log.name if log.name == "server.log" else log.name))
        return target

    def kill_site(self, site: str) -> None:
        """SIGKILL every process in the site's namespace (a region going dark), without deleting it."""
        for pid in _namespace_pids(NAMESPACES[site]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for name, process in list(self.processes.items()):
            if process.poll() is not None:
                process.wait()
                self.processes.pop(name)

    def teardown(self) -> None:
        """Stop every process, delete the namespaces and the private folder. Safe to call twice."""
        for process in self.processes.values():
            with contextlib.suppress(OSError):
                process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS  # one grace period for all, not one each
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
        self.processes.clear()
        for name in NAMESPACES.values():
            if name in existing_namespaces():
                _kill_namespace(name)
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
        shutil.rmtree(self.folder, ignore_errors=True)

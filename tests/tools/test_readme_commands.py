"""The front door stays true: every `python -m` command and `make` target the README and the runbooks give
exists, and the first-deployment section walks through what a first deploy over a live account needs."""

from __future__ import annotations

import re

from tools.offline import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs" / "runbooks").glob("*.md"))]


def test_every_python_module_the_docs_name_exists():
    named = {m for doc in DOCS for m in re.findall(r"python -m ([a-z_][a-z_.]*[a-z_])(?![.a-z_])", doc.read_text())}
    named -= {"pytest"}  # the test runner, installed from requirements.txt
    assert {"tools.plan", "tools.adopt", "tools.image", "tools.failover", "tools.secrets"} <= named
    for module in sorted(named):
        path = ROOT.joinpath(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), f"{module} is not in the repo"


def test_every_make_target_the_docs_name_exists():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    named = {t for doc in DOCS for t in re.findall(r"`make ([a-z][a-z-]*)", doc.read_text())}
    assert {"plan", "test", "image"} <= named
    assert named <= targets, f"documented but not in the Makefile: {sorted(named - targets)}"


def test_the_first_deployment_section_covers_adoption_the_registry_rebuild_and_the_redeploy():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## First deployment"):readme.index("## Scheduled database backups")]
    for needed in ("python -m tools.adopt dr --yes", "make image STACK=prod", "docs/runbooks/rebuild.md",
                   "state: existing", "variableStates", "deploy.generation", "redeploy"):
        assert needed in section, needed
    assert (ROOT / "docs" / "runbooks" / "rebuild.md").is_file()

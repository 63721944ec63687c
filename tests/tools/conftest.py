"""Fixtures of the operator-command tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.offline import ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with copies of Pulumi.yaml and both stack files, for a command's `--project-dir`: what it does to
    a stack file shows there, never in the repository."""
    folder = tmp_path / "project"
    folder.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dr.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, folder / name)
    return folder

"""Copies of the source tree as a user gets it: a release tarball or ``git archive``.

A checkout has things a tarball has not: ``.git`` (so ``git rev-parse`` works),
``.venv`` (so programs find the development interpreter), build output and
caches. Tests that must not depend on them (building the wheel, the benchmark run
from an exported tree) work on :func:`export_tree`'s copy. It is a plain copy
rather than ``git archive`` so that it also works where the suite itself runs
from a tarball, and so that it includes uncommitted work under test.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: What an exported tree lacks: VCS, venvs, caches, build and benchmark output.
NOT_EXPORTED = (
    ".git",
    ".venv",
    "__pycache__",
    "build",
    "dist",
    "*.egg-info",
    ".*_cache",
    "out",  # bench/out
)


def export_tree(dest: Path) -> Path:
    """Copy the repository to ``dest`` (which must not exist) without NOT_EXPORTED."""
    shutil.copytree(REPO_ROOT, dest, ignore=shutil.ignore_patterns(*NOT_EXPORTED), symlinks=True)
    return dest

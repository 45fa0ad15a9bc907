"""Shared test fixtures: where the offline benchmark copies are, and small real inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_benchmarks_dir() -> Path | None:
    """The offline benchmark copies beside the checkout (../shared/benchmarks), or $SEED_CODER_BENCHMARKS_DIR."""
    env = os.environ.get("SEED_CODER_BENCHMARKS_DIR")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared" / "benchmarks"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    path = shared_benchmarks_dir()
    if path is None:
        pytest.skip("offline benchmark copies not found (../shared/benchmarks or $SEED_CODER_BENCHMARKS_DIR)")
    return path

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


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random tiny Llama with a BPE tokenizer trained on stdlib code, built once per test session (~10 s)."""
    from recipes.local_code import stdlib_python_files
    from recipes.tiny_model import TinyModelConfig, build_tiny_model

    output = tmp_path_factory.mktemp("tiny-model")
    return build_tiny_model(output, stdlib_python_files(limit_files=150), TinyModelConfig(vocab_size=1024))

"""Shared test fixtures: where the offline benchmark copies are, and small real inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.benchmarks import local_benchmarks_dir

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    path = local_benchmarks_dir()
    if path is None:
        pytest.skip("offline benchmark copies not found (../shared/benchmarks or $SEED_CODER_BENCHMARKS_DIR)")
    return Path(path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random tiny Llama with a BPE tokenizer trained on stdlib code, built once per test session (~10 s)."""
    from recipes.local_code import stdlib_python_files
    from recipes.tiny_model import TinyModelConfig, build_tiny_model

    output = tmp_path_factory.mktemp("tiny-model")
    return build_tiny_model(output, stdlib_python_files(limit_files=150), TinyModelConfig(vocab_size=1024))

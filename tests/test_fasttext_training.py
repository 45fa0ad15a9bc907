"""The one fastText training entry point: dim >= 100 enforced, a diverged run retried."""

from __future__ import annotations

import pytest

from datatrove_pipelines import fasttext_training
from datatrove_pipelines.fasttext_training import train_supervised

LINES = [f"__label__{'a' if i % 2 else 'b'} word{i % 7} other{i % 5} " + "x " * (i % 13) for i in range(500)]
PARAMS = {"dim": 100, "epoch": 5, "thread": 1, "seed": 0, "verbose": 0}


@pytest.fixture
def train_file(tmp_path) -> str:
    path = tmp_path / "train.txt"
    path.write_text("\n".join(LINES) + "\n")
    return str(path)


def test_trains_a_real_model(train_file: str) -> None:
    model, lr = train_supervised(train_file, lr=0.5, wordNgrams=2, bucket=100_000, **PARAMS)
    assert lr in (0.5, 0.25, 0.125)
    labels, _ = model.predict("word1 other1")
    assert labels[0] in ("__label__a", "__label__b")


def test_small_dims_are_refused(train_file) -> None:
    with pytest.raises(ValueError, match="dim must be >= 100"):
        train_supervised(train_file, lr=0.1, **{**PARAMS, "dim": 50})


def test_an_occasional_divergence_is_retried_at_half_the_rate(train_file: str, monkeypatch) -> None:
    """STAND-IN for fastText's occasional NaN, which cannot be produced on demand: a trainer that fails its first two
    runs with fastText's error, then trains for real."""
    rates: list[float] = []
    real = fasttext_training._train_in_fresh_process

    def flaky(params, output):
        rates.append(params["lr"])
        if len(rates) <= 2:
            raise RuntimeError("Encountered NaN.")
        real(params, output)

    monkeypatch.setattr(fasttext_training, "_train_in_fresh_process", flaky)
    model, lr = fasttext_training.train_supervised(train_file, lr=0.4, wordNgrams=2, bucket=1000, **PARAMS)
    assert rates == [0.4, 0.2, 0.1] and lr == 0.1
    assert model.predict("word1 other1")[0][0] in ("__label__a", "__label__b")


def test_every_attempt_diverging_raises_the_last_error(train_file: str, monkeypatch) -> None:
    def diverges(params, output):
        raise RuntimeError("Encountered NaN.")

    monkeypatch.setattr(fasttext_training, "_train_in_fresh_process", diverges)
    with pytest.raises(RuntimeError, match="NaN"):
        fasttext_training.train_supervised(train_file, lr=0.4, attempts=3, **PARAMS)


def test_training_runs_in_a_fresh_interpreter(train_file: str, monkeypatch) -> None:
    """The process that asks never trains: fastText here diverges depending on the state of the process that trains,
    so a broken in-process trainer must not matter."""
    import fasttext

    def broken(**kwargs):
        raise AssertionError("trained in the calling process")

    monkeypatch.setattr(fasttext, "train_supervised", broken)
    model, _ = train_supervised(train_file, lr=0.5, wordNgrams=2, bucket=100_000, **PARAMS)
    assert len(model.get_labels()) == 2


def test_a_bad_parameter_is_a_clear_error_not_a_retry(train_file: str) -> None:
    with pytest.raises(ValueError, match="Unrecognized loss name"):
        train_supervised(train_file, lr=0.5, loss="no-such-loss", **PARAMS)
    with pytest.raises(ValueError, match="cannot be opened"):
        train_supervised(train_file + ".missing", lr=0.5, **PARAMS)

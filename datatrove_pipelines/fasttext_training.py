"""fastText supervised training, the one way every stage calls it (quality scorer, high-quality recall, web recall).

The fastText build that installs with numpy 2 (``fasttext-numpy2-wheel``) fails some runs with "Encountered NaN":
always below ``dim=100`` or without word n-gram buckets (``wordNgrams=1, bucket=0``), and otherwise now and then,
not reproducibly: the same file, seed and single thread trained 7 times out of 8 in one process (measured, at
learning rates from 0.1 to 0.5). So training here insists on ``dim >= 100`` and retries a diverged run, at the same
learning rate once and then at half of it (``lr / 2 ** (attempt // 2)``); the learning rate that trained is returned
with the model.
"""

from __future__ import annotations

from typing import Any

MIN_DIM = 100  # below this the numpy-2 wheel's supervised training gives NaN
DEFAULT_ATTEMPTS = 6


def train_supervised(input: str, *, lr: float, dim: int = MIN_DIM, attempts: int = DEFAULT_ATTEMPTS, **params: Any):
    """``fasttext.train_supervised(input=..., lr=..., dim=..., **params)``; a run that diverges (NaN) is retried, up to
    ``attempts`` runs, at ``lr / 2 ** (attempt // 2)``. Returns ``(model, learning rate used)``; raises the last error
    when every attempt diverged."""
    import fasttext

    if dim < MIN_DIM:
        raise ValueError(f"fastText dim must be >= {MIN_DIM} (got {dim}): smaller dims give NaN with this build")
    fasttext.FastText.eprint = lambda *args, **kwargs: None  # the "load_model" warning on every load
    for attempt in range(attempts):
        rate = lr / 2 ** (attempt // 2)
        try:
            return fasttext.train_supervised(input=input, lr=rate, dim=dim, **params), rate
        except RuntimeError as error:
            if "NaN" not in str(error) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")

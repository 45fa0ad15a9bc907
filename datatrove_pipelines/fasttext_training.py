"""fastText supervised training, the one way every stage calls it (quality scorer, high-quality recall, web recall).

The fastText builds available here (``fasttext-numpy2-wheel``, ``fasttext-numpy2`` and 0.9.3 built from source all
behave alike) fail some runs with "Encountered NaN": always below ``dim=100`` and without word n-gram buckets, and
otherwise depending on the state of the process that trains. The same file, seed and single thread that trained 30
times out of 30 in fresh interpreters diverged at every learning rate down to a quarter inside a long-running test
process (a CI run of the suite), and fresh interpreters are not fully deterministic either (dim 50: between 0 and 5
runs of 10 trained, same seeds). So training here

* insists on ``dim >= 100``;
* runs each attempt in a fresh interpreter (``subprocess``, which also works inside daemonic datatrove workers) that
  trains, saves the model and exits; the caller's process loads the saved model;
* retries a diverged run at half the learning rate each time (``lr / 2 ** attempt``) and returns the learning rate
  that trained together with the model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from typing import Any

MIN_DIM = 100  # below this the supervised training of these builds gives NaN
DEFAULT_ATTEMPTS = 5
NAN_MESSAGE = "Encountered NaN."

# what the fresh interpreter runs: only fastText and the standard library, so it needs nothing of this project
_TRAIN_PROGRAM = """
import json, sys
import fasttext
request = json.load(sys.stdin)
try:
    model = fasttext.train_supervised(**request["params"])
except Exception as error:
    print(json.dumps({"error": str(error), "type": type(error).__name__}))
    sys.exit(0)
model.save_model(request["output"])
print(json.dumps({"error": None}))
"""


def _train_in_fresh_process(params: dict[str, Any], output: str) -> None:
    """Train with ``fasttext.train_supervised(**params)`` in a new interpreter and save the model to ``output``;
    raises fastText's error (``ValueError`` for bad arguments or input, else ``RuntimeError``) when the run fails."""
    request = json.dumps({"params": params, "output": output})
    done = subprocess.run(
        [sys.executable, "-c", _TRAIN_PROGRAM], input=request, capture_output=True, text=True, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"fastText training process exited {done.returncode}: {done.stderr.strip()[-500:]}")
    result = json.loads(lines[-1])
    if result["error"]:
        raise (ValueError if result["type"] == "ValueError" else RuntimeError)(result["error"])


def load_model(path: str):
    """``fasttext.load_model`` without the warning it prints on every load."""
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None
    return fasttext.load_model(path)


def train_supervised_lines(lines: Iterable[str], *, lr: float, folder: str | None = None, **params: Any):
    """:func:`train_supervised` on training lines (``__label__X text``), written to a temporary file (in ``folder``;
    None: the system's) that is removed afterwards. Returns ``(model, learning rate used)``."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, dir=folder, encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
        path = handle.name
    try:
        return train_supervised(path, lr=lr, **params)
    finally:
        os.unlink(path)


def check_dim(dim: int) -> None:
    """A clear error for ``dim < 100``, where fastText's supervised training gives NaN with this build."""
    if dim < MIN_DIM:
        raise ValueError(f"fastText dim must be >= {MIN_DIM} (got {dim}): smaller dims give NaN with this build")


def train_supervised(input: str, *, lr: float, dim: int = MIN_DIM, attempts: int = DEFAULT_ATTEMPTS, **params: Any):
    """``fasttext.train_supervised(input=..., lr=..., dim=..., **params)`` in a fresh interpreter; a run that diverges
    (NaN) is retried, up to ``attempts`` runs, at ``lr / 2 ** attempt``. Returns ``(model, learning rate used)``;
    raises the last error when every attempt diverged."""
    check_dim(dim)
    with tempfile.TemporaryDirectory(prefix="fasttext-") as folder:
        output = os.path.join(folder, "model.bin")
        for attempt in range(attempts):
            rate = lr / 2**attempt
            try:
                _train_in_fresh_process({"input": os.path.abspath(input), "lr": rate, "dim": dim, **params}, output)
            except RuntimeError as error:
                if "NaN" not in str(error) or attempt == attempts - 1:
                    raise
                continue
            return load_model(output), rate
    raise AssertionError("unreachable")

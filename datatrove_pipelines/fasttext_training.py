"""fastText supervised training, the one way every stage calls it (quality scorer, high-quality recall, web recall).

The fastText builds available here (``fasttext-numpy2-wheel``, ``fasttext-numpy2`` and 0.9.3 built from source all
behave alike) read uninitialized memory when they train: ``DenseMatrix::uniform`` fills only ``thread`` tenths of the
input matrix (upstream's zero-initialised ``std::vector`` leaves the rest 0), and these builds do not zero what they
allocate, so the rest, and some smaller buffers, hold whatever the allocator hands back, NaN included. That is why
runs failed with "Encountered NaN" depending on the state of the process (a long test process failed at every learning
rate), on the number of hash buckets, below ``dim=100``, and why fresh interpreters were not deterministic
(measured with ``thread=1``, 1,000 buckets: 18 of 32 fresh runs failed; the input matrix of an ``epoch=0`` run held
NaN). So training here

* runs each attempt in a fresh interpreter (``subprocess``, which also works inside daemonic datatrove workers) whose
  allocator hands out zero-filled memory, as upstream's ``std::vector`` does: glibc's ``malloc.perturb`` tunable
  (read at start-up) fills every block it allocates with the complement of the perturb byte, so ``0xff`` gives
  zeros, and its per-thread cache, which returns blocks as they were freed, is turned off (``tcache_count=0``);
  blocks glibc maps from the system are zero already. The unfilled rows are then 0 as upstream intends, every run
  trains and a seeded single-thread run gives the same model (every configuration that failed or varied before:
  1,000 buckets, no buckets, dim 50, in interpreters with different environments), at no measurable cost (a
  small run takes 0.45-0.49 s with or without; 60K lines x 3 epochs: time ratio 0.85-1.06 over 5 interleaved
  pairs, median 0.95). Elsewhere than glibc the tunables are ignored;
* insists on ``dim >= 100``, the floor the project's stages were specified with;
* still retries a run that diverges at half the learning rate each time (``lr / 2 ** attempt``), for real divergence
  at a too-high rate, and returns the learning rate that trained together with the model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from typing import Any

MIN_DIM = 100  # the floor the stages were specified with (below it these builds gave NaN on uninitialized memory)
DEFAULT_ATTEMPTS = 5
NAN_MESSAGE = "Encountered NaN."
# glibc tunables of the training interpreter: every allocated block zero-filled (see the module docstring)
ZERO_FILLED_ALLOCATIONS = ("glibc.malloc.perturb=255", "glibc.malloc.tcache_count=0")

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


def training_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's) with glibc told to zero-fill every block it allocates
    (:data:`ZERO_FILLED_ALLOCATIONS`), added after any tunables the user set."""
    env = dict(os.environ if environ is None else environ)
    ours = ":".join(ZERO_FILLED_ALLOCATIONS)
    env["GLIBC_TUNABLES"] = f"{env['GLIBC_TUNABLES']}:{ours}" if env.get("GLIBC_TUNABLES") else ours
    return env


def _train_in_fresh_process(params: dict[str, Any], output: str) -> None:
    """Train with ``fasttext.train_supervised(**params)`` in a new interpreter whose allocations are zero-filled, and
    save the model to ``output``; raises fastText's error (``ValueError`` for bad arguments or input, else
    ``RuntimeError``) when the run fails."""
    request = json.dumps({"params": params, "output": output})
    done = subprocess.run(
        [sys.executable, "-c", _TRAIN_PROGRAM],
        input=request,
        capture_output=True,
        text=True,
        check=False,
        env=training_environment(),
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
    """A clear error for ``dim < 100``: every stage's floor (these builds gave NaN below it before training ran on
    zero-filled allocations; the stages were specified, and tested, from 100 up)."""
    if dim < MIN_DIM:
        raise ValueError(f"fastText dim must be >= {MIN_DIM} (got {dim}), the floor of this project's stages")


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

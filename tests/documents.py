"""Documents folders for the tests: written as a stage's input, read back from a stage's ``kept/`` or ``excluded/``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def write_docs(folder: Path, docs: list[dict], per_file: int | None = None) -> Path:
    """``docs`` as ``00000.jsonl.gz``, ``00001.jsonl.gz``, ... of ``per_file`` documents each (None: one file)."""
    folder.mkdir(parents=True, exist_ok=True)
    per_file = per_file or max(1, len(docs))
    for start in range(0, max(1, len(docs)), per_file):
        with gzip.open(folder / f"{start // per_file:05d}.jsonl.gz", "wt", encoding="utf-8") as handle:
            for doc in docs[start : start + per_file]:
                handle.write(json.dumps(doc) + "\n")
    return folder


def read_docs(folder: Path) -> list[dict]:
    """Every record of the ``*.jsonl.gz`` files of ``folder``, in file order."""
    records = []
    for path in sorted(Path(folder).glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    return records

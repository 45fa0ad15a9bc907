"""What a stage run was given, recorded in its output (``DIR/run.json``), so a rerun never presents stale data as new.

datatrove skips the tasks whose completion marker exists, whatever the inputs or settings were when they completed.
So before a stage runs, :func:`check_run_record` compares what this run is given (the input files with their sizes
and modification times, the card's settings, the runs and their task counts) with the record an earlier run left:

- no earlier run: the record is written and the stage runs;
- the same record: the stage resumes (completed tasks are skipped, so a killed run finishes exactly);
- another record: refused with a one-line error naming what changed, unless ``--overwrite``, which deletes the earlier
  run's outputs (``kept/``, ``excluded/``, ``logs/``, ``work/``, ``stats.json``, ``README.md``, ``run.json``) first.
  A different ``--tasks`` is refused with its own explanation: completed tasks cannot be re-split.

It also refuses an output folder inside an input folder (the run would read its own files as documents) and an
input inside the output folder, and hides machine paths in what is published (:func:`portable_paths`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from typing import Any

from datatrove.pipeline.readers.base import BaseDiskReader

from datatrove_pipelines.code_readers import FaultTolerantReaderMixin, SourceTreeReader, list_source_files
from datatrove_pipelines.executors import ExecutorConfig
from datatrove_pipelines.writers import FAST_GZIP, RankFileJsonlWriter, document_dict

# The runs and output are stage.StageRun / stage.StageOutput (not imported: stage imports this module).
StageRun = Any
StageOutput = Any

RECORD_FILE = "run.json"
RECORD_VERSION = 1
STAGE_OUTPUTS = ("kept", "excluded", "logs", "work", "stats.json", "README.md", RECORD_FILE)


# --------------------------------------------------------------------------------------------------------------------
# Paths that say nothing about the machine
# --------------------------------------------------------------------------------------------------------------------


def portable_path(path: str, cwd: str | None = None) -> str:
    """An absolute local path relative to the working directory, or its name alone when it lies outside it; other
    strings (relative paths, URLs, ``--flag=/abs/path`` forms are handled) unchanged."""
    if "://" in path:
        return path
    flag, equals, value = path.partition("=")
    if equals and flag.startswith("-") and os.path.isabs(value):
        return f"{flag}={portable_path(value, cwd)}"
    if not os.path.isabs(path):
        return path
    cwd = cwd or os.getcwd()
    relative = os.path.relpath(path, cwd)
    if relative == os.curdir or relative.startswith(os.pardir):
        return os.path.basename(os.path.normpath(path)) or path
    return relative


def portable_paths(value: Any) -> Any:
    """``value`` (settings, a command line) with :func:`portable_path` applied to every string in it."""
    if isinstance(value, str):
        if " " in value and "/" in value:  # a command line: each word
            import shlex

            try:
                return shlex.join(portable_path(word) for word in shlex.split(value))
            except ValueError:
                return value
        return portable_path(value)
    if isinstance(value, dict):
        return {key: portable_paths(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(portable_paths(item) for item in value)
    return value


# --------------------------------------------------------------------------------------------------------------------
# Readers: exclusion writers and input fingerprints
# --------------------------------------------------------------------------------------------------------------------


def inject_read_exclusion_writers(runs: Sequence[StageRun], output_dir: str) -> None:
    """Give each fault-tolerant reader that counts in the funnel and has no exclusion writer one writing to
    ``excluded/read/`` (one file per task and reader, since readers of one task run one after the other)."""
    for run in runs:
        readers = [
            step
            for step in run.pipeline
            if isinstance(step, FaultTolerantReaderMixin) and step.count_in_funnel and step.exclusion_writer is None
        ]
        for number, reader in enumerate(readers):
            name = "${rank}.jsonl.gz" if len(readers) == 1 else f"${{rank}}-input{number}.jsonl.gz"
            reader.exclusion_writer = RankFileJsonlWriter(
                os.path.join(output_dir, "excluded", "read"),
                output_filename=name,
                compression=FAST_GZIP,
                adapter=document_dict,
            )


def _local_folder(step: Any) -> str | None:
    """The local folder a reader reads, if it reads one."""
    if isinstance(step, SourceTreeReader):
        return os.path.realpath(step.input_dir)
    if isinstance(step, BaseDiskReader):
        folder = step.data_folder
        if getattr(folder.fs, "protocol", None) in ("file", ("file", "local")) or "file" in (folder.fs.protocol or ()):
            return os.path.realpath(folder.path)
    return None


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def input_fingerprint(step: Any) -> dict[str, Any] | None:
    """What a reader reads, as a comparable record: its location and a digest of its files' names, sizes and
    modification times (None for a step that is not a reader)."""
    digest = hashlib.sha256()
    count = size = 0
    if isinstance(step, SourceTreeReader):
        location = os.path.realpath(step.input_dir)
        for _, relative, file_path, _ in list_source_files(step.input_dir, step.config.follow_symlinks):
            try:
                stat = os.stat(file_path)
                entry = (relative, stat.st_size, stat.st_mtime_ns)
                size += stat.st_size
            except OSError:
                entry = (relative, -1, -1)
            digest.update(repr(entry).encode("utf-8", errors="surrogatepass"))
            count += 1
    elif isinstance(step, BaseDiskReader):
        folder = step.data_folder
        location = folder.unstrip_protocol(folder.path) if hasattr(folder, "unstrip_protocol") else folder.path
        if step.paths_file:
            from datatrove.io import open_file

            with open_file(step.paths_file, mode="rt") as handle:
                files = [line.strip() for line in handle if line.strip()]
        else:
            files = folder.list_files(recursive=step.recursive, glob_pattern=step.glob_pattern)
        for name in sorted(files):
            try:
                info = folder.info(name)
                entry = (name, info.get("size"), str(info.get("mtime") or info.get("LastModified") or ""))
                size += int(info.get("size") or 0)
            except (OSError, ValueError):
                entry = (name, -1, "")
            digest.update(repr(entry).encode("utf-8", errors="surrogatepass"))
            count += 1
        location = f"{location}:{step.glob_pattern or '*'}"
    elif hasattr(step, "dataset") and hasattr(step, "dataset_options"):  # a Hub dataset: its id and options
        return {"dataset": step.dataset, "options": json.loads(json.dumps(step.dataset_options, default=str))}
    else:
        return None
    return {"location": location, "files": count, "bytes": size, "digest": digest.hexdigest()[:32]}


# --------------------------------------------------------------------------------------------------------------------
# The record and the checks
# --------------------------------------------------------------------------------------------------------------------


def _task_count(run: StageRun, executor: ExecutorConfig) -> int:
    return run.tasks if run.tasks is not None else executor.tasks


def run_record(runs: Sequence[StageRun], executor: ExecutorConfig, output: StageOutput, job_name: str) -> dict:
    """This run's record: the stage, its settings, its runs (steps and tasks) and its inputs."""
    output_dir = os.path.realpath(output.output_dir) if "://" not in output.output_dir else output.output_dir
    inputs = []
    for run in runs:
        for step in run.pipeline:
            folder = _local_folder(step)
            if folder is not None and _inside(folder, output_dir):
                continue  # the stage's own intermediate files
            fingerprint = input_fingerprint(step)
            if fingerprint is not None:
                inputs.append(fingerprint)
    return {
        "version": RECORD_VERSION,
        "stage": job_name,
        "settings": json.loads(json.dumps(output.card.settings, default=str, sort_keys=True)),
        "runs": [
            {"name": run.name, "tasks": _task_count(run, executor), "steps": [type(s).__name__ for s in run.pipeline]}
            for run in runs
        ],
        "executor": executor.executor,
        "inputs": inputs,
    }


def _refuse(message: str) -> None:
    raise SystemExit(f"error: {message}")


def check_input_output_folders(runs: Sequence[StageRun], output_dir: str) -> None:
    """Refuse an output folder inside an input folder of the first run, and an input inside the output folder."""
    if "://" in output_dir or not runs:
        return
    output = os.path.realpath(output_dir)
    for step in runs[0].pipeline:
        folder = _local_folder(step)
        if folder is None:
            continue
        top_level_only = (
            isinstance(step, BaseDiskReader)
            and step.glob_pattern
            and not any(mark in step.glob_pattern for mark in ("**", "/"))
        )  # e.g. a single input file: the reader never descends into the output folder beside it
        if _inside(output, folder) and not (top_level_only and output != folder):
            _refuse(
                f"--output {output_dir} is inside the input folder {portable_path(folder)}: the run would read its own"
                " outputs as documents; choose an output folder outside the input"
            )
        if _inside(folder, output):
            _refuse(
                f"the input {portable_path(folder)} is inside --output {output_dir}: the run would replace what it "
                "reads; choose another --output"
            )


def _differences(old: dict, new: dict) -> list[str]:
    changed = [key for key in ("stage", "settings", "inputs", "executor") if old.get(key) != new.get(key)]
    old_runs = [(run.get("name"), run.get("steps")) for run in old.get("runs", [])]
    new_runs = [(run.get("name"), run.get("steps")) for run in new.get("runs", [])]
    if old_runs != new_runs:
        changed.append("steps")
    elif [run.get("tasks") for run in old["runs"]] != [run.get("tasks") for run in new["runs"]]:
        changed.append("tasks")
    if old.get("version") != new.get("version"):
        changed.append("record version")
    return changed


def clear_stage_outputs(output_dir: str) -> None:
    """Delete an earlier run's outputs (only the entries a stage writes; anything else in the folder stays)."""
    for name in STAGE_OUTPUTS:
        path = os.path.join(output_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def check_run_record(runs: Sequence[StageRun], executor: ExecutorConfig, output: StageOutput, job_name: str) -> dict:
    """Resume, refuse or start over (see the module docstring); writes ``DIR/run.json`` and returns the record."""
    output_dir = output.output_dir
    check_input_output_folders(runs, output_dir)
    record = run_record(runs, executor, output, job_name)
    if "://" in output_dir:  # remote output: the record is written, not compared (datatrove's markers decide)
        return record
    path = os.path.join(output_dir, RECORD_FILE)
    earlier: dict | None = None
    if os.path.isfile(path):
        try:
            with open(path) as handle:
                earlier = json.load(handle)
        except (OSError, ValueError):
            earlier = {}
    elif any(os.path.exists(os.path.join(output_dir, name)) for name in ("kept", "logs", "stats.json")):
        earlier = {}  # outputs without a record (an older version, or another tool): cannot be trusted to match
    if earlier is not None and earlier != record:
        if not executor.overwrite:
            changed = _differences(earlier, record) if earlier else ["no record of its inputs (run.json)"]
            if changed == ["tasks"]:
                old = ", ".join(f"{run['name']}={run['tasks']}" for run in earlier["runs"])
                _refuse(
                    f"{output_dir} holds an unfinished or finished run with other task counts ({old}): its completed "
                    "tasks cannot be re-split; rerun with the same --tasks to resume it, or pass --overwrite to start "
                    "over (or choose a new --output)"
                )
            _refuse(
                f"{output_dir} holds an earlier run with different {', '.join(changed)}: its outputs would be presented"
                " as this run's; pass --overwrite to replace them (or choose a new --output)"
            )
        clear_stage_outputs(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    with open(path, "w") as handle:
        json.dump(record, handle, indent=2)
    return record

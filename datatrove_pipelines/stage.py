"""Running a data stage the same way everywhere: its datatrove runs in order, then ``stats.json``, the card, the upload.

A Seed-Coder data stage (code files, quality score, high-quality subset, repository context, FIM, tokenization,
commits, web) is one or more datatrove runs chained with ``depends=``; each run is a list of ``PipelineStep``s with
its own logging folder (``DIR/logs/<run>``). When the last run is done, :func:`finish_stage` merges the funnel
counters of every run into ``DIR/stats.json`` (raising if documents in != kept + Σ excluded), writes the dataset card
``DIR/README.md`` and uploads when asked. On Slurm the submitting process does not wait, so a last single-task run
(:class:`FinishStageStep`) does it there.

A rerun into the same folder resumes only when it was given the same inputs and settings (``DIR/run.json``, see
:mod:`datatrove_pipelines.run_record`); otherwise it is refused unless ``--overwrite``.

The CLI side is shared too: :func:`add_stage_arguments` (``--input``, ``--output``, executor and Hub flags, and
``--overwrite`` / ``--verbose``),
:func:`resolve_documents_dir` (DOCS is a documents folder or a run folder with ``kept/``), :func:`documents_reader`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import JsonlReader

from datatrove_pipelines.code_readers import FaultTolerantJsonlReader
from datatrove_pipelines.executors import (
    ExecutorConfig,
    add_executor_arguments,
    build_executor,
    executor_config_from_args,
    stage_logging,
)
from datatrove_pipelines.hub import add_hub_arguments, dataset_card, push_to_hub, write_card
from datatrove_pipelines.run_record import check_run_record, inject_read_exclusion_writers, portable_paths
from datatrove_pipelines.stats import format_funnel, write_stats

DOCUMENT_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")


@dataclass
class StageRun:
    """One datatrove run of a stage: a name (its logging folder ``logs/<name>``), its steps, and its task count
    (None: the executor's ``--tasks``; e.g. 1 for a run that needs a global view)."""

    name: str
    pipeline: list[PipelineStep]
    tasks: int | None = None


@dataclass
class StageCard:
    """What the dataset card says about a stage's output (the funnel comes from ``stats.json``)."""

    pretty_name: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)
    data_files: str = "kept/*.jsonl.gz"
    tags: Sequence[str] = ("code", "seed-coder", "datatrove")


@dataclass
class StageOutput:
    """Where a stage writes and what it publishes."""

    output_dir: str
    card: StageCard
    command: str | None = None  # the command line, shown in the card
    push_to_hub: str | None = None  # dataset repo id
    hub_private: bool = False

    def logging_dir(self, run: str) -> str:
        return os.path.join(self.output_dir, "logs", run)


def finish_stage(output: StageOutput, runs: Sequence[str]) -> dict[str, Any]:
    """After the last run: ``stats.json`` (with the funnel check), the dataset card, and the upload if asked."""
    logging_dirs = [output.logging_dir(run) for run in runs]
    stats = write_stats(output.output_dir, [d for d in logging_dirs if "://" in d or os.path.isdir(d)])
    card = dataset_card(
        pretty_name=output.card.pretty_name,
        description=output.card.description,
        stats=stats,
        settings=portable_paths(output.card.settings),
        command=portable_paths(output.command),
        data_files=output.card.data_files,
        tags=output.card.tags,
    )
    write_card(output.output_dir, card)
    if output.push_to_hub:
        print(f"pushed to {push_to_hub(output.output_dir, output.push_to_hub, private=output.hub_private)}")
    return stats


class FinishStageStep(PipelineStep):
    """The last single-task run on Slurm, where the submitting process does not wait: :func:`finish_stage`."""

    type = "📊 - STATS"
    name = "funnel"

    def __init__(self, output: StageOutput, runs: Sequence[str]):
        super().__init__()
        self.output = output
        self.runs = list(runs)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        print(format_funnel(finish_stage(self.output, self.runs)))
        yield from ()


def build_stage_executors(runs: Sequence[StageRun], executor: ExecutorConfig, output: StageOutput, job_name: str):
    """The chained executors of ``runs`` (plus the finishing run on Slurm)."""
    executors = []
    previous = None
    for run in runs:
        previous = build_executor(
            run.pipeline,
            executor,
            output.logging_dir(run.name),
            job_name=f"{job_name}_{run.name}",
            depends=previous,
            tasks=run.tasks,
        )
        executors.append(previous)
    if executor.executor == "slurm":
        finish = FinishStageStep(output, [run.name for run in runs])
        executors.append(
            build_executor([finish], executor, output.logging_dir("stats"), f"{job_name}_stats", previous, tasks=1)
        )
    return executors


def run_stage(
    runs: Sequence[StageRun], executor: ExecutorConfig, output: StageOutput, job_name: str
) -> dict[str, Any] | None:
    """Run (or, on Slurm, submit) the runs in order, then finish; returns the stats (None on Slurm).

    Before anything runs: the output folder is checked against the inputs (never inside one) and against the record
    of an earlier run there (``DIR/run.json``: inputs, settings, tasks). The same record resumes (completed tasks are
    skipped); another one is refused with a one-line error unless ``executor.overwrite``, which starts over. Readers
    of the first run without an exclusion writer get ``excluded/read/``. Library logs go to ``DIR/logs/stage.log``
    (and the tasks' own files) unless ``executor.verbose``; the CLI prints one line per run."""
    inject_read_exclusion_writers(runs, output.output_dir)
    check_run_record(runs, executor, output, job_name)
    executors = build_stage_executors(runs, executor, output, job_name)
    log_file = os.path.join(output.output_dir, "logs", "stage.log") if "://" not in output.output_dir else None
    if log_file:
        os.makedirs(os.path.dirname(log_file), exist_ok=True)
    with stage_logging(log_file, executor.verbose or executor.executor != "local"):
        if executor.executor == "slurm":
            executors[-1].run()  # launching the last job submits its dependencies first
            print(
                f"submitted; {output.output_dir}/stats.json and README.md (the dataset card) are written by the "
                "last job"
            )
            return None
        for number, (run, stage_executor) in enumerate(zip(runs, executors, strict=True), start=1):
            # in order: each run needs the files of the previous one
            start = time.perf_counter()
            tasks = stage_executor.world_size
            print(f"[{number}/{len(runs)}] {job_name} {run.name}: {tasks} task{'s' * (tasks != 1)} …", flush=True)
            stage_executor.run()
            print(f"[{number}/{len(runs)}] {job_name} {run.name}: done in {time.perf_counter() - start:.1f} s")
        return finish_stage(output, [run.name for run in runs])


def run_config_stage(
    runs: Sequence[StageRun], config: Any, card: StageCard, command: str | None, job_name: str
) -> dict[str, Any] | None:
    """:func:`run_stage` for a stage config with the usual fields (``output_dir``, ``executor``, ``push_to_hub``,
    ``hub_private``); ``command`` (the command line) goes into the card. Returns the stats (None on Slurm)."""
    output = StageOutput(config.output_dir, card, command, config.push_to_hub, config.hub_private)
    return run_stage(runs, config.executor, output, job_name)


def run_amended_stage(
    runs: Sequence[StageRun],
    config: Any,
    card: StageCard,
    command: str | None,
    job_name: str,
    amend: Callable[[dict[str, Any], StageOutput], None],
    upload: Sequence[str],
) -> dict[str, Any] | None:
    """:func:`run_stage` for a stage whose ``stats.json`` gets more after its runs: ``amend(stats, output)`` adds to
    the stats (and may write more files), ``stats.json`` is written again, then ``--push-to-hub`` uploads ``upload``.
    On Slurm (returns None) the finishing job uploads, without the additions. ``config`` has ``output_dir``,
    ``executor``, ``push_to_hub`` and ``hub_private``."""
    push_in_stage = config.push_to_hub if config.executor.executor == "slurm" else None
    output = StageOutput(config.output_dir, card, command, push_in_stage, config.hub_private)
    stats = run_stage(runs, config.executor, output, job_name)
    if stats is None:
        return None
    amend(stats, output)
    write_amended_stats(config.output_dir, stats)
    if config.push_to_hub:
        url = push_to_hub(config.output_dir, config.push_to_hub, include=upload, private=config.hub_private)
        print(f"pushed to {url}")
    return stats


def write_amended_stats(output_dir: str, stats: dict[str, Any]) -> None:
    """``DIR/stats.json`` again, with what the stage added to the funnel's stats."""
    with open(os.path.join(output_dir, "stats.json"), "w") as handle:
        json.dump(stats, handle, indent=2)


# --------------------------------------------------------------------------------------------------------------------
# The CLI side
# --------------------------------------------------------------------------------------------------------------------


def resolve_documents_dir(path: str) -> str:
    """``DOCS/kept`` when DOCS is a pipeline output folder, else DOCS itself; a clear error when there is nothing."""
    kept = os.path.join(path, "kept")
    folder = kept if os.path.isdir(kept) else path
    if "://" not in folder:
        if os.path.isfile(folder):
            raise SystemExit(f"error: input {path} is a file; give the folder of documents that holds it")
        if not os.path.isdir(folder):
            raise SystemExit(f"error: input folder {path} does not exist")
        if not any(name.endswith(DOCUMENT_SUFFIXES) for _, _, names in os.walk(folder) for name in names):
            raise SystemExit(f"error: no .jsonl[.gz] documents under {folder}")
    return folder


def documents_reader(path: str, **kwargs) -> JsonlReader:
    """A reader of the documents of DOCS (a documents folder, or a run folder whose ``kept/`` is read).

    Fault-tolerant (:class:`~datatrove_pipelines.code_readers.FaultTolerantJsonlReader`): every record is counted
    in the ``read`` funnel step, and one that is not UTF-8, not JSON, not an object, without string text, or cut
    off in a compressed file is excluded with its reason, file and line (``excluded/read/`` under ``run_stage``);
    the records around it are read. Takes JsonlReader's keyword arguments."""
    return FaultTolerantJsonlReader(resolve_documents_dir(path), **kwargs)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--config FILE.yaml``: the stage's flags as YAML keys (``max-size-bytes`` or ``max_size_bytes``); see
    :func:`parse_stage_args`."""
    parser.add_argument("--config", metavar="YAML", default=None, help="flags as YAML keys; command-line flags win")


def parse_stage_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` as alignment-handbook recipes are read: ``--config FILE.yaml`` supplies the values (keys are the
    flags' names), flags given on the command line override them. An unknown key is an error naming it."""
    from datatrove_pipelines.yaml_files import YamlFileError, read_yaml

    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--config", default=None)
    known, _ = probe.parse_known_args(argv)
    accumulated: dict[str, Any] = {}  # extend/append flags: a value on the command line replaces the file's
    if known.config:
        try:
            values = read_yaml(known.config) or {}
        except YamlFileError as error:
            parser.error(f"--config: {error}")
        if not isinstance(values, dict):
            parser.error(f"--config {known.config}: expected a mapping of flag names to values")
        actions = {action.dest: action for action in parser._actions}
        values = {str(key).replace("-", "_"): value for key, value in values.items()}
        unknown = sorted(key for key in values if key not in actions or key in ("help", "config"))
        if unknown:
            parser.error(f"--config {known.config}: unknown keys {', '.join(unknown)}")
        for key, value in values.items():
            action = actions[key]
            if action.nargs in ("+", "*") and not isinstance(value, list):
                value = [value]
            action.required = False  # given by the file
            if isinstance(action, (argparse._AppendAction, argparse._ExtendAction)):
                accumulated[key], action.default = value, None
            else:
                action.default = value
    args = parser.parse_args(argv)
    for key, value in accumulated.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def add_stage_arguments(
    parser: argparse.ArgumentParser,
    input_help: str = "documents (a folder, or a run folder with kept/)",
    input_nargs: str | None = None,
    input_action: str | None = None,
):
    """``--config``, ``--input``, ``--output``, the executor flags and the Hub flags every data stage takes.

    ``input_nargs="+"`` takes several inputs; with ``input_action="extend"`` a repeated ``--input`` (or one given
    on the command line after a ``--config`` that has inputs) adds to them, without it the last one wins."""
    add_config_argument(parser)
    options: dict[str, Any] = {"nargs": input_nargs} if input_nargs else {}
    if input_action:
        options["action"] = input_action
    parser.add_argument("--input", required=True, help=input_help, **options)
    add_output_arguments(parser)


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--output``, the executor flags and the Hub flags: what a stage takes whatever its input flag is."""
    parser.add_argument(
        "--output", required=True, help="output folder: kept/, excluded/<step>/, stats.json, README.md"
    )
    add_executor_arguments(parser)
    add_hub_arguments(parser)


def stage_card_settings(config: Any, drop: Sequence[str] = ()) -> dict[str, Any]:
    """A stage config as the dataset card's settings (also recorded in ``run.json``): every step's config, without
    where the outputs go, how the stage ran, ``drop`` (e.g. the inputs) and where the decontamination index is cached
    (which changes no decision)."""
    settings = dataclasses.asdict(config)
    for machine_specific in ("output_dir", "executor", "push_to_hub", "hub_private", *drop):
        settings.pop(machine_specific)
    for cache in ("cache_dir", "cache_index"):
        settings.get("decontamination", {}).pop(cache, None)
    return settings


def stage_config_fields(args: argparse.Namespace) -> dict[str, Any]:
    """``executor``, ``push_to_hub`` and ``hub_private``, the fields every stage config fills from the flags of
    :func:`add_output_arguments`: ``StageConfig(input=..., ..., **stage_config_fields(args))``."""
    return {
        "executor": executor_config_from_args(args),
        "push_to_hub": args.push_to_hub,
        "hub_private": args.hub_private,
    }


def stage_main(
    module: str,
    argv: Sequence[str] | None,
    parse_args: Callable[[list[str]], Any],
    run: Callable[[Any, str], dict[str, Any] | None],
    errors: tuple[type[Exception], ...] = (),
    command_prefix: Sequence[str] = (),
) -> dict[str, Any] | None:
    """A stage's ``main``: parse ``argv`` (``sys.argv[1:]`` when None) into its config, run it with the command line
    for the card (``python -m MODULE [COMMAND_PREFIX] ARGV``), print the funnel; returns the stats (None on Slurm) for
    the stage to print more. An exception of ``errors`` (wrong input the user can fix) becomes a one-line
    ``error: ...`` exit instead of a traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        config = parse_args(argv)
    except ValueError as error:  # a config's own check of the parsed values (its __post_init__): wrong usage
        print(f"python -m {module}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        stats = run(config, command_line(module, [*command_prefix, *argv]))
    except errors as error:
        raise SystemExit(f"error: {error}") from None
    if stats is not None:
        print(format_funnel(stats))
    return stats


def command_line(module: str, argv: Sequence[str]) -> str:
    """The command that ran, for the dataset card: absolute paths are shown relative to the working directory (a
    path outside it by its name only), so the card does not publish the machine's layout."""
    return shlex.join(["python", "-m", module, *(portable_paths(arg) for arg in argv)])

"""How a data stage runs: locally, on Slurm or on Ray, through datatrove's executors, chosen by ``--executor``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

from datatrove.executor import LocalPipelineExecutor

EXECUTORS = ("local", "slurm", "ray")


@dataclass
class ExecutorConfig:
    """How to run a pipeline: locally (default), on Slurm or on Ray, through datatrove's executors."""

    executor: str = "local"  # local | slurm | ray
    tasks: int = 1
    workers: int = -1  # simultaneous tasks; -1 = all tasks at once
    partition: str | None = None  # slurm only (required there)
    time: str = "24:00:00"  # slurm only
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0
    qos: str = "normal"  # slurm only
    venv_path: str | None = None  # slurm only: activated in each job
    sbatch_args: dict[str, str] = field(default_factory=dict)  # slurm only: extra #SBATCH options
    skip_completed: bool = True  # re-runs skip tasks that completed before (datatrove's completions/ markers)
    overwrite: bool = False  # replace an earlier run in the output folder made with other inputs or settings
    verbose: bool = False  # library logs (datatrove's loguru) on stderr too, not only in the log files

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {self.executor!r}; choose one of {', '.join(EXECUTORS)}")
        if self.tasks < 1:
            raise ValueError(f"tasks must be >= 1 (got {self.tasks})")
        if self.workers == 0 or self.workers < -1:
            raise ValueError(f"workers must be -1 (all tasks at once) or >= 1 (got {self.workers})")
        if self.executor == "slurm" and not self.partition:
            raise ValueError("the slurm executor needs a partition: pass --partition NAME")


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --executor --tasks --workers --partition --time --cpus-per-task --mem-per-cpu-gb --qos --venv-path."""
    defaults = ExecutorConfig()
    group = parser.add_argument_group("executor")
    group.add_argument("--executor", choices=EXECUTORS, default=defaults.executor, help="where tasks run")
    group.add_argument("--tasks", type=int, default=defaults.tasks, help="number of shards of the input")
    group.add_argument(
        "--workers", type=int, default=defaults.workers, help="tasks run at the same time (-1: all of them)"
    )
    group.add_argument("--partition", default=defaults.partition, help="slurm partition (slurm only)")
    group.add_argument("--time", default=defaults.time, help="slurm time limit per job (slurm only)")
    group.add_argument("--cpus-per-task", type=int, default=defaults.cpus_per_task)
    group.add_argument("--mem-per-cpu-gb", type=float, default=defaults.mem_per_cpu_gb)
    group.add_argument("--qos", default=defaults.qos, help="slurm QOS (slurm only)")
    group.add_argument("--venv-path", default=defaults.venv_path, help="virtualenv activated in slurm jobs")
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run in --output made with other inputs or settings (else such a rerun is refused)",
    )
    group.add_argument("--verbose", action="store_true", help="show the library logs (always in DIR/logs/)")
    group.add_argument(
        "--no-skip-completed",
        dest="skip_completed",
        action="store_false",
        help="re-run tasks even if a previous run completed them",
    )


def executor_config_from_args(args: argparse.Namespace) -> ExecutorConfig:
    """The ExecutorConfig described by the flags of :func:`add_executor_arguments`."""
    names = {f.name for f in fields(ExecutorConfig)}
    return ExecutorConfig(**{name: getattr(args, name) for name in names if hasattr(args, name)})


def build_executor(
    pipeline: list, config: ExecutorConfig, logging_dir: str, job_name: str, depends=None, tasks: int | None = None
):
    """A datatrove executor for ``pipeline``; ``tasks`` overrides ``config.tasks`` (e.g. a single-task stage).

    Re-running with the same ``logging_dir`` skips tasks completed before, unless ``config.skip_completed`` is off.
    """
    n_tasks = tasks if tasks is not None else config.tasks
    workers = config.workers if config.workers == -1 else min(config.workers, n_tasks)
    common = {
        "pipeline": pipeline,
        "tasks": n_tasks,
        "workers": workers,
        "logging_dir": logging_dir,
        "depends": depends,
        "skip_completed": config.skip_completed,
    }
    if config.executor == "local":
        return QuietLocalPipelineExecutor(verbose=config.verbose, **common)
    if config.executor == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        return SlurmPipelineExecutor(
            time=config.time,
            partition=config.partition,
            cpus_per_task=config.cpus_per_task,
            mem_per_cpu_gb=config.mem_per_cpu_gb,
            qos=config.qos,
            venv_path=config.venv_path,
            sbatch_args=config.sbatch_args or None,
            job_name=job_name,
            **common,
        )
    try:
        import ray  # noqa: F401
    except ImportError as error:
        raise ImportError("the ray executor needs ray: pip install 'seed-coder-recipes[ray]'") from error
    from datatrove.executor.ray import RayPipelineExecutor

    return RayPipelineExecutor(
        **common,
        cpus_per_task=config.cpus_per_task,
        mem_per_cpu_gb=config.mem_per_cpu_gb,
    )


# --------------------------------------------------------------------------------------------------------------------
# Quiet by default: datatrove logs every task to stderr (and to DIR/logs/<run>/logs/task_*.log); the stage CLIs print
# their own progress and the funnel, and leave the library logs to the files unless --verbose.
# --------------------------------------------------------------------------------------------------------------------

_LOG_FORMAT = (
    "{time:YYYY-MM-DD HH:mm:ss.SSS} | <level>{level: <8}</level> | {name}:{function}:{line} - <level>{message}</level>"
)


def _console_filter(record) -> bool:
    """Keeps off the console the traceback of an error the stage reports itself as one ``error: ...`` line (its class
    sets ``stage_error = True``, e.g. high_quality's ``NoSeedsError`` raised inside a task); log files keep it."""
    exception = record["exception"]
    return not (exception is not None and getattr(exception.type, "stage_error", False))


class _SwitchedFile:
    """A loguru sink writing to whichever file is current: the task's log while a task runs, the stage's log
    between tasks. ``stage_logging`` adds it (and the stderr sink) once; the task and default loggers only switch
    the file. Adding a loguru handler costs ~5 ms (its exception formatter lists the interpreter's library
    folders), and swapping both handlers at each task's start and end was ~15 of them per code-files run."""

    def __init__(self, stage_file):
        self.stage_file = stage_file
        self.current = stage_file

    def write(self, message: str) -> None:
        self.current.write(message)
        self.current.flush()  # nothing left in a buffer a forked worker would write again

    def flush(self) -> None:
        pass


_SWITCHED: list[_SwitchedFile | None] = [None]  # set by ``stage_logging`` while a quiet stage runs in this process


def _quiet_task_logger(logging_dir, rank: int, local_rank: int = 0, node_rank: int = -1):
    """datatrove's ``add_task_logger`` with the console sink at ERROR: the task's log file gets everything."""
    from loguru import logger

    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    if _SWITCHED[0] is not None:
        _SWITCHED[0].current = logfile
    else:
        logger.remove()
        logger.add(sys.stderr, level="ERROR", format=_LOG_FORMAT, filter=_console_filter)
        logger.add(logfile, level="DEBUG", format=_LOG_FORMAT, colorize=False)
    logger.info(f"Launching pipeline for {rank=}")
    return logfile


def _quiet_default_logger() -> None:
    from loguru import logger

    if _SWITCHED[0] is not None:
        _SWITCHED[0].current = _SWITCHED[0].stage_file
        return
    logger.remove()
    logger.add(sys.stderr, level="ERROR", format=_LOG_FORMAT, filter=_console_filter)


@contextlib.contextmanager
def quiet_datatrove_logging(enabled: bool = True) -> Iterator[None]:
    """While active, datatrove's task and default loggers print only errors on stderr (the files get everything)."""
    if not enabled:
        yield
        return
    import datatrove.executor.base as executor_base
    import datatrove.utils.logging as datatrove_logging

    saved = executor_base.add_task_logger, datatrove_logging.setup_default_logger
    executor_base.add_task_logger = _quiet_task_logger
    datatrove_logging.setup_default_logger = _quiet_default_logger
    try:
        yield
    finally:
        executor_base.add_task_logger, datatrove_logging.setup_default_logger = saved


@contextlib.contextmanager
def stage_logging(log_file: str | None, verbose: bool) -> Iterator[None]:
    """The submitting process's logs go to ``log_file`` (and to stderr only with ``verbose``) while a stage runs;
    the default loguru console sink is back afterwards."""
    from loguru import logger

    if verbose or log_file is None:
        yield
        return
    with open(log_file, "a", encoding="utf-8") as stage_file:
        logger.remove()
        logger.add(sys.stderr, level="ERROR", format=_LOG_FORMAT, filter=_console_filter)
        _SWITCHED[0] = _SwitchedFile(stage_file)
        logger.add(_SWITCHED[0], level="DEBUG", format=_LOG_FORMAT, colorize=False)
        try:
            with quiet_datatrove_logging():
                yield
        finally:
            _SWITCHED[0] = None
            logger.remove()
            logger.add(sys.stderr)


class QuietLocalPipelineExecutor(LocalPipelineExecutor):
    """datatrove's LocalPipelineExecutor whose tasks (also in its worker processes) log to their files only, unless
    ``verbose``."""

    def __init__(self, *args, verbose: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.verbose = verbose

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        with quiet_datatrove_logging(not self.verbose):
            return super()._run_for_rank(rank, local_rank, node_rank)

    def run(self):
        """datatrove's ``run``; with one worker (tasks one after another in this process) and the dependency done, the
        same steps without the ``multiprocess.Manager`` datatrove starts in every run (a server process: ~40 ms of
        wall time per run) only to hand out the one local rank. Follows ``LocalPipelineExecutor.run`` of datatrove
        0.10 (tested side by side with it); anything else is datatrove's own ``run``."""
        if self.workers != 1 or (
            self.depends
            and (
                not isinstance(self.depends, LocalPipelineExecutor)
                or not self.depends._launched
                or self.depends.get_incomplete_ranks(skip_completed=True)
            )
        ):
            return super().run()
        from copy import deepcopy
        from queue import Queue

        from datatrove.utils.logging import logger
        from datatrove.utils.stats import PipelineStats

        self._launched = True
        ranks = range(self.local_rank_offset, self.local_rank_offset + self.local_tasks)
        if all(map(self.is_rank_completed, ranks)):
            logger.info(f"Not doing anything as all {self.local_tasks} tasks have already been completed.")
            return
        self.save_executor_as_json()
        ranks_q: Queue = Queue()
        ranks_q.put(0)
        ranks_to_run = self.get_incomplete_ranks(ranks)
        if (skipped := self.local_tasks - len(ranks_to_run)) > 0:
            logger.info(f"Skipping {skipped} already completed tasks")
        pipeline = self.pipeline
        stats = []
        for rank in ranks_to_run:
            self.pipeline = deepcopy(pipeline)
            stats.append(self._launch_run_for_rank(rank, ranks_q))
        stats = sum(stats, start=PipelineStats())
        with self.logging_dir.open("stats.json", "wt") as statsfile:
            stats.save_to_disk(statsfile)
        logger.success(stats.get_repr(f"All {self.local_tasks} tasks"))
        return stats

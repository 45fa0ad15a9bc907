"""How a data stage runs: locally, on Slurm or on Ray, through datatrove's executors, chosen by ``--executor``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields

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
    if config.executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=n_tasks,
            workers=workers,
            logging_dir=logging_dir,
            depends=depends,
            skip_completed=config.skip_completed,
        )
    if config.executor == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        return SlurmPipelineExecutor(
            pipeline=pipeline,
            tasks=n_tasks,
            workers=workers,
            time=config.time,
            partition=config.partition,
            cpus_per_task=config.cpus_per_task,
            mem_per_cpu_gb=config.mem_per_cpu_gb,
            qos=config.qos,
            venv_path=config.venv_path,
            sbatch_args=config.sbatch_args or None,
            job_name=job_name,
            logging_dir=logging_dir,
            depends=depends,
            skip_completed=config.skip_completed,
        )
    try:
        import ray  # noqa: F401
    except ImportError as error:
        raise ImportError("the ray executor needs ray: pip install 'seed-coder-recipes[ray]'") from error
    from datatrove.executor.ray import RayPipelineExecutor

    return RayPipelineExecutor(
        pipeline=pipeline,
        tasks=n_tasks,
        workers=workers,
        logging_dir=logging_dir,
        depends=depends,
        skip_completed=config.skip_completed,
        cpus_per_task=config.cpus_per_task,
        mem_per_cpu_gb=config.mem_per_cpu_gb,
    )

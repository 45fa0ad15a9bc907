"""The local executor: quiet stage logging (the stage's own messages go to logs/stage.log, each task's to its task
log, errors also to stderr; the stderr and file handlers are added once per stage, the task and default loggers switch
files) and the one-worker run without datatrove's multiprocess manager, against datatrove's own run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers import JsonlWriter
from loguru import logger

from datatrove_pipelines import executors
from datatrove_pipelines.executors import QuietLocalPipelineExecutor, stage_logging


def test_tasks_and_stage_log_to_their_own_files(tmp_path, capfd, monkeypatch):
    import datatrove.executor.base as executor_base
    import datatrove.utils.logging as datatrove_logging

    added = []
    real_add = logger.add
    monkeypatch.setattr(logger, "add", lambda *args, **kwargs: added.append(args) or real_add(*args, **kwargs))
    stage_log = tmp_path / "stage.log"
    folder = get_datafolder(str(tmp_path / "run"))
    with stage_logging(str(stage_log), verbose=False):
        logger.info("stage starts")
        for rank in range(3):
            logfile = executor_base.add_task_logger(folder, rank)  # what datatrove calls around each task
            logger.info(f"inside task {rank}")
            logger.error(f"task {rank} failed")
            datatrove_logging.logger.complete()
            datatrove_logging.setup_default_logger()
            logfile.close()
        logger.info("stage ends")
    assert len(added) == 3  # stderr and the switched file at the start, stderr again at the end (the default)
    assert executors._SWITCHED[0] is None
    stage_text = stage_log.read_text()
    assert "stage starts" in stage_text and "stage ends" in stage_text and "inside task" not in stage_text
    for rank in range(3):
        task_text = (tmp_path / "run" / "logs" / f"task_{rank:05d}.log").read_text()
        assert f"inside task {rank}" in task_text and f"task {rank} failed" in task_text
        assert (
            "stage starts" not in task_text
            and "stage ends" not in task_text
            and f"inside task {(rank + 1) % 3}" not in task_text
        )
    err = capfd.readouterr().err
    assert "task 2 failed" in err and "inside task" not in err and "stage starts" not in err


class _Numbers(PipelineStep):
    """Documents 0..n-1, task i taking every ``world_size``-th; the ones in ``fail_on`` make the task raise."""

    name = "numbers"

    def __init__(self, n: int, fail_on: frozenset[int] = frozenset()):
        super().__init__()
        self.n, self.fail_on = n, fail_on

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        for number in range(rank, self.n, world_size):
            if number in self.fail_on:
                raise RuntimeError(f"document {number}")
            self.stat_update("documents")
            self.stat_update("length", value=number)
            yield Document(text="x" * number, id=str(number))


def _steps_stats(folder: Path) -> list:
    return [(step["name"], step["stats"]) for step in json.loads((folder / "stats.json").read_text())]


@pytest.mark.parametrize("tasks", [1, 3])
def test_one_worker_runs_as_datatrove_runs_them(tmp_path, tasks):
    """The one-worker run without datatrove's multiprocess manager against datatrove's own run: the same stats,
    completion markers and task logs; a failed task fails both and is run again by the next run, completed tasks
    are skipped."""
    results = {}
    for name, run in (("ours", QuietLocalPipelineExecutor.run), ("datatrove", LocalPipelineExecutor.run)):
        folder = tmp_path / name

        def executor(fail_on=frozenset(), folder=folder):
            pipeline = [_Numbers(40, fail_on), JsonlWriter(str(folder / "out"))]
            return QuietLocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(folder))

        with pytest.raises(RuntimeError, match="document 37"):
            run(executor(frozenset({37})))
        done_after_failure = sorted(p.name for p in (folder / "completions").glob("*"))
        run(executor())
        run(executor())  # all completed: nothing to do
        results[name] = (
            done_after_failure,
            sorted(p.name for p in (folder / "completions").iterdir()),
            _steps_stats(folder),
            sorted(p.name for p in (folder / "logs").iterdir()),
        )
    assert results["ours"] == results["datatrove"]
    assert len(results["ours"][1]) == tasks
    assert results["ours"][0] == (["00000"] if tasks == 3 else [])  # tasks run in order: the one after 37's did not

"""Quiet stage logging: the stage's own messages go to logs/stage.log, each task's to its task log, errors also to
stderr; the stderr and file handlers are added once per stage (the task and default loggers switch files)."""

from __future__ import annotations

from datatrove.io import get_datafolder
from loguru import logger

from datatrove_pipelines import executors
from datatrove_pipelines.executors import stage_logging


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

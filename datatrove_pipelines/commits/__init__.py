"""Commit data (paper §2): see :mod:`datatrove_pipelines.commits.pipeline` and docs/commits.md."""

from datatrove_pipelines.commits.pipeline import CommitsConfig, build_stage_pipelines, parse_args, run_commits

__all__ = ["CommitsConfig", "build_stage_pipelines", "parse_args", "run_commits"]

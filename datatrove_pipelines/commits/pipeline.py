"""Commit data (paper §2): "given the message and the context, predict the change", from local git repositories.

    python -m datatrove_pipelines.commits --repo PATH [PATH ...] --output DIR [--benchmarks DIR] [--tasks N]
    python -m datatrove_pipelines.commits --config recipes/tiny/commits.yaml [--repo PATH ...]

Three datatrove runs, chained with ``depends=`` (exact dedup needs a global view):

1. prepare (N tasks, repositories round-robin): git reader → commit filter → context (README, tree, top-5 BM25
   related files, serialization) → dedup signatures of the target diff → decontamination lookup → ``DIR/work``
2. dedup (1 task): equal target diffs grouped (datatrove_pipelines/dedup.py, exact only)
3. filter (N tasks): exact dedup → 10-gram decontamination → ``DIR/kept``

Excluded commits go to ``DIR/excluded/<step>/`` with ``metadata.filter_reason``; ``DIR/stats.json`` holds the funnel
(in = kept + Σ excluded, checked) with the repository selection as notes; ``DIR/repositories/`` has one record per
repository (read, or excluded with its reason); ``DIR/README.md`` is the dataset card. See docs/commits.md.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import JsonlReader

from datatrove_pipelines.commits.context import CommitContext, ContextConfig
from datatrove_pipelines.commits.filters import CommitFilter, CommitFilterConfig
from datatrove_pipelines.commits.reader import CommitReader, RepositoryCriteria
from datatrove_pipelines.commits.serialize import BudgetConfig
from datatrove_pipelines.decontamination import (
    DecontaminationConfig,
    DecontaminationFilter,
    DecontaminationPrecheck,
    add_decontamination_arguments,
)
from datatrove_pipelines.dedup import DedupBuckets, DedupCluster, DedupConfig, DedupFilter, DedupSignatures
from datatrove_pipelines.executors import ExecutorConfig
from datatrove_pipelines.stage import (
    StageCard,
    StageRun,
    add_config_argument,
    add_output_arguments,
    parse_stage_args,
    run_config_stage,
    stage_card_settings,
    stage_config_fields,
    stage_main,
)
from datatrove_pipelines.writers import RankFileJsonlWriter, document_dict, exclusion_writer, kept_writer


@dataclass
class CommitsConfig:
    repos: list[str]
    output_dir: str
    criteria: RepositoryCriteria = field(default_factory=RepositoryCriteria)
    filters: CommitFilterConfig = field(default_factory=CommitFilterConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    exact_dedup: bool = True
    decontamination: DecontaminationConfig = field(default_factory=DecontaminationConfig)
    decontaminate: bool = True
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    push_to_hub: str | None = None
    hub_private: bool = False

    def __post_init__(self) -> None:
        if not self.repos:
            raise ValueError("give at least one --repo")

    @property
    def work_dir(self) -> str:
        return os.path.join(self.output_dir, "work")


class EnsureRankFile(PipelineStep):
    """Creates the task's (empty) intermediate file when no commit reached it (every repository excluded, or none
    given to this task), so the next run reads nothing instead of failing on a folder without files."""

    type = "💽 - WRITER"
    name = "📄 ensure file"

    def __init__(self, folder: str, filename: str):
        super().__init__()
        self.folder = folder
        self.filename = filename

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        yield from data or ()
        path = os.path.join(self.folder, self.filename.replace("${rank}", f"{rank:05d}"))
        if not os.path.exists(path):
            os.makedirs(self.folder, exist_ok=True)
            open(path, "w").close()


def dedup_config(config: CommitsConfig) -> DedupConfig:
    return DedupConfig(exact=True, near=False, num_buckets=1)


def build_stage_pipelines(config: CommitsConfig) -> dict[str, list[PipelineStep]]:
    out, work = config.output_dir, config.work_dir
    prepared = os.path.join(work, "prepared")
    prepare: list[PipelineStep] = [
        CommitReader(config.repos, config.criteria, os.path.join(out, "repositories")),
        CommitFilter(config.filters, exclusion_writer(out, "commit_filter")),
        CommitContext(config.context, exclusion_writer(out, "context")),
    ]
    if config.exact_dedup:
        prepare.append(DedupSignatures(work, dedup_config(config)))
    if config.decontaminate:
        prepare.append(DecontaminationPrecheck(config.decontamination))
    prepare.append(
        RankFileJsonlWriter(prepared, output_filename="${rank}.jsonl", compression=None, adapter=document_dict)
    )
    prepare.append(EnsureRankFile(prepared, "${rank}.jsonl"))
    filtering: list[PipelineStep] = [
        JsonlReader(prepared, glob_pattern="*.jsonl", compression=None, add_file_path=False)
    ]
    if config.exact_dedup:
        filtering.append(DedupFilter(work, "exact", exclusion_writer(out, "exact_dedup"), drop_ref=True))
    if config.decontaminate:
        filtering.append(DecontaminationFilter(config.decontamination, exclusion_writer(out, "decontamination")))
    filtering.append(kept_writer(out))
    pipelines = {"prepare": prepare, "filter": filtering}
    if config.exact_dedup:
        pipelines["dedup"] = [DedupBuckets(work, dedup_config(config)), DedupCluster(work, dedup_config(config))]
    return pipelines


def stage_runs(config: CommitsConfig) -> list[StageRun]:
    pipelines = build_stage_pipelines(config)
    runs = [StageRun("prepare", pipelines["prepare"])]
    if "dedup" in pipelines:
        runs.append(StageRun("dedup", pipelines["dedup"], 1))
    runs.append(StageRun("filter", pipelines["filter"]))
    return runs


CARD_DESCRIPTION = """Commit examples like Seed-Coder's commit data (paper §2): "given the commit message and the context
at the parent commit (README, directory tree, the five files most related to the change by BM25), predict which files
change and how". One record per kept non-merge commit of the selected repositories: `text` is the serialized example
(`<commit_message>`, `<readme>`, `<repository_tree>`, `<related_file>` ×5, then the target `<changed_files>` and
`<diff>`, a unified diff that `git apply` applies to the parent snapshot), fitted to a token budget that never cuts
the target. Excluded: merge and root commits, bot authors, empty or trivial messages, binary / lock / vendored /
generated files, submodule changes, oversized patches, huge commits, exact duplicate diffs, and examples sharing a
word 10-gram with a code benchmark. `metadata`: `repo`, `commit`, `parent`, `changed_paths`, `related_paths`,
`author_time`, `token_estimate`, `cut` (the context sections that were shortened), `sha256` (of the target diff)."""


def run_commits(config: CommitsConfig, command: str | None = None) -> dict | None:
    """Run the stage; returns the stats (None on Slurm, where the last job writes stats.json and the card)."""
    card = StageCard("Commit examples", CARD_DESCRIPTION, stage_card_settings(config, drop=("repos",)))
    return run_config_stage(stage_runs(config), config, card, command, "commits")


def parse_args(argv: list[str] | None = None) -> CommitsConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(parser)
    parser.add_argument(
        "--repo", nargs="+", action="extend", required=True, help="git repositories, or folders of clones"
    )
    add_output_arguments(parser)
    add_decontamination_arguments(parser)
    parser.add_argument("--no-exact-dedup", action="store_true")
    selection = parser.add_argument_group("repository selection (paper: 100 stars, 10 forks, 100 commits, 100 days)")
    selection.add_argument("--min-commits", type=int, default=RepositoryCriteria.min_commits)
    selection.add_argument("--min-active-days", type=float, default=RepositoryCriteria.min_active_days)
    selection.add_argument("--min-stars", type=int, default=RepositoryCriteria.min_stars)
    selection.add_argument("--min-forks", type=int, default=RepositoryCriteria.min_forks)
    selection.add_argument("--repo-metadata", default=None, help=".json/.jsonl/.csv with stars and forks per repo")
    selection.add_argument("--allow-shallow", action="store_true", help="read shallow clones too")
    commits = parser.add_argument_group("commit filters")
    commits.add_argument("--max-files-changed", type=int, default=CommitFilterConfig.max_files_changed)
    commits.add_argument("--max-patch-bytes", type=int, default=CommitFilterConfig.max_patch_bytes)
    commits.add_argument("--min-message-chars", type=int, default=CommitFilterConfig.min_message_chars)
    commits.add_argument("--keep-bots", action="store_true", help="keep commits by bot authors")
    context = parser.add_argument_group("context and budget")
    context.add_argument("--related-files", type=int, default=ContextConfig.related_files)
    context.add_argument("--max-tokens", type=int, default=BudgetConfig.max_tokens)
    context.add_argument("--chars-per-token", type=float, default=BudgetConfig.chars_per_token)
    args = parse_stage_args(parser, argv)
    try:
        criteria = RepositoryCriteria(
            min_commits=args.min_commits,
            min_active_days=args.min_active_days,
            min_stars=args.min_stars,
            min_forks=args.min_forks,
            metadata_file=args.repo_metadata,
            allow_shallow=args.allow_shallow,
        )
        if args.repo_metadata and not os.path.isfile(args.repo_metadata):
            raise ValueError(f"--repo-metadata {args.repo_metadata}: no such file")
        return CommitsConfig(
            repos=args.repo,
            output_dir=args.output,
            criteria=criteria,
            filters=CommitFilterConfig(
                exclude_bots=not args.keep_bots,
                max_files_changed=args.max_files_changed,
                max_patch_bytes=args.max_patch_bytes,
                min_message_chars=args.min_message_chars,
            ),
            context=ContextConfig(
                related_files=args.related_files,
                budget=BudgetConfig(max_tokens=args.max_tokens, chars_per_token=args.chars_per_token),
            ),
            exact_dedup=not args.no_exact_dedup,
            decontamination=DecontaminationConfig(benchmarks_dir=args.benchmarks),
            decontaminate=not args.no_decontamination,
            **stage_config_fields(args),
        )
    except ValueError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> None:
    stage_main("datatrove_pipelines.commits", argv, parse_args, run_commits)


if __name__ == "__main__":
    main()

"""The GitHub code-file curation pipeline (paper §1): guard, language, exact + near dedup, rules, syntax, decontamination.

    python -m datatrove_pipelines.code_files --input PATH [PATH ...] --output DIR [--benchmarks DIR] [--tasks N]
    python -m datatrove_pipelines.code_files --config recipes/tiny/code_files.yaml [--output DIR ...]

Four datatrove stages, chained with ``depends=`` (dedup needs a global view, everything else is per file):

1. prepare (N tasks): read → guard → language → rules → syntax → decontamination → dedup signatures →
   intermediate JSONL (``DIR/work/prepared``)
2. buckets (min(N, ``num_buckets``) tasks): exact SHA-256 groups and MinHash band matches
3. cluster (1 task): which copies to drop, keeping each cluster's preferred copy (stars, recency, id); with N = 1,
   stages 2 and 3 run as one single-task stage, "dedup"
4. filter (N tasks): exact dedup → near dedup → ``DIR/kept`` (survivors' intermediate lines copied as bytes, only
   duplicates decoded: :mod:`datatrove_pipelines.prepared`)

The filters run before dedup so that dedup only chooses among files that pass them. Every input record is counted
in the ``read`` step: a line that is not UTF-8, not JSON or not an object, a cut ``.jsonl.gz``, a record whose
content is not a string, is excluded there with its reason, file and line (``DIR/excluded/read/``).

Every excluded document goes to ``DIR/excluded/<step>/`` with its reason; ``DIR/stats.json`` holds the funnel, and
the pipeline raises if documents in != kept + Σ excluded. ``DIR/README.md`` is the dataset card (what was done, the
funnel, the settings, the command); ``--push-to-hub ORG/NAME`` uploads it with ``kept/`` and ``stats.json``.
See docs/code_files.md.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from datatrove.pipeline.base import PipelineStep

from datatrove_pipelines.code_filters import CodeRuleFilter, GuardConfig, GuardFilter, LanguageStep, RuleFilterConfig
from datatrove_pipelines.code_readers import ReaderConfig, reader_for_input
from datatrove_pipelines.decontamination import (
    DecontaminationConfig,
    DecontaminationFilter,
    add_decontamination_arguments,
)
from datatrove_pipelines.dedup import DedupBuckets, DedupCluster, DedupConfig, DedupFilter, DedupSignatures
from datatrove_pipelines.executors import ExecutorConfig
from datatrove_pipelines.prepared import PreparedReader, PreparedWriter
from datatrove_pipelines.stage import (
    StageCard,
    StageRun,
    add_stage_arguments,
    parse_stage_args,
    run_config_stage,
    stage_card_settings,
    stage_config_fields,
    stage_main,
)
from datatrove_pipelines.syntax_check import SyntaxCheckConfig, SyntaxCheckFilter
from datatrove_pipelines.writers import document_dict, exclusion_writer, kept_writer


@dataclass
class CodeFilesConfig:
    """Everything the code-file pipeline needs; each step has its own typed config."""

    inputs: list[str]
    output_dir: str
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    rules: RuleFilterConfig = field(default_factory=RuleFilterConfig)
    syntax: SyntaxCheckConfig = field(default_factory=SyntaxCheckConfig)
    decontamination: DecontaminationConfig = field(default_factory=DecontaminationConfig)
    decontaminate: bool = True
    copy_survivors: bool = True  # the filter run's fast path; False: the plain path (every record decoded, re-encoded)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    push_to_hub: str | None = None  # dataset repo id: kept/, stats.json and the card are uploaded at the end
    hub_private: bool = False

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ValueError("give at least one --input")
        # one size limit: the readers must not load what the guard will reject anyway
        self.reader.max_size_bytes = self.guard.max_size_bytes

    @property
    def work_dir(self) -> str:
        return os.path.join(self.output_dir, "work")


def build_stage_pipelines(config: CodeFilesConfig) -> dict[str, list[PipelineStep]]:
    """The datatrove pipeline (list of steps) of each stage, in order.

    The per-file filters (rules, syntax, decontamination) run before the dedup signatures, so dedup only chooses
    among files that pass them: a cluster never keeps a copy that a later filter would drop while a valid copy was
    removed as its duplicate. The decontamination filter hashes each batch's tokens once for itself and the dedup
    signatures after it."""
    out, work = config.output_dir, config.work_dir
    prepared = os.path.join(work, "prepared")
    prepare: list[PipelineStep] = [reader_for_input(spec, config.reader) for spec in config.inputs]
    prepare += [
        GuardFilter(config.guard, exclusion_writer(out, "guard")),
        LanguageStep(exclusion_writer(out, "language")),
        CodeRuleFilter(config.rules, exclusion_writer(out, "rules")),
        SyntaxCheckFilter(config.syntax, exclusion_writer(out, "syntax")),
    ]
    if config.decontaminate:
        prepare.append(DecontaminationFilter(config.decontamination, exclusion_writer(out, "decontamination")))
    prepare += [
        DedupSignatures(work, config.dedup),
        PreparedWriter(prepared, output_filename="${rank}.jsonl", compression=None, adapter=document_dict),
    ]
    # the stage's own intermediate files (already counted): any unreadable record there is a bug, and raises
    reader = PreparedReader(prepared)
    exact = DedupFilter(work, "exact", exclusion_writer(out, "exact_dedup"))
    near = DedupFilter(work, "near", exclusion_writer(out, "near_dedup"), drop_ref=True)
    kept = kept_writer(out)
    if config.copy_survivors:  # survivors' lines copied as bytes, duplicates decoded (datatrove_pipelines/prepared.py)
        reader.copy_survivors(exact, near, kept)
    filtering: list[PipelineStep] = [reader, exact, near, kept]
    return {
        "prepare": prepare,
        "buckets": [DedupBuckets(work, config.dedup)],
        "cluster": [DedupCluster(work, config.dedup)],
        "filter": filtering,
    }


CARD_DESCRIPTION = """Source files curated like Seed-Coder's GitHub code-file data (paper §1), before the model-based quality
filter: unreadable, binary, invalid UTF-8, empty, over-size and unknown-language files removed; language labels from
file extensions and names (89 languages); exact (SHA-256) and near (MinHash, 5-gram shingles, ~0.72 Jaccard)
duplicates removed; a small set of named rules (line lengths, alphanumeric share, encoded blobs, auto-generated
headers, data-like files); files tree-sitter cannot parse removed; files sharing a word 10-gram with a code benchmark
removed. Each record: `text`, `id` (`<repo>/<path>`), `metadata` (`repo`, `path`, `language`, `size`, `sha256`)."""


def stage_runs(config: CodeFilesConfig) -> list[StageRun]:
    """The datatrove runs in order. Stage 2 runs one task per bucket, or fewer (each handling several buckets) when
    fewer tasks were asked for; with a single such task, stages 2 and 3 are one run ("dedup"), which saves a round of
    task start-up."""
    pipelines = build_stage_pipelines(config)
    bucket_tasks = min(config.dedup.num_buckets, config.executor.tasks)
    if bucket_tasks == 1:
        dedup = [StageRun("dedup", pipelines["buckets"] + pipelines["cluster"], 1)]
    else:
        dedup = [StageRun("buckets", pipelines["buckets"], bucket_tasks), StageRun("cluster", pipelines["cluster"], 1)]
    return [StageRun("prepare", pipelines["prepare"]), *dedup, StageRun("filter", pipelines["filter"])]


def run_code_files(config: CodeFilesConfig, command: str | None = None) -> dict | None:
    """Run the pipeline; returns the stats (None on Slurm, where the last job writes stats.json and the card).
    ``command`` (the command line) goes into the dataset card."""
    card = StageCard("Curated code files", CARD_DESCRIPTION, stage_card_settings(config, drop=("copy_survivors",)))
    return run_config_stage(stage_runs(config), config, card, command, "code_files")


def parse_args(argv: list[str] | None = None) -> CodeFilesConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stage_arguments(
        parser,
        input_help="directory of repositories, .jsonl[.gz]/.parquet file (the-stack-v2 style), or Hub dataset id",
        input_nargs="+",
        input_action="extend",
    )
    add_decontamination_arguments(parser)
    parser.add_argument("--no-exact-dedup", action="store_true")
    parser.add_argument("--no-near-dedup", action="store_true")
    parser.add_argument("--no-syntax-check", action="store_true")
    parser.add_argument("--max-size-bytes", type=int, default=GuardConfig.max_size_bytes)
    parser.add_argument("--minhash-ngrams", type=int, default=DedupConfig.n_grams)
    parser.add_argument("--minhash-buckets", type=int, default=DedupConfig.num_buckets)
    parser.add_argument("--minhash-hashes-per-bucket", type=int, default=DedupConfig.hashes_per_bucket)
    parser.add_argument("--hub-split", default=ReaderConfig.hub_split, help="split of Hub dataset inputs")
    args = parse_stage_args(parser, argv)
    return CodeFilesConfig(
        inputs=args.input,
        output_dir=args.output,
        reader=ReaderConfig(hub_split=args.hub_split),
        guard=GuardConfig(max_size_bytes=args.max_size_bytes),
        dedup=DedupConfig(
            exact=not args.no_exact_dedup,
            near=not args.no_near_dedup,
            n_grams=args.minhash_ngrams,
            num_buckets=args.minhash_buckets,
            hashes_per_bucket=args.minhash_hashes_per_bucket,
        ),
        syntax=SyntaxCheckConfig(enabled=not args.no_syntax_check),
        decontamination=DecontaminationConfig(benchmarks_dir=args.benchmarks),
        decontaminate=not args.no_decontamination,
        **stage_config_fields(args),
    )


def main(argv: list[str] | None = None) -> None:
    # an input that is neither a path nor a Hub id is found when the readers are built: wrong usage, one line
    stage_main("datatrove_pipelines.code_files", argv, parse_args, run_code_files, errors=(FileNotFoundError,))


if __name__ == "__main__":
    main()

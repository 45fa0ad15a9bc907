"""``run``: web pages to code-related, deduplicated, quality-selected text (paper §3), as chained datatrove runs.

1. prepare (N tasks): readers → page guard → extraction (code kept) → recall (rule + fastText) → dedup signatures →
   decontamination precheck → ``DIR/work/prepared``
2. buckets + cluster: exact (SHA-256 of the text) and MinHash duplicates, the code-file pipeline's steps
3. filter (N tasks): exact dedup → near dedup → heuristics → category sample → ``DIR/work/to_score``
4. score (N tasks): the LLM quality score 0–10 (``PageRater``; resumable checkpoints) → ``DIR/work/scored``
5. select (N tasks): quality score accounting → per-category threshold → decontamination → ``DIR/kept``

Without a scorer (``--no-quality-score``) steps 4–5 shrink to decontamination at the end of step 3.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import JsonlReader

from datatrove_pipelines.decontamination import DecontaminationConfig, DecontaminationFilter, DecontaminationPrecheck
from datatrove_pipelines.dedup import DedupBuckets, DedupCluster, DedupFilter, DedupSignatures
from datatrove_pipelines.executors import ExecutorConfig
from datatrove_pipelines.quality.annotate import OracleConfig
from datatrove_pipelines.stage import StageCard, StageRun, run_config_stage, stage_card_settings
from datatrove_pipelines.web.categories import (
    CategoryRules,
    CategorySampleFilter,
    QualityScoreAccount,
    QualityThresholdFilter,
    default_rules,
)
from datatrove_pipelines.web.extract import CodeKeepingExtractor, ExtractionConfig
from datatrove_pipelines.web.heuristics import HeuristicsConfig, WebHeuristicsFilter
from datatrove_pipelines.web.llm import QUALITY_TASK, PageRater
from datatrove_pipelines.web.readers import PageGuard, readers_for_inputs
from datatrove_pipelines.web.recall import CodeRecallFilter, RecallConfig
from datatrove_pipelines.writers import RankFileJsonlWriter, document_dict, exclusion_writer, kept_writer

DEDUP_BUCKETS = 14  # the code-file pipeline's default number of LSH bands (DedupConfig's default)


@dataclass
class WebRunConfig:
    """Everything ``run`` needs; each step has its own typed config."""

    inputs: list[str]
    output_dir: str
    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)
    recall: RecallConfig = field(default_factory=RecallConfig)
    heuristics: HeuristicsConfig = field(default_factory=HeuristicsConfig)
    categories: CategoryRules = field(default_factory=default_rules)
    scorer: OracleConfig | None = None  # None: no LLM quality score
    decontamination: DecontaminationConfig = field(default_factory=DecontaminationConfig)
    decontaminate: bool = True
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    push_to_hub: str | None = None
    hub_private: bool = False

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ValueError("give at least one --input")

    @property
    def work_dir(self) -> str:
        return os.path.join(self.output_dir, "work")


def page_steps(inputs: list[str], extraction: ExtractionConfig, output_dir: str) -> list[PipelineStep]:
    """Readers, the page guard and the extractor: the start of both ``run`` and ``train-recall``."""
    return [
        *readers_for_inputs(inputs),
        PageGuard(exclusion_writer(output_dir, "page_guard")),
        CodeKeepingExtractor(extraction, exclusion_writer(output_dir, "extraction")),
    ]


class IntermediateReader(JsonlReader):
    """Reads a run's intermediate JSONL folder; a folder the previous run left empty (every page excluded earlier,
    e.g. a crawl without code pages) is no pages, where datatrove's reader raises "No files found"."""

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if not self.data_folder.exists("") or not self.data_folder.list_files(glob_pattern=self.glob_pattern):
            yield from data or ()
            return
        yield from super().run(data, rank, world_size)


def _intermediate_writer(folder: str) -> RankFileJsonlWriter:
    return RankFileJsonlWriter(folder, output_filename="${rank}.jsonl", compression=None, adapter=document_dict)


def stage_runs(config: WebRunConfig) -> list[StageRun]:
    out, work = config.output_dir, config.work_dir
    prepared = os.path.join(work, "prepared")
    prepare: list[PipelineStep] = [
        *page_steps(config.inputs, config.extraction, out),
        CodeRecallFilter(config.recall, exclusion_writer(out, "recall")),
        DedupSignatures(work),
    ]
    if config.decontaminate:
        prepare.append(DecontaminationPrecheck(config.decontamination))
    prepare.append(_intermediate_writer(prepared))
    filtering: list[PipelineStep] = [
        IntermediateReader(prepared, glob_pattern="*.jsonl", compression=None),
        DedupFilter(work, "exact", exclusion_writer(out, "exact_dedup")),
        DedupFilter(work, "near", exclusion_writer(out, "near_dedup"), drop_ref=True),
        WebHeuristicsFilter(config.heuristics, exclusion_writer(out, "heuristics")),
        CategorySampleFilter(config.categories, exclusion_writer(out, "category_sample")),
    ]
    decontamination: list[PipelineStep] = []
    if config.decontaminate:
        decontamination.append(DecontaminationFilter(config.decontamination, exclusion_writer(out, "decontamination")))
    bucket_tasks = min(DEDUP_BUCKETS, config.executor.tasks)
    if bucket_tasks == 1:
        dedup = [StageRun("dedup", [DedupBuckets(work), DedupCluster(work)], 1)]
    else:
        dedup = [StageRun("buckets", [DedupBuckets(work)], bucket_tasks), StageRun("cluster", [DedupCluster(work)], 1)]
    runs = [StageRun("prepare", prepare), *dedup]
    if config.scorer is None:
        return [*runs, StageRun("filter", [*filtering, *decontamination, kept_writer(out)])]
    to_score, scored = os.path.join(work, "to_score"), os.path.join(work, "scored")
    score = [
        IntermediateReader(to_score, glob_pattern="*.jsonl", compression=None),
        PageRater(QUALITY_TASK, config.scorer, scored, os.path.join(work, "score_checkpoints")),
    ]
    select = [
        IntermediateReader(scored, glob_pattern="**/*.jsonl.gz"),
        QualityScoreAccount(exclusion_writer(out, "quality_score")),
        QualityThresholdFilter(config.categories, exclusion_writer(out, "quality_threshold")),
        *decontamination,
        kept_writer(out),
    ]
    return [
        *runs,
        StageRun("filter", [*filtering, _intermediate_writer(to_score)]),
        StageRun("score", score),
        StageRun("select", select),
    ]


CARD_DESCRIPTION = """Code-related web pages curated like Seed-Coder's web data (paper §3): WARC/WET records and HTML
files; unusable records (truncated, non-HTML, undecodable, empty, HTTP errors) removed with reasons; main text
extracted with trafilatura with `<pre>`/`<code>` blocks kept verbatim; pages with explicit code markup kept by rule,
the rest by a fastText recall classifier; exact (SHA-256) and near (MinHash) duplicates removed; pages under 10 words
and symbol soup removed; an LLM quality score 0–10 with a threshold and sampling rate per website category; pages
sharing a word 10-gram with a code benchmark removed. Each record: `text`, `id` (the WARC record id or file),
`metadata` (`url`, `code_markup`, `code_blocks`, `recall`, `code_score`, `category`, `quality_score`, ...)."""


def card_settings(config: WebRunConfig) -> dict:
    settings = stage_card_settings(config, drop=("inputs",))
    if settings["recall"]["model_path"]:  # where the model lies is not a setting of the data; its file name is
        settings["recall"]["model_path"] = os.path.basename(settings["recall"]["model_path"])
    if settings.get("scorer"):
        settings["scorer"] = {k: settings["scorer"][k] for k in ("backend", "model", "rating_mode", "temperature")}
    return settings


def run_web(config: WebRunConfig, command: str | None = None) -> dict | None:
    card = StageCard("Code-related web pages", CARD_DESCRIPTION, card_settings(config))
    return run_config_stage(stage_runs(config), config, card, command, "web")

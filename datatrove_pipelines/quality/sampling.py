"""The stratified sample the oracle rates: up to N files per language, chosen by a seeded hash (bottom-k).

Bottom-k by hash is independent of input order and mergeable across tasks, so re-runs and resumes see the same
sample (docs/quality.md, "Sampling").
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import defaultdict

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from datatrove_pipelines.funnel import FunnelMixin
from datatrove_pipelines.languages import resolve_language

SAMPLE_STEP = "sample"


def language_of(doc: Document) -> str:
    """The document's language name: the code-file pipeline's label, else its path's language, else ``unknown``."""
    declared = doc.metadata.get("language")
    return resolve_language(doc.metadata.get("path"), declared) or (str(declared) if declared else "unknown")


def sample_priority(doc_id: str, seed: int) -> int:
    """A seeded pseudo-random key per document; the N smallest per language form the sample (bottom-k sampling).

    Bottom-k by hash is independent of input order and mergeable: each task's bottom-k contains its share of the
    global bottom-k, so re-runs and resumes see the same sample.
    """
    return int.from_bytes(hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest(), "big")


class StratifiedSample(FunnelMixin, PipelineStep):
    """Keeps ``per_language`` documents per language (per task: ``ceil(per_language / world_size)``), seeded.

    Holds the current sample in memory (``per_language`` documents per language) and yields it, ordered by language
    and priority, once the input is exhausted. Documents not sampled are counted (``not_sampled``) but not written:
    the sample is what is annotated, the rest stays in the corpus untouched.
    """

    name = "stratified sample"
    type = "🎲 - SAMPLER"
    funnel_step = SAMPLE_STEP

    def __init__(self, per_language: int, seed: int = 0):
        super().__init__()
        if per_language < 1:
            raise ValueError(f"per_language must be >= 1 (got {per_language})")
        self.per_language = per_language
        self.seed = seed

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        quota = math.ceil(self.per_language / max(1, world_size))
        heaps: dict[str, list[tuple[int, str, Document]]] = defaultdict(list)
        for doc in data or []:
            self.funnel_in(doc)
            if not doc.text or not doc.text.strip():
                self.funnel_exclude(doc, "empty", None, rank)
                continue
            heap = heaps[language_of(doc)]
            entry = (-sample_priority(str(doc.id), self.seed), str(doc.id), doc)
            if len(heap) < quota:
                heapq.heappush(heap, entry)
                continue
            dropped = heapq.heappushpop(heap, entry) if entry[:2] > heap[0][:2] else entry
            self.funnel_exclude(dropped[2], "not_sampled", None, rank)
        for language in sorted(heaps):
            for _, _, doc in sorted(heaps[language], key=lambda item: (-item[0], item[1])):
                self.funnel_keep(doc)
                self.stat_update(f"sampled/{language}")
                yield doc

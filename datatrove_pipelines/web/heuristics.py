"""Simple page heuristics after dedup (paper §3: "heuristics such as dropping documents under 10 words")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

from datatrove_pipelines.funnel import FunnelFilter

_VISIBLE = re.compile(r"\S")
_ALNUM = re.compile(r"[^\W_]")


@dataclass
class HeuristicsConfig:
    min_words: int = 10  # the paper's rule
    max_chars: int = 1_000_000  # a page this long is a dump, not a page
    min_alphanumeric_fraction: float = 0.25  # of non-space characters: code is ~0.6-0.8, symbol soup less


class WebHeuristicsFilter(FunnelFilter):
    """Reasons: ``too_few_words``, ``too_long``, ``mostly_symbols``."""

    def __init__(self, config: HeuristicsConfig | None = None, exclusion_writer: DiskWriter | None = None):
        super().__init__("heuristics", exclusion_writer)
        self.config = config or HeuristicsConfig()

    def check(self, doc: Document) -> str | None:
        text = doc.text
        if len(text.split()) < self.config.min_words:
            return "too_few_words"
        if len(text) > self.config.max_chars:
            return "too_long"
        head = text[:100_000]
        visible = len(_VISIBLE.findall(head))
        if visible and len(_ALNUM.findall(head)) / visible < self.config.min_alphanumeric_fraction:
            return "mostly_symbols"
        return None

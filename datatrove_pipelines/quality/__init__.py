"""Model-based quality filtering (Seed-Coder §1): LLM oracle annotation, a learned scorer, and the scorer filter.

Commands: ``python -m datatrove_pipelines.quality {annotate,train-scorer,score,stats,stand-in-oracle}``; the steps
for other pipelines: :func:`quality_filter_steps`. See docs/quality.md.
"""

from datatrove_pipelines.quality.rubric import build_prompt, parse_rating
from datatrove_pipelines.quality.score_filter import QualityScorer, QualityThresholdFilter, quality_filter_steps

__all__ = ["QualityScorer", "QualityThresholdFilter", "build_prompt", "parse_rating", "quality_filter_steps"]

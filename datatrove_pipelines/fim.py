"""Fill-in-the-middle (paper §4): a share of the documents rewritten as SUFFIX/PREFIX/MIDDLE around two random cuts.

    python -m datatrove_pipelines.fim --input DOCS --output DIR --rate 0.5 --seed 0 [--mode spm|psm]

Seed-Coder trains on SPM only (rate 0.5 in regular pretraining, 0.1 in continued pretraining), with character-level
random split points and the format ``<[fim-suffix]>SUFFIX<[fim-prefix]>PREFIX<[fim-middle]>MIDDLE`` (the three markers
are special tokens, see :mod:`datatrove_pipelines.tokenizer`); ``--mode psm`` writes
``<[fim-prefix]>PREFIX<[fim-suffix]>SUFFIX<[fim-middle]>MIDDLE`` instead.

Whether a document is transformed and where it is cut depend only on its id and the seed (a SHA-256 of both), so a
re-run, another task count or another executor gives the same output. Every document gets ``metadata.fim``
(true/false). Documents shorter than ``--min-chars`` and documents that already contain a FIM marker (they would be
ambiguous to reassemble and would inject control tokens) pass unchanged, counted in stats.json as notes. Nothing is
dropped. :class:`FimStep` is also the step ``datatrove_pipelines.tokenize --fim-rate`` runs before tokenizing.
See docs/fim.md.
"""

from __future__ import annotations

import argparse
import hashlib
import struct
from dataclasses import asdict, dataclass

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from datatrove_pipelines.executors import ExecutorConfig
from datatrove_pipelines.funnel import FunnelMixin, StatsBuffer
from datatrove_pipelines.stage import (
    StageCard,
    StageRun,
    add_stage_arguments,
    documents_reader,
    parse_stage_args,
    run_config_stage,
    stage_config_fields,
    stage_main,
)
from datatrove_pipelines.tokenizer import FIM_MIDDLE_TOKEN, FIM_PREFIX_TOKEN, FIM_SUFFIX_TOKEN, FIM_TOKENS
from datatrove_pipelines.writers import kept_writer

FIM_MODES = ("spm", "psm")


@dataclass
class FimConfig:
    """``rate``: share of documents transformed; ``min_chars``: shorter documents are left whole."""

    rate: float = 0.5
    seed: int = 0
    mode: str = "spm"
    min_chars: int = 16

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"the FIM rate must be within [0, 1] (got {self.rate})")
        if self.mode not in FIM_MODES:
            raise ValueError(f"unknown FIM mode {self.mode!r}; choose one of {', '.join(FIM_MODES)}")
        if self.min_chars < 2:
            raise ValueError("min_chars must be at least 2")


def _uniforms(doc_id: str, seed: int) -> tuple[float, float, float]:
    """Three numbers in [0, 1) fixed by (seed, id): the transform draw and the two cuts."""
    digest = hashlib.sha256(f"{seed}\x00{doc_id}".encode("utf-8", errors="surrogatepass")).digest()
    a, b, c = struct.unpack_from("<QQQ", digest)
    scale = float(2**64)
    return a / scale, b / scale, c / scale


def fim_format(prefix: str, middle: str, suffix: str, mode: str = "spm") -> str:
    """One FIM training document from its three parts."""
    if mode == "spm":
        return f"{FIM_SUFFIX_TOKEN}{suffix}{FIM_PREFIX_TOKEN}{prefix}{FIM_MIDDLE_TOKEN}{middle}"
    return f"{FIM_PREFIX_TOKEN}{prefix}{FIM_SUFFIX_TOKEN}{suffix}{FIM_MIDDLE_TOKEN}{middle}"


def fim_split(text: str, doc_id: str, config: FimConfig) -> tuple[str, str, str] | None:
    """(prefix, middle, suffix) of ``text`` if this document is drawn for FIM, else None.

    The two cuts are uniform over the character positions 0..len(text) (sorted), so the middle may be empty or the
    whole text, as in the character-level FIM of Bavarian et al. that Seed-Coder follows."""
    draw, first, second = _uniforms(doc_id, config.seed)
    if draw >= config.rate:
        return None
    n = len(text) + 1
    start, end = sorted((int(first * n), int(second * n)))
    return text[:start], text[start:end], text[end:]


def fim_reassemble(text: str, mode: str = "spm") -> str:
    """The original document of a FIM document (prefix + middle + suffix); ValueError if ``text`` is not one."""
    if mode == "spm":
        if not text.startswith(FIM_SUFFIX_TOKEN):
            raise ValueError("not an SPM FIM document")
        suffix, sep, rest = text[len(FIM_SUFFIX_TOKEN) :].partition(FIM_PREFIX_TOKEN)
    else:
        if not text.startswith(FIM_PREFIX_TOKEN):
            raise ValueError("not a PSM FIM document")
        prefix_part, sep, rest = text[len(FIM_PREFIX_TOKEN) :].partition(FIM_SUFFIX_TOKEN)
    if not sep:
        raise ValueError("FIM markers missing")
    if mode == "spm":
        prefix, sep, middle = rest.partition(FIM_MIDDLE_TOKEN)
    else:
        prefix = prefix_part
        suffix, sep, middle = rest.partition(FIM_MIDDLE_TOKEN)
    if not sep:
        raise ValueError("FIM middle marker missing")
    return prefix + middle + suffix


def contains_fim_token(text: str) -> bool:
    return any(token in text for token in FIM_TOKENS)


class FimStep(FunnelMixin, PipelineStep):
    """Rewrites the drawn documents in FIM form; sets ``metadata.fim`` on every document; drops nothing.

    Notes in stats.json (``funnel/fim/note/...``): ``transformed``, ``too_short``, ``contains_fim_token``."""

    type = "✂️ - FORMAT"
    name = "fim"
    funnel_step = "fim"

    def __init__(self, config: FimConfig | None = None):
        super().__init__()
        self.config = config or FimConfig()

    def transform(self, doc) -> str:
        """The note for ``doc`` after setting its text and ``metadata.fim``."""
        doc.metadata["fim"] = False
        if len(doc.text) < self.config.min_chars:
            return "too_short"
        if contains_fim_token(doc.text):
            return "contains_fim_token"
        parts = fim_split(doc.text, str(doc.id), self.config)
        if parts is None:
            return "not_drawn"
        doc.text = fim_format(*parts, mode=self.config.mode)
        doc.metadata["fim"] = True
        return "transformed"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        buffer = self._stats_buffer = StatsBuffer(self)
        try:
            for count, doc in enumerate(data or (), start=1):
                self.funnel_in(doc)
                note = self.transform(doc)
                self.funnel_note(note, doc)
                self.funnel_keep(doc)
                if count % buffer.FLUSH_EVERY == 0:
                    buffer.flush()
                yield doc
        finally:
            buffer.flush()
            self._stats_buffer = None


# --------------------------------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class FimStageConfig:
    input: str
    output_dir: str
    fim: FimConfig
    executor: ExecutorConfig
    push_to_hub: str | None = None
    hub_private: bool = False


CARD_DESCRIPTION = """Code documents in Seed-Coder's fill-in-the-middle form (paper §4): a seeded share of the documents
cut at two character positions drawn per document and rewritten as `<[fim-suffix]>SUFFIX<[fim-prefix]>PREFIX<[fim-middle]>MIDDLE`
(SPM; PSM when asked). `metadata.fim` says whether a document was rewritten; short documents and documents already
containing a FIM marker are left whole."""


def stage_runs(config: FimStageConfig) -> list[StageRun]:
    pipeline = [documents_reader(config.input), FimStep(config.fim), kept_writer(config.output_dir)]
    return [StageRun("fim", pipeline)]


def run_fim(config: FimStageConfig, command: str | None = None) -> dict | None:
    card = StageCard("FIM documents", CARD_DESCRIPTION, settings=asdict(config.fim))
    return run_config_stage(stage_runs(config), config, card, command, "fim")


def add_fim_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The FIM flags: ``--rate --seed --mode --min-chars`` here; with ``prefix="fim-"`` (in
    ``datatrove_pipelines.tokenize``) ``--fim-rate --fim-seed --fim-mode --fim-min-chars``, rate 0 by default.
    Their destinations are the flag names, so ``--config`` YAML keys are the flags too."""
    default_rate = 0.0 if prefix else FimConfig.rate
    parser.add_argument(f"--{prefix}rate", type=float, default=default_rate, help="share of FIM documents")
    parser.add_argument(f"--{prefix}seed", type=int, default=FimConfig.seed, help="seed of the FIM draws")
    parser.add_argument(f"--{prefix}mode", choices=FIM_MODES, default=FimConfig.mode)
    parser.add_argument(f"--{prefix}min-chars", type=int, default=FimConfig.min_chars)


def fim_config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace, prefix: str = "") -> FimConfig:
    def value(name: str):
        return getattr(args, f"{prefix}{name}".replace("-", "_"))

    try:
        return FimConfig(rate=value("rate"), seed=value("seed"), mode=value("mode"), min_chars=value("min-chars"))
    except ValueError as error:
        parser.error(str(error))


def parse_args(argv: list[str] | None = None) -> FimStageConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stage_arguments(parser)
    add_fim_arguments(parser)
    args = parse_stage_args(parser, argv)
    return FimStageConfig(
        input=args.input,
        output_dir=args.output,
        fim=fim_config_from_args(parser, args),
        **stage_config_fields(args),
    )


def main(argv: list[str] | None = None) -> None:
    stage_main("datatrove_pipelines.fim", argv, parse_args, run_fim)


if __name__ == "__main__":
    main()

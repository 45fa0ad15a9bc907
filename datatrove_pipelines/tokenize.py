"""Tokenization into datatrove token shards, one folder per source (paper §4's last step before pretraining).

    python -m datatrove_pipelines.tokenize --input [NAME=]DOCS [[NAME=]DOCS ...] --tokenizer PATH_OR_ID --output DIR \\
        [--fim-rate 0.5 --fim-seed 0 --fim-mode spm] [--max-tokens-per-file N] [--seed 0]

Each source (a documents folder, or a run folder with ``kept/``; NAME defaults to the folder's name) is tokenized by
datatrove's own ``DocumentTokenizer`` into ``DIR/<NAME>/``: ``<NAME>_<rank>_doc_shuffled.ds`` (token ids, uint16 or
uint32 by vocabulary size), ``.ds.index`` (uint64 end offset of each document) and ``.ds.metadata`` (tokenizer, token
count), the format datatrove's ``DatatroveFolderDataset`` and nanotron's ``Nanoset`` read. The tokenizer's EOS token
ends every document; documents are shuffled within each shard (``--seed``). With ``--fim-rate R > 0`` the FIM step of
:mod:`datatrove_pipelines.fim` rewrites a share R of the documents first; a tokenizer without Seed-Coder's FIM tokens
is then an error. One folder per source lets a pretraining stage weight its mixture by source.

Documents whose text is empty or not encodable as UTF-8 (lone surrogates) are excluded with a reason
(``excluded/tokenize/``). ``stats.json`` holds the funnel plus ``sources``: documents, tokens and files per source,
read back from the shards themselves. See docs/tokenization.md.
"""

from __future__ import annotations

import argparse
import glob
import os
import struct
from dataclasses import asdict, dataclass, field

from datatrove.data import Document
from datatrove.pipeline.tokens import DocumentTokenizer

from datatrove_pipelines.executors import ExecutorConfig
from datatrove_pipelines.fim import FimConfig, FimStep, add_fim_arguments, fim_config_from_args
from datatrove_pipelines.funnel import FunnelFilter
from datatrove_pipelines.stage import (
    StageCard,
    StageRun,
    add_stage_arguments,
    documents_reader,
    parse_stage_args,
    resolve_documents_dir,
    run_amended_stage,
    stage_config_fields,
    stage_main,
)
from datatrove_pipelines.tokenizer import MissingFimTokensError, fim_token_ids, load_tokenizer, tokenizer_json
from datatrove_pipelines.writers import exclusion_writer

UPLOAD = ("*/*.ds", "*/*.ds.index", "*/*.ds.metadata", "stats.json", "README.md")  # what --push-to-hub uploads

SHARD_SUFFIX = ".ds"


class TokenizerLoadError(ValueError):
    """The tokenizer cannot be loaded or cannot end documents (no EOS)."""


class TokenizableFilter(FunnelFilter):
    """Excludes what a tokenizer cannot or should not encode: empty texts, texts with lone surrogates."""

    def __init__(self, exclusion_writer=None):
        super().__init__("tokenize", exclusion_writer)

    def check(self, doc: Document) -> str | None:
        if not doc.text or not doc.text.strip():
            return "empty_text"
        try:
            doc.text.encode("utf-8")
        except UnicodeEncodeError:
            return "invalid_unicode"
        return None


@dataclass
class TokenizeSource:
    name: str
    path: str


@dataclass
class TokenizeConfig:
    sources: list[TokenizeSource]
    output_dir: str
    tokenizer: str  # Hub id or local path
    fim: FimConfig = field(default_factory=lambda: FimConfig(rate=0.0))
    max_tokens_per_file: int | None = None
    seed: int = 0
    batch_size: int = 1000
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    push_to_hub: str | None = None
    hub_private: bool = False

    def __post_init__(self) -> None:
        names = [source.name for source in self.sources]
        if not names:
            raise ValueError("give at least one --input")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"two sources are named {', '.join(duplicates)}: name them with NAME=PATH")
        bad = [name for name in names if not name or "/" in name or name in ("logs", "work", "excluded")]
        if bad:
            raise ValueError(f"bad source names {bad}: use NAME=PATH with a plain folder name")
        if self.max_tokens_per_file is not None and self.max_tokens_per_file < 1:
            raise ValueError(f"--max-tokens-per-file must be at least 1 (got {self.max_tokens_per_file})")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1 (got {self.batch_size})")


def parse_source(spec: str) -> TokenizeSource:
    """``NAME=PATH`` or ``PATH`` (named after the folder, or its parent when the folder is ``kept``)."""
    name, sep, path = spec.partition("=")
    if sep and name and "/" not in name:
        return TokenizeSource(name, path)
    path = spec.rstrip("/")
    base = os.path.basename(path)
    if base == "kept":
        base = os.path.basename(os.path.dirname(path))
    return TokenizeSource(base, spec)


def check_tokenizer(config: TokenizeConfig):
    """Load the tokenizer once up front: a clear error now rather than in every task; FIM tokens when FIM is on."""
    try:
        tokenizer = load_tokenizer(config.tokenizer)
    except (OSError, ValueError) as error:
        raise TokenizerLoadError(f"cannot load tokenizer {config.tokenizer}: {error}") from error
    if tokenizer.eos_token is None:
        raise TokenizerLoadError(f"{config.tokenizer} has no EOS token to end documents with")
    if config.fim.rate > 0:
        fim_token_ids(tokenizer)
    return tokenizer


def stage_runs(config: TokenizeConfig, eos_token: str) -> list[StageRun]:
    """One datatrove run per source: read → [FIM] → filter → DocumentTokenizer into ``DIR/<source>/``."""
    runs = []
    for source in config.sources:
        pipeline = [documents_reader(source.path)]
        if config.fim.rate > 0:
            pipeline.append(FimStep(config.fim))
        pipeline += [
            TokenizableFilter(exclusion_writer(config.output_dir, "tokenize")),
            DocumentTokenizer(
                output_folder=os.path.join(config.output_dir, source.name),
                tokenizer_name_or_path=tokenizer_json(config.tokenizer),
                local_working_dir=os.path.join(config.output_dir, "work", source.name),
                save_filename=source.name,
                eos_token=eos_token,
                batch_size=config.batch_size,
                max_tokens_per_file=config.max_tokens_per_file,
                seed=config.seed,
                shuffle_documents=True,
            ),
        ]
        runs.append(StageRun(f"tokenize_{source.name}", pipeline))
    return runs


def shard_stats(folder: str) -> dict:
    """Documents, tokens and shard files of one source folder, read from the shards (index and sizes)."""
    docs = tokens = 0
    files = sorted(glob.glob(os.path.join(folder, f"*{SHARD_SUFFIX}")))
    token_size = 2
    for path in files:
        with open(f"{path}.metadata") as handle:
            token_size = int(handle.readline().strip().rsplit("|", 1)[1])
        tokens += os.path.getsize(path) // token_size
        docs += os.path.getsize(f"{path}.index") // struct.calcsize("<Q")
    return {"docs": docs, "tokens": tokens, "files": len(files), "token_size": token_size}


def add_source_stats(config: TokenizeConfig, stats: dict) -> None:
    """Add ``sources`` (per-source documents and tokens, read from the shards) and the tokenizer to ``stats``."""
    stats["sources"] = {
        source.name: shard_stats(os.path.join(config.output_dir, source.name)) for source in config.sources
    }
    stats["tokenizer"] = config.tokenizer


CARD_DESCRIPTION = """Token shards for pretraining in datatrove's format (`.ds` token ids, `.ds.index` document ends,
`.ds.metadata`), one folder per source, readable by datatrove's `DatatroveFolderDataset` and nanotron's `Nanoset`.
Every document ends with the tokenizer's EOS token; documents are shuffled within each shard; with a FIM rate, that
share of documents is in Seed-Coder's SPM fill-in-the-middle form."""


def run_tokenize(config: TokenizeConfig, command: str | None = None) -> dict | None:
    tokenizer = check_tokenizer(config)
    for source in config.sources:
        resolve_documents_dir(source.path)  # a clear error for a missing or empty source, before any run
    settings = {
        "tokenizer": config.tokenizer,
        "fim": asdict(config.fim),
        "max_tokens_per_file": config.max_tokens_per_file,
        "seed": config.seed,
        "sources": [source.name for source in config.sources],
    }
    card = StageCard("Token shards", CARD_DESCRIPTION, settings, data_files="*/*.ds")
    runs = stage_runs(config, tokenizer.eos_token)
    return run_amended_stage(
        runs, config, card, command, "tokenize", lambda stats, _: add_source_stats(config, stats), UPLOAD
    )


def parse_args(argv: list[str] | None = None) -> TokenizeConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stage_arguments(
        parser, input_help="[NAME=]DOCS: one or more sources, each tokenized into DIR/NAME/", input_nargs="+"
    )
    parser.add_argument("--tokenizer", required=True, help="Hub id or local path (folder or tokenizer.json)")
    parser.add_argument("--max-tokens-per-file", type=int, default=None, help="split shards above this many tokens")
    parser.add_argument("--seed", type=int, default=TokenizeConfig.seed, help="seed of the shuffle within shards")
    parser.add_argument(
        "--batch-size", type=int, default=TokenizeConfig.batch_size, help="documents per encode_batch call"
    )
    add_fim_arguments(parser, prefix="fim-")
    args = parse_stage_args(parser, argv)
    try:
        return TokenizeConfig(
            sources=[parse_source(spec) for spec in args.input],
            output_dir=args.output,
            tokenizer=args.tokenizer,
            fim=fim_config_from_args(parser, args, prefix="fim-"),
            max_tokens_per_file=args.max_tokens_per_file,
            seed=args.seed,
            batch_size=args.batch_size,
            **stage_config_fields(args),
        )
    except ValueError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> None:
    errors = (MissingFimTokensError, TokenizerLoadError)
    stats = stage_main("datatrove_pipelines.tokenize", argv, parse_args, run_tokenize, errors)
    if stats is not None:
        for name, source in stats["sources"].items():
            print(f"{name}: {source['docs']} documents, {source['tokens']} tokens in {source['files']} shard(s)")


if __name__ == "__main__":
    main()

"""Token shards for pretraining: datatrove `.ds` folders read in place, checked, and mixed by weight with a seed.

Why: the curation pipelines end in datatrove's `DocumentTokenizer` (one folder of `.ds` shards per source). Training
reads those windows directly through datatrove's `DatatroveFolderDataset` (memory-mapped reads, no re-tokenisation),
the same files nanotron's Nanoset reads, so both engines see the same data.

    python -m recipes.pretrain_data prepare-tiny --output outputs/tiny    # tiny tokenizer + stdlib shards (2 sources)
    python -m recipes.pretrain_data inspect FOLDER [FOLDER ...]           # tokenizer, token size, tokens, max token id

`tokenize_files` only wraps datatrove's own `DocumentTokenizer` (for the tiny recipe and the tests); real corpora are
tokenised by the data pipelines.
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

SAMPLE_CHECK_TOKENS = 1 << 20  # tokens read per shard file when checking token ids in "sample" mode
UINT16_VOCAB_LIMIT = 1 << 16


class ShardError(ValueError):
    """Token shards that cannot be trained on as configured (raised before any training step)."""


@dataclass
class ShardFolderInfo:
    """What a `.ds` folder holds, read from its files and datatrove's `.metadata` sidecars."""

    path: str
    files: list[str]
    token_size: int
    tokenizer_name: str | None
    total_tokens: int
    max_token_id: int | None  # over the checked part (see ``checked_tokens``)
    checked_tokens: int


def _read_metadata(metadata_path: Path) -> tuple[str, int, int]:
    """datatrove's ``.ds.metadata``: ``tokenizer_name|token_size``, then the token count."""
    lines = metadata_path.read_text().splitlines()
    if not lines or "|" not in lines[0]:
        raise ShardError(f"{metadata_path}: not a datatrove token metadata file")
    name, _, size = lines[0].rpartition("|")
    count = int(lines[1]) if len(lines) > 1 and lines[1].strip().lstrip("-").isdigit() else -1
    return name, int(size), count


def inspect_shard_folder(
    path: str | Path, *, expected_token_size: int | None = None, check: str = "sample"
) -> ShardFolderInfo:
    """List and check one shard folder: it exists, holds `.ds` files that agree on tokenizer and token size.

    ``check`` is how many token ids to read for the max-id check: "full" (every token), "sample" (the first
    ~1M tokens of each file) or "none"."""
    folder = Path(path)
    if not folder.is_dir():
        raise ShardError(f"shard folder {folder} does not exist (tokenize the source first)")
    files = sorted(p for p in folder.rglob("*.ds") if p.is_file())
    if not files:
        raise ShardError(f"shard folder {folder} has no .ds token files")
    names, sizes = set(), set()
    for file in files:
        metadata = file.with_name(file.name + ".metadata")
        if metadata.is_file():
            name, size, _ = _read_metadata(metadata)
            names.add(name)
            sizes.add(size)
    if len(names) > 1 or len(sizes) > 1:
        raise ShardError(f"shard folder {folder} mixes tokenizers/token sizes: {sorted(names)} {sorted(sizes)}")
    token_size = sizes.pop() if sizes else expected_token_size or 2
    if token_size not in (2, 4):
        raise ShardError(f"shard folder {folder}: unsupported token size {token_size}")
    dtype = np.uint16 if token_size == 2 else np.uint32
    total = 0
    max_id: int | None = None
    checked = 0
    for file in files:
        size = file.stat().st_size
        if size % token_size:
            raise ShardError(f"{file}: {size} bytes is not a whole number of {token_size}-byte tokens (truncated?)")
        n_tokens = size // token_size
        total += n_tokens
        if check == "none" or n_tokens == 0:
            continue
        limit = n_tokens if check == "full" else min(n_tokens, SAMPLE_CHECK_TOKENS)
        tokens = np.memmap(file, dtype=dtype, mode="r", shape=(n_tokens,))[:limit]
        file_max = int(tokens.max())
        max_id = file_max if max_id is None else max(max_id, file_max)
        checked += limit
    return ShardFolderInfo(
        path=str(folder),
        files=[str(f) for f in files],
        token_size=token_size,
        tokenizer_name=names.pop() if names else None,
        total_tokens=total,
        max_token_id=max_id,
        checked_tokens=checked,
    )


def _vocabulary(name_or_path: str) -> dict[str, int] | None:
    """The vocabulary (with added tokens) of a tokenizer named in shard metadata: a ``tokenizer.json`` file (what
    datatrove records for local tokenizers), a folder, or a Hub id; None when it cannot be loaded here."""
    path = Path(name_or_path)
    if path.is_dir() and (path / "tokenizer.json").is_file():
        path = path / "tokenizer.json"
    try:
        if path.is_file():
            from tokenizers import Tokenizer

            return Tokenizer.from_file(str(path)).get_vocab(with_added_tokens=True)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name_or_path).get_vocab()
    except Exception:  # a Hub id with no network, a deleted folder: cannot tell
        return None


def _same_vocabulary(tokenizer_name: str, tokenizer) -> bool | None:
    """Whether the tokenizer named in the shards' metadata has ``tokenizer``'s vocabulary (None: cannot load it)."""
    other = _vocabulary(tokenizer_name)
    return None if other is None else other == tokenizer.get_vocab()


def check_shards_match(info: ShardFolderInfo, *, tokenizer, vocab_size: int, what: str) -> None:
    """Shards made with another tokenizer fail here, before any step: by the metadata's tokenizer, by token size,
    and by token ids beyond the model's vocabulary."""
    needed_size = 4 if vocab_size > UINT16_VOCAB_LIMIT else 2
    if info.token_size != needed_size:
        raise ShardError(
            f"{what}: shards in {info.path} use {info.token_size}-byte tokens but a vocabulary of {vocab_size} needs "
            f"{needed_size}: they were made with another tokenizer"
        )
    if info.tokenizer_name is not None and tokenizer is not None:
        same = _same_vocabulary(info.tokenizer_name, tokenizer)
        if same is False:
            raise ShardError(
                f"{what}: shards in {info.path} were made with tokenizer {info.tokenizer_name!r}, whose vocabulary "
                f"differs from the training tokenizer's ({tokenizer.name_or_path!r}): re-tokenize or fix the config"
            )
        if same is None:
            logger.warning(
                "%s: cannot load the shards' tokenizer %r to compare vocabularies", what, info.tokenizer_name
            )
    if info.max_token_id is not None and info.max_token_id >= vocab_size:
        raise ShardError(
            f"{what}: shards in {info.path} hold token id {info.max_token_id} >= the model's vocab_size {vocab_size}: "
            "they were made with another tokenizer"
        )


def open_shard_folder(info: ShardFolderInfo, sequence_length: int):
    """datatrove's own reader over the folder: windows of ``sequence_length + 1`` tokens (inputs and next tokens)."""
    from datatrove.utils.dataset import DatatroveFolderDataset

    dataset = DatatroveFolderDataset(info.path, seq_len=sequence_length, token_size=info.token_size, recursive=True)
    if len(dataset) == 0:
        raise ShardError(
            f"shard folder {info.path} holds {info.total_tokens} tokens: fewer than one window of "
            f"{sequence_length + 1} tokens"
        )
    return dataset


class WeightedMixture(torch.utils.data.Dataset):
    """Sources drawn in proportion to their weights, in a seeded order that any index can be computed from.

    Sample ``i`` lies in block ``b``; block ``b`` holds ``floor((b+1)·B·w_s) - floor(b·B·w_s)`` samples of each
    source ``s`` in a permutation seeded by ``(seed, b)``. So every prefix that ends on a block boundary has each
    source within one sample of its share, each source is read in its own order (sequential windows, which datatrove
    optimises for; a source shorter than its share is read again from the start), and resuming at any index needs no
    replay: the data position is just the index.
    """

    def __init__(
        self,
        sources: Sequence[torch.utils.data.Dataset],
        weights: Sequence[float],
        num_samples: int,
        seed: int,
        block_size: int = 1024,
    ):
        if len(sources) != len(weights) or not sources:
            raise ValueError("one weight per source, at least one source")
        if any(w <= 0 or not math.isfinite(w) for w in weights):
            raise ValueError(f"source weights must be positive numbers, got {list(weights)}")
        total = float(sum(weights))
        self.sources = list(sources)
        self.weights = np.asarray([w / total for w in weights], dtype=np.float64)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.block_size = int(block_size)
        self.source_lengths = [len(s) for s in self.sources]

    def __len__(self) -> int:
        return self.num_samples

    def _cumulative(self, block: int) -> np.ndarray:
        """Samples of each source before ``block``."""
        return np.floor(block * self.block_size * self.weights + 1e-9).astype(np.int64)

    def _block_start(self, block: int) -> int:
        return int(self._cumulative(block).sum())

    def _find_block(self, index: int) -> int:
        # blocks hold between B - S + 1 and B + S samples: search near index / B
        low = max(0, index // self.block_size - 2)
        high = index // self.block_size + 2 + len(self.sources)
        while self._block_start(high) <= index:
            high *= 2
        return bisect.bisect_right(range(low, high + 1), index, key=self._block_start) + low - 1

    @lru_cache(maxsize=4)  # noqa: B019 (a few blocks per dataset object; the dataset lives for the whole stage)
    def _block(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        """(source of each sample in the block, that sample's index within its source)."""
        before, after = self._cumulative(block), self._cumulative(block + 1)
        counts = after - before
        order = np.repeat(np.arange(len(self.sources)), counts)
        rng = np.random.default_rng([self.seed, block])
        order = order[rng.permutation(len(order))]
        within = np.empty(len(order), dtype=np.int64)
        for source in range(len(self.sources)):
            mask = order == source
            within[mask] = before[source] + np.arange(int(mask.sum()))
        return order, within

    def locate(self, index: int) -> tuple[int, int]:
        """(source, sample of that source) for global ``index``."""
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        block = self._find_block(index)
        order, within = self._block(block)
        offset = index - self._block_start(block)
        source = int(order[offset])
        return source, int(within[offset]) % self.source_lengths[source]

    def passes_over_sources(self) -> list[float]:
        """How many times each source is read over the whole mixture (> 1: repeated, i.e. upsampled)."""
        counts = self._cumulative(self._find_block(self.num_samples - 1) + 1) if self.num_samples else 0
        return [float(c) / n for c, n in zip(np.atleast_1d(counts), self.source_lengths, strict=True)]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        source, sample = self.locate(index)
        return {"input_ids": self.sources[source][sample]["input_ids"]}


def collate_windows(examples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Windows of ``L + 1`` tokens -> inputs ``[:L]`` and next tokens ``[1:]`` (every token of a window is predicted
    once; ``shift_labels`` tells transformers' causal-LM loss not to shift again)."""
    windows = torch.stack([example["input_ids"] for example in examples])
    inputs = windows[:, :-1].contiguous()
    return {"input_ids": inputs, "labels": inputs, "shift_labels": windows[:, 1:].contiguous()}


# --- making shards (wraps datatrove's DocumentTokenizer; the data pipelines own real tokenisation) ---


def tokenize_files(
    files: Iterable[Path],
    output: str | Path,
    tokenizer_name_or_path: str | Path,
    *,
    eos_token: str | None = None,
    seed: int = 0,
    max_tokens_per_file: int | None = None,
) -> Path:
    """Run datatrove's `DocumentTokenizer` over text files: ``.ds`` shards (+ ``.index``, ``.metadata``) in
    ``output``."""
    from datatrove.data import Document
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.tokens import DocumentTokenizer

    output = Path(output)
    documents = []
    for path in files:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if text.strip():
            documents.append(Document(text=text, id=str(path)))
    tokenizer_path = Path(tokenizer_name_or_path)
    if tokenizer_path.is_dir():  # datatrove loads a local tokenizer.json (recorded in the shards' metadata)
        tokenizer_name_or_path = str((tokenizer_path / "tokenizer.json").resolve())
    executor = LocalPipelineExecutor(
        pipeline=[
            documents,
            DocumentTokenizer(
                output_folder=str(output),
                tokenizer_name_or_path=str(tokenizer_name_or_path),
                eos_token=eos_token,
                seed=seed,
                max_tokens_per_file=max_tokens_per_file,
            ),
        ],
        tasks=1,
        logging_dir=str(output.parent / f".logs-{output.name}"),
        skip_completed=False,
    )
    executor.run()
    return output


def prepare_tiny(output: str | Path, *, max_files: int = 400, vocab_size: int = 2048) -> dict[str, Path]:
    """The tiny recipe's inputs: a tokenizer trained on stdlib code (recipes.tiny_model) and two token sources, the
    stdlib's modules and its test suite, each a folder of datatrove shards."""
    from recipes.local_code import stdlib_python_files, stdlib_root
    from recipes.tiny_model import EOS_TOKEN, TinyModelConfig, build_tiny_model

    output = Path(output)
    files = stdlib_python_files(limit_files=None)
    root = stdlib_root()
    is_test = [any(part in ("test", "tests") for part in f.relative_to(root).parts[:-1]) for f in files]
    tests = [f for f, test in zip(files, is_test, strict=True) if test][:max_files]
    modules = [f for f, test in zip(files, is_test, strict=True) if not test][:max_files]
    model_dir = build_tiny_model(output / "model", modules[:max_files], TinyModelConfig(vocab_size=vocab_size))
    shards = {
        "stdlib": tokenize_files(modules, output / "shards" / "stdlib", model_dir, eos_token=EOS_TOKEN),
        "stdlib-tests": tokenize_files(tests, output / "shards" / "stdlib-tests", model_dir, eos_token=EOS_TOKEN),
    }
    return {"model": model_dir, **shards}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    tiny = commands.add_parser("prepare-tiny", help="tiny tokenizer + stdlib token shards for recipes/tiny")
    tiny.add_argument("--output", default="outputs/tiny")
    tiny.add_argument("--max-files", type=int, default=400)
    inspect = commands.add_parser("inspect", help="what shard folders hold")
    inspect.add_argument("folders", nargs="+")
    inspect.add_argument("--check", choices=("none", "sample", "full"), default="sample")
    args = parser.parse_args(argv)
    if args.command == "prepare-tiny":
        for name, path in prepare_tiny(args.output, max_files=args.max_files).items():
            print(f"{name}: {path}")
        return
    try:
        for folder in args.folders:
            info = inspect_shard_folder(folder, check=args.check)
            summary = {k: v for k, v in info.__dict__.items() if k != "files"}
            print(json.dumps({**summary, "files": len(info.files)}))
    except ShardError as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()

"""Build a tiny Seed-Coder-shaped model (random Llama + a BPE tokenizer trained on local code) for CPU runs.

Why: every stage (scoring, training, evaluation) must run end to end on a laptop and in tests with no Hub access.
The tokenizer (trained by ``datatrove_pipelines.tokenizer``, the one tokenizer home) carries the same special tokens
as Seed-Coder (bos, eos, pad, the three SPM FIM tokens) and a chat template, so code written against it works
unchanged with the released 8B models.

    python -m recipes.tiny_model --output outputs/tiny-model [--corpus DIR ...]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from datatrove_pipelines.tokenizer import (
    BOS_TOKEN,
    CHAT_TEMPLATE,
    EOS_TOKEN,
    FIM_MIDDLE_TOKEN,
    FIM_PREFIX_TOKEN,
    FIM_SUFFIX_TOKEN,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    UNK_TOKEN,
    train_tokenizer,
)
from recipes.local_code import stdlib_python_files

# The tokens, the chat template and the tokenizer training live in their one home, datatrove_pipelines.tokenizer;
# re-exported here because callers import them from the tiny model.
__all__ = [
    "BOS_TOKEN",
    "CHAT_TEMPLATE",
    "EOS_TOKEN",
    "FIM_MIDDLE_TOKEN",
    "FIM_PREFIX_TOKEN",
    "FIM_SUFFIX_TOKEN",
    "PAD_TOKEN",
    "SPECIAL_TOKENS",
    "UNK_TOKEN",
    "TinyModelConfig",
    "build_tiny_model",
    "train_tokenizer",
]


@dataclass
class TinyModelConfig:
    """Sizes small enough to train and generate on 2 CPU cores in seconds."""

    vocab_size: int = 2048
    hidden_size: int = 64
    intermediate_size: int = 176
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 4096
    max_corpus_files: int = 400
    seed: int = 0


def _iter_texts(files: Iterable[Path]) -> Iterator[str]:
    for path in files:
        try:
            yield path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue


def build_tiny_model(
    output_dir: str | Path, corpus_files: Iterable[Path] | None = None, config: TinyModelConfig | None = None
) -> Path:
    """Train the tokenizer, initialise a random Llama of Seed-Coder's shape (scaled down) and save both."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = config or TinyModelConfig()
    files = (
        list(corpus_files) if corpus_files is not None else stdlib_python_files(limit_files=config.max_corpus_files)
    )
    tokenizer = train_tokenizer(_iter_texts(files), config.vocab_size)
    torch.manual_seed(config.seed)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        rope_theta=500000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(model_config)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    model.generation_config.save_pretrained(output)
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="directory to write the model and tokenizer to")
    parser.add_argument("--corpus", nargs="*", default=None, help="directories of code to train the tokenizer on")
    parser.add_argument("--vocab-size", type=int, default=TinyModelConfig.vocab_size)
    args = parser.parse_args(argv)
    files = None
    if args.corpus:
        files = [p for d in args.corpus for p in sorted(Path(d).rglob("*")) if p.is_file()]
    path = build_tiny_model(args.output, files, TinyModelConfig(vocab_size=args.vocab_size))
    print(f"tiny model written to {path}")


if __name__ == "__main__":
    main()

"""The one tokenizer home: Seed-Coder's special tokens and chat template, training a byte-level BPE, loading any HF one.

Why one home: the tiny model (``recipes.tiny_model``), the FIM stage, tokenization into ``.ds`` shards and evaluation
must agree on the token strings (the SPM FIM tokens above all); they import them from here.

    python -m datatrove_pipelines.tokenizer train --input DOCS --output DIR --vocab-size 32000 [--max-docs N]
    python -m datatrove_pipelines.tokenizer info PATH_OR_ID     # special tokens, FIM support, vocabulary size

``load_tokenizer`` takes a Hub id (Seed-Coder's released tokenizer, ``ByteDance-Seed/Seed-Coder-8B-Base``, for real
runs) or a local folder / ``tokenizer.json``; ``tokenizer_json`` gives datatrove's ``DocumentTokenizer`` the file it
loads.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Iterable

BOS_TOKEN = "<[begin▁of▁sentence]>"
PAD_TOKEN = "<[pad]>"
EOS_TOKEN = "<[end▁of▁sentence]>"
UNK_TOKEN = "<[unk]>"
# Seed-Coder's SPM fill-in-the-middle tokens (facts §4): <[fim-suffix]>SUFFIX<[fim-prefix]>PREFIX<[fim-middle]>MIDDLE
FIM_SUFFIX_TOKEN = "<[fim-suffix]>"
FIM_PREFIX_TOKEN = "<[fim-prefix]>"
FIM_MIDDLE_TOKEN = "<[fim-middle]>"
FIM_TOKENS = (FIM_SUFFIX_TOKEN, FIM_PREFIX_TOKEN, FIM_MIDDLE_TOKEN)
# Order fixes the ids: bos 0, pad 1, eos 2 as in Seed-Coder's released config.
SPECIAL_TOKENS = [BOS_TOKEN, PAD_TOKEN, EOS_TOKEN, UNK_TOKEN, FIM_SUFFIX_TOKEN, FIM_PREFIX_TOKEN, FIM_MIDDLE_TOKEN]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


class MissingFimTokensError(ValueError):
    """FIM was asked for but the tokenizer has no single-token FIM markers."""


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer with Seed-Coder's special tokens and chat template, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < len(SPECIAL_TOKENS) + 256:
        raise ValueError(f"vocab_size must be at least {len(SPECIAL_TOKENS) + 256} (special tokens + 256 bytes)")
    backend = Tokenizer(models.BPE(unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        additional_special_tokens=list(FIM_TOKENS),
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def load_tokenizer(name_or_path: str):
    """A transformers tokenizer from a Hub id or a local folder (or a bare ``tokenizer.json``)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if os.path.isfile(name_or_path):
        return PreTrainedTokenizerFast(tokenizer_file=name_or_path)
    return AutoTokenizer.from_pretrained(name_or_path)


def tokenizer_json(name_or_path: str) -> str:
    """What datatrove's ``load_tokenizer`` reads: a local ``tokenizer.json`` path, or the Hub id unchanged.

    A local folder without ``tokenizer.json`` (a slow-only tokenizer) is converted once and saved beside it."""
    if os.path.isdir(name_or_path):
        path = os.path.join(name_or_path, "tokenizer.json")
        if not os.path.isfile(path):
            tokenizer = load_tokenizer(name_or_path)
            if not getattr(tokenizer, "is_fast", False):
                raise ValueError(f"{name_or_path}: no fast tokenizer (tokenizer.json) can be built")
            tokenizer.backend_tokenizer.save(path)
        return path
    return name_or_path


def fim_token_ids(tokenizer) -> dict[str, int]:
    """The ids of the three FIM tokens; MissingFimTokensError names those the tokenizer lacks (or splits)."""
    missing, ids = [], {}
    for token in FIM_TOKENS:
        encoded = tokenizer.encode(token, add_special_tokens=False)
        if len(encoded) != 1 or encoded[0] == tokenizer.unk_token_id:
            missing.append(token)
        else:
            ids[token] = encoded[0]
    if missing:
        name = getattr(tokenizer, "name_or_path", "the tokenizer")
        raise MissingFimTokensError(
            f"{name} has no single-token {', '.join(missing)}: FIM needs Seed-Coder's FIM tokens "
            "(train one with `python -m datatrove_pipelines.tokenizer train`, or use --fim-rate 0)"
        )
    return ids


def _document_texts(path: str, max_docs: int | None) -> Iterable[str]:
    from datatrove_pipelines.stage import documents_reader

    docs = documents_reader(path, limit=max_docs if max_docs else -1).run()
    return (doc.text for doc in itertools.islice(docs, max_docs) if doc.text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a byte-level BPE with Seed-Coder's special tokens on documents")
    train.add_argument("--input", required=True, help="documents (a folder, or a run folder with kept/)")
    train.add_argument("--output", required=True, help="folder for tokenizer.json, tokenizer_config.json, ...")
    train.add_argument("--vocab-size", type=int, required=True)
    train.add_argument("--max-docs", type=int, default=None, help="train on the first N documents only")
    info = sub.add_parser("info", help="print a tokenizer's special tokens and whether it can do FIM")
    info.add_argument("tokenizer", help="Hub id or local path")
    args = parser.parse_args(argv)
    if args.command == "train":
        try:
            tokenizer = train_tokenizer(_document_texts(args.input, args.max_docs), args.vocab_size)
        except ValueError as error:
            parser.error(str(error))
        tokenizer.save_pretrained(args.output)
        print(f"tokenizer ({len(tokenizer)} tokens) written to {args.output}")
        return
    try:
        tokenizer = load_tokenizer(args.tokenizer)
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: cannot load tokenizer {args.tokenizer}: {error}") from None
    try:
        fim = fim_token_ids(tokenizer)
    except MissingFimTokensError as error:
        fim = str(error)
    print(f"vocabulary: {len(tokenizer)}; bos {tokenizer.bos_token!r}, eos {tokenizer.eos_token!r}; FIM: {fim}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""The one tokenizer home: training from documents on real code, loading by path, the FIM check, the tiny model's use."""

from __future__ import annotations

import gzip
import json
import sysconfig
from pathlib import Path

import pytest

import recipes.tiny_model as tiny_model
from datatrove_pipelines import tokenizer as home
from datatrove_pipelines.tokenizer import (
    FIM_TOKENS,
    MissingFimTokensError,
    fim_token_ids,
    load_tokenizer,
    main,
    tokenizer_json,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def test_tiny_model_names_are_the_homes_names():
    for name in ("SPECIAL_TOKENS", "CHAT_TEMPLATE", "FIM_SUFFIX_TOKEN", "FIM_PREFIX_TOKEN", "FIM_MIDDLE_TOKEN"):
        assert getattr(tiny_model, name) is getattr(home, name)
    assert tiny_model.train_tokenizer is home.train_tokenizer  # no second copy
    assert "def train_tokenizer" not in Path(tiny_model.__file__).read_text()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    docs = tmp_path_factory.mktemp("docs")
    with gzip.open(docs / "0.jsonl.gz", "wt") as handle:
        for path in sorted(STDLIB.glob("*.py"))[:60]:
            handle.write(json.dumps({"text": path.read_text(errors="replace"), "id": path.name}) + "\n")
    out = tmp_path_factory.mktemp("tok")
    main(["train", "--input", str(docs), "--output", str(out), "--vocab-size", "600"])
    return out


def test_trained_tokenizer_round_trips_code_and_has_seed_coder_tokens(trained):
    tokenizer = load_tokenizer(str(trained))
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert len(tokenizer) == 600
    ids = fim_token_ids(tokenizer)
    assert sorted(ids) == sorted(FIM_TOKENS) and len(set(ids.values())) == 3
    source = (STDLIB / "textwrap.py").read_text()
    assert tokenizer.decode(tokenizer.encode(source, add_special_tokens=False)) == source
    assert "<|assistant|>" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    # the bare tokenizer.json loads too, and is what datatrove's DocumentTokenizer reads
    assert tokenizer_json(str(trained)) == str(trained / "tokenizer.json")
    bare = load_tokenizer(str(trained / "tokenizer.json"))
    assert bare.encode(source) == tokenizer.encode(source, add_special_tokens=False)


def test_a_tokenizer_without_fim_tokens_is_named_in_the_error(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel()
    backend.train_from_iterator(["def f(): pass"] * 10, trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>"]))
    plain = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>")
    with pytest.raises(MissingFimTokensError, match="fim-suffix"):
        fim_token_ids(plain)


def test_cli_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o"), "--vocab-size", "600"])
    with pytest.raises(SystemExit) as raised:
        main(["info", str(tmp_path / "nothing-here")])
    assert "cannot load tokenizer" in str(raised.value)

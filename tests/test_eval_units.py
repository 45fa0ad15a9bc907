"""Pieces of the evaluation suite that need no sandbox: pass@k, prompts and answer parsing, FIM, needle."""

from __future__ import annotations

import numpy as np
import pytest

from eval.benchmarks import load_benchmark
from eval.fim import SEED_CODER_FIM, MissingFimTokensError, find_fim_format, line_matches, single_line_examples
from eval.metrics import pass_at_k
from eval.needle import build_examples, context_lengths_for, recalled
from eval.prompts import cruxeval_answer, extract_code_block
from eval.scoring import solution_code


def test_pass_at_k_is_the_unbiased_estimator():
    """EvalPlus's estimator (used by pass_at_k) against the definition 1 - C(n-c, k) / C(n, k), in exact integers."""
    from math import comb

    for n in (1, 5, 20):
        for c in range(n + 1):
            for k in (1, 5, 10):
                if k > n:
                    with pytest.raises(ValueError):
                        pass_at_k(n, c, k)
                    continue
                assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-12)
    assert pass_at_k(10, 0, 1) == 0.0 and pass_at_k(10, 10, 1) == 1.0 and pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 - C(3,2)/C(5,2) = 1 - 3/10


def test_cruxeval_answer_parsing():
    assert cruxeval_answer('f("hi") == "bhihia"\n[/ANSWER]', "output") == '"bhihia"'
    assert cruxeval_answer("f(16) == 17", "input") == "16"
    # "==" inside string literals must not confuse the split
    assert cruxeval_answer('reasoning...\n[ANSWER]\nassert f("a==b", 2) == "x==y"\n[/ANSWER]', "input") == '"a==b", 2'
    assert cruxeval_answer('[ANSWER]\nassert f("a==b", 2) == "x==y"\n[/ANSWER]', "output") == '"x==y"'
    assert cruxeval_answer("[ANSWER]\n[1, 2]\n[/ANSWER]", "output") == "[1, 2]"


def test_extract_code_block_prefers_the_language():
    text = "Here:\n```text\nnot code\n```\nand\n```python\ndef f():\n    return 1\n```\n"
    assert extract_code_block(text, "python") == "def f():\n    return 1\n"
    assert extract_code_block("no fences at all", "python") == "no fences at all"
    assert extract_code_block("```python\ndef g():\n    pass", "python") == "def g():\n    pass"  # unterminated


def test_instruct_solution_keeps_prompt_imports(benchmarks_dir):
    problem = load_benchmark("humaneval", benchmarks_dir)[0]  # uses `from typing import List`
    answer = f"```python\ndef {problem.entry_point}(numbers, threshold):\n    return False\n```"
    code = solution_code(problem, answer, "instruct")
    assert code.startswith("from typing import List") and f"def {problem.entry_point}" in code


def test_fim_examples_reassemble_the_reference(benchmarks_dir):
    problems = load_benchmark("humaneval", benchmarks_dir)
    examples = single_line_examples(problems)
    assert len(examples) > 900  # every non-blank solution line of 164 problems
    by_problem = {p.task_id: p for p in problems}
    for example in examples[:200]:
        problem = by_problem[example.task_id.rsplit("/L", 1)[0]]
        assert example.prefix + example.middle + example.suffix == problem.prompt + problem.canonical_solution
        assert "\n" not in example.middle and example.middle.strip()
    prompt = SEED_CODER_FIM.prompt("PRE", "SUF")
    assert prompt == "<[fim-suffix]>SUF<[fim-prefix]>PRE<[fim-middle]>"  # SPM, as Seed-Coder was trained
    assert line_matches("    return x  \nmore", "    return x") and not line_matches("return y", "return x")


def test_fim_tokens_read_from_the_tokenizer(tiny_model_dir):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    assert find_fim_format(AutoTokenizer.from_pretrained(tiny_model_dir)) == SEED_CODER_FIM
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel()
    backend.train_from_iterator(["def f(): return 1"] * 10, trainer=trainers.BpeTrainer(vocab_size=300))
    no_fim = PreTrainedTokenizerFast(tokenizer_object=backend)
    with pytest.raises(MissingFimTokensError, match="fill-in-the-middle"):
        find_fim_format(no_fim)


def test_needle_examples_plant_the_answer_at_depth(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    count = lambda text: len(tokenizer(text)["input_ids"])  # noqa: E731
    assert context_lengths_for(32768) == [1024, 2048, 4096, 8192, 16384, 32704]
    examples = build_examples(4096, count)
    assert {e.context_tokens for e in examples} == {1024, 2048, 4032}
    for example in examples:
        tokens = count(example.prompt)
        assert 0.8 * example.context_tokens <= tokens <= example.context_tokens
        key = example.prompt.rsplit("assert needle_", 1)[1].split("(")[0]
        position = example.prompt.index(f"def needle_{key}")
        relative = position / len(example.prompt)
        assert abs(relative - example.depth) < 0.1
        assert f"return {example.answer}\n" in example.prompt
    # distinct keys and answers: a model cannot pass by memorising one
    assert len({e.answer for e in examples}) == len(examples)
    assert recalled(" 123456\n", "123456") and not recalled("12345", "123456")
    assert np.mean([recalled(e.answer, e.answer) for e in examples]) == 1.0


def test_mbpp_training_split_is_a_training_source_not_a_benchmark(benchmarks_dir):
    """MBPP's training split (task ids 601-974) lives in eval.benchmarks beside the evaluation split, but outside the
    evaluation benchmarks (never evaluated on, never indexed by decontamination)."""
    from datatrove_pipelines.post_training.seeds import load_mbpp_train
    from eval.benchmarks import MBPP_TRAIN, TRAINING_SOURCES, available_benchmarks

    train = load_benchmark(MBPP_TRAIN, benchmarks_dir)
    ids = sorted(int(p.task_id) for p in train)
    assert (len(ids), ids[0], ids[-1]) == (374, 601, 974)
    assert MBPP_TRAIN in TRAINING_SOURCES and MBPP_TRAIN not in available_benchmarks()
    test_ids = {int(p.task_id) for p in load_benchmark("mbpp", benchmarks_dir)}
    assert not test_ids & set(ids)
    assert [p.task_id for p in load_mbpp_train(str(benchmarks_dir))] == [p.task_id for p in train]


def test_fim_tokens_come_from_the_tokenizer_home():
    from datatrove_pipelines.tokenizer import FIM_MIDDLE_TOKEN, FIM_PREFIX_TOKEN, FIM_SUFFIX_TOKEN

    assert SEED_CODER_FIM.prompt("P", "S") == f"{FIM_SUFFIX_TOKEN}S{FIM_PREFIX_TOKEN}P{FIM_MIDDLE_TOKEN}"


def test_extract_code_block_first_or_last_and_a_continued_fence():
    text = "```python\nx = 1\n```\nthen\n```python\nx = 2\n```\n```text\nout\n```"
    assert extract_code_block(text, "python") == "x = 1\n"
    assert extract_code_block(text, "python", last=True) == "x = 2\n"
    assert extract_code_block("```golang\nfunc f() {}\n```", "go", last=True) == "func f() {}\n"
    # An answer that continued the prompt's open fence ends with a lone closing fence: the code is what precedes it.
    assert extract_code_block("    return a + b\n```\n", "python") == "    return a + b\n"

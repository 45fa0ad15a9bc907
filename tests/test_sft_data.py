"""python -m datatrove_pipelines.sft_data: sandbox self-correction with a generator behind a real loopback HTTP server.

The generator is a stand-in (tests/openai_stand_in.py: no model server can run here); the sandbox, the pipeline,
the decontamination index and the tree-sitter check are the real ones."""

from __future__ import annotations

import json
import re

from datatrove.data import Document
from documents import read_docs as read_jsonl_gz
from openai_stand_in import StandInChatServer

from datatrove_pipelines.post_training.steps import CodeBlockSyntaxFilter, LengthConfig, LengthFilter, parse_answer
from datatrove_pipelines.sft_data import main

RIGHT = "def scale_all(values, k):\n    return [v * k for v in values]"
WRONG = "def scale_all(values, k):\n    return [v + k for v in values]"
TESTS = "assert scale_all([1, 2], 3) == [3, 6]\nassert scale_all([], 5) == []\nassert scale_all([4], 0) == [0]"


def answer(solution: str) -> str:
    return (
        "### Instruction\nWrite scale_all(values, k) returning every value multiplied by k.\n"
        f"### Solution\n```python\n{solution}\n```\n### Tests\n```python\n{TESTS}\n```"
    )


class Generator:
    """Each seed gets a behaviour, round robin: fixes its bug after feedback, never fixes it, answers garbage,
    is right at once."""

    MODES = ("fix", "never", "garbage", "right")

    def __init__(self):
        self.mode_of: dict[str, str] = {}

    def __call__(self, messages: list[dict], n: int) -> list[str]:
        seed = re.search(r"do not copy it\):\n(.*?)\nWrite a new", messages[0]["content"], re.DOTALL).group(1)
        mode = self.mode_of.setdefault(seed, self.MODES[len(self.mode_of) % len(self.MODES)])
        fed_back = any(m["role"] == "user" and "did not pass" in m["content"] for m in messages[1:])
        if mode == "garbage":
            return ["Sure! Here is some code: print('hi')"] * n
        if mode == "right" or (mode == "fix" and fed_back):
            return [answer(RIGHT)] * n
        return [answer(WRONG)] * n


def test_self_correction_keeps_only_verified_examples(tmp_path, benchmarks_dir):
    generator = Generator()
    out = tmp_path / "sft"
    with StandInChatServer(generator) as server:
        argv = ["--input", "mbpp_train", "--output", str(out), "--benchmarks", str(benchmarks_dir), "--limit", "80"]
        argv += ["--generator-model", "stand-in", "--generator-base-url", server.base_url, "--max-attempts", "3"]
        argv += ["--batch-size", "4"]
        main(argv)
    modes = list(generator.mode_of.values())
    assert {"fix", "never", "garbage", "right"} <= set(modes)

    kept = read_jsonl_gz(out / "kept")
    assert len(kept) == modes.count("fix") + modes.count("right")
    corrected = [d for d in kept if d["metadata"]["self_corrected"]]
    assert len(corrected) == modes.count("fix") and all(d["metadata"]["attempts"] == 2 for d in corrected)
    for doc in kept:
        messages = doc["metadata"]["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert RIGHT in messages[1]["content"] and WRONG not in messages[1]["content"]
        assert doc["metadata"]["tests_passed"] == "3/3"

    # The sandbox's error output went back to the generator (a failing test and its assertion).
    feedback = [m["content"] for r in server.requests for m in r["messages"][1:] if m["role"] == "user"]
    from_sandbox = [f for f in feedback if "tests passed" in f]
    assert from_sandbox and all("AssertionError" in f and "scale_all([1, 2], 3)" in f for f in from_sandbox)
    assert len(feedback) > len(from_sandbox)  # the garbage answers were told what format was missing

    excluded = read_jsonl_gz(out / "excluded" / "synthesis")
    reasons = [d["metadata"]["filter_reason"] for d in excluded]
    assert reasons.count("unverified") == modes.count("never")
    assert reasons.count("unparseable") == modes.count("garbage")
    never = [d for d in excluded if d["metadata"]["filter_reason"] == "unverified"]
    assert all(len(d["metadata"]["attempt_errors"]) == 3 for d in never)

    stats = json.loads((out / "stats.json").read_text())
    funnel = json.dumps(stats)
    assert "seed_decontamination" in funnel and "synthesis" in funnel
    # Seeds shared with MBPP+/sanitized MBPP (test splits) never reached the generator.
    contaminated = read_jsonl_gz(out / "excluded" / "seed_decontamination")
    assert contaminated and len(generator.mode_of) == 80 - len(contaminated)
    assert (out / "README.md").read_text().count("Sandbox-verified") >= 1


def test_unreachable_generator_excludes_with_a_reason(tmp_path, benchmarks_dir):
    out = tmp_path / "sft"
    argv = ["--input", "mbpp_train", "--output", str(out), "--benchmarks", str(benchmarks_dir), "--limit", "12"]
    argv += ["--generator-model", "x", "--generator-base-url", "http://127.0.0.1:9/v1", "--no-decontamination"]
    main(argv)
    excluded = read_jsonl_gz(out / "excluded" / "synthesis")
    assert len(excluded) == 12 and {d["metadata"]["filter_reason"] for d in excluded} == {"generator_error"}


def test_code_block_syntax_filter_and_answer_parsing():
    step = CodeBlockSyntaxFilter()
    good = Document(
        "x",
        "a",
        metadata={"language": "python", "messages": [{"role": "assistant", "content": "```python\nx = 1\n```"}]},
    )
    bad = Document(
        "y",
        "b",
        metadata={"language": "python", "messages": [{"role": "assistant", "content": "```python\ndef (:\n```"}]},
    )
    assert step.check(good) is None and step.check(bad) == "syntax_error"
    parsed = parse_answer(answer(RIGHT), "python")
    assert parsed.solution == RIGHT and len(parsed.tests) == 3
    assert parse_answer("### Instruction\nonly this", "python") is None


def test_length_filter_excludes_too_short_and_too_long_responses():
    step = LengthFilter(LengthConfig(min_response_chars=10, max_response_chars=50))

    def doc(response: str) -> Document:
        return Document("t", "d", metadata={"messages": [{"role": "assistant", "content": response}]})

    assert step.check(doc("```python\nx = 1\n```")) is None
    assert step.check(doc("x")) == "too_short" and step.check(doc("x" * 51)) == "too_long"

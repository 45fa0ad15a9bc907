"""python -m datatrove_pipelines.dpo_data: k policy samples per problem judged in the sandbox; pairs are
(passing, failing). The policy is a stand-in behind a real loopback HTTP server (no model server can run here); the
judge is the real sandbox, and eval.execution's MBPP harness re-judges every pair as a peer."""

from __future__ import annotations

import gzip
import json

from documents import read_docs as read_jsonl_gz
from openai_stand_in import StandInChatServer

from datatrove_pipelines.dpo_data import main
from datatrove_pipelines.post_training.seeds import mbpp_train_records
from datatrove_pipelines.post_training.steps import problem_prompt


class Policy:
    """Per problem, round robin: a mix of right and wrong samples, all right, all wrong."""

    MODES = ("mixed", "all_right", "all_wrong")

    def __init__(self, records):
        self.reference = {problem_prompt(r): r["reference"] for r in records}
        self.mode_of: dict[str, str] = {}

    def __call__(self, messages, n):
        prompt = messages[-1]["content"]
        mode = self.mode_of.setdefault(prompt, self.MODES[len(self.mode_of) % len(self.MODES)])
        right = f"Here you go:\n```python\n{self.reference[prompt]}\n```"
        wrong = "```python\ndef nothing_useful():\n    return None\n```"
        if mode == "mixed":
            return [right if i % 2 == 0 else wrong for i in range(n)]
        return [right if mode == "all_right" else wrong] * n


def test_pairs_are_passing_vs_failing(tmp_path, benchmarks_dir):
    from eval.benchmarks import Problem
    from eval.execution import execute
    from eval.programs import mbpp_program

    records = {r["seed_id"]: r for r in mbpp_train_records(str(benchmarks_dir))}
    policy = Policy(list(records.values()))
    out = tmp_path / "dpo"
    with StandInChatServer(policy) as server:
        argv = ["--input", "mbpp_train", "--output", str(out), "--benchmarks", str(benchmarks_dir), "--limit", "90"]
        argv += ["--policy-model", "stand-in", "--policy-base-url", server.base_url, "--k", "4"]
        argv += ["--max-pairs-per-prompt", "2", "--system-prompt", "You are Seed-Coder."]
        main(argv)
    assert all(r["n"] == 4 for r in server.requests)
    modes = list(policy.mode_of.values())
    kept = read_jsonl_gz(out / "kept")
    assert len(kept) == modes.count("mixed") > 0
    excluded = read_jsonl_gz(out / "excluded" / "pairs")
    reasons = [d["metadata"]["filter_reason"] for d in excluded]
    assert reasons.count("no_failing") == modes.count("all_right") and reasons.count("no_passing") == modes.count(
        "all_wrong"
    )

    programs, expected = [], []
    for doc in kept:
        meta = doc["metadata"]
        assert meta["prompt"][0] == {"role": "system", "content": "You are Seed-Coder."}
        assert meta["judged"] == {"passing": 2, "failing": 2} and len(meta["pairs"]) == 2
        record = records[meta["seed_id"]]
        problem = Problem(
            record["seed_id"], "mbpp", "python", "", test=record["test_setup"] + "\n" + "\n".join(record["tests"])
        )
        for pair in meta["pairs"]:
            for text, passes in ((pair["chosen"], True), (pair["rejected"], False)):
                code = text.split("```python\n", 1)[1].rsplit("```", 1)[0]
                programs.append(mbpp_program(problem, code))
                expected.append(passes)
    assert [o.passed for o in execute(programs)] == expected

    stats = json.loads((out / "stats.json").read_text())
    assert "pairs" in json.dumps(stats)


def test_an_sft_data_run_is_a_valid_input(tmp_path):
    """dpo_data reads the verified examples of an sft_data run (instruction + tests in metadata) as its problems; a
    malformed line among them is excluded with its reason and counted, not dropped."""
    kept = tmp_path / "sft_run" / "kept"
    kept.mkdir(parents=True)
    instruction = "Write triple(x) returning three times x."
    doc = {
        "text": instruction,
        "id": "example-0",
        "metadata": {
            "seed_id": "example-0",
            "language": "python",
            "instruction": instruction,
            "solution": "def triple(x):\n    return 3 * x",
            "tests": ["assert triple(2) == 6", "assert triple(0) == 0"],
            "test_setup": "",
        },
    }
    with gzip.open(kept / "00000.jsonl.gz", "wt") as handle:
        handle.write(json.dumps(doc) + "\n")
        handle.write('{"text": "cut off\n')  # a careless line: not JSON

    def policy(messages, n):
        assert messages[-1]["content"].startswith(instruction)
        return ["```python\ndef triple(x):\n    return x * 3\n```", "```python\ndef triple(x):\n    return x + 3\n```"]

    out = tmp_path / "pairs"
    with StandInChatServer(policy) as server:
        main(
            [
                "--input",
                str(tmp_path / "sft_run"),
                "--output",
                str(out),
                "--no-decontamination",
                "--k",
                "2",
                "--policy-model",
                "stand-in",
                "--policy-base-url",
                server.base_url,
            ]
        )
    (pair_doc,) = read_jsonl_gz(out / "kept")
    (pair,) = pair_doc["metadata"]["pairs"]
    assert "x * 3" in pair["chosen"] and "x + 3" in pair["rejected"] and pair["rejected_tests_passed"] == "0/2"
    (bad,) = read_jsonl_gz(out / "excluded" / "read")
    assert "json" in bad["metadata"]["filter_reason"].lower()
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["total"]["docs_in"], stats["total"]["docs_kept"], stats["total"]["docs_excluded"]) == (2, 1, 1)

"""LiveCodeBench records (hand-written in the dataset's own format: the data itself is Hub-only) judged in the
sandbox through lighteval's prompt function and our harness."""

from __future__ import annotations

import base64
import json
import pickle
import zlib

from eval.livecodebench import livecodebench_prompt_fn
from eval.scoring import judge


def _record(
    question_id: str, public: list[dict], private: list[dict], func_name: str | None, starter: str = ""
) -> dict:
    encoded = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(private)))).decode()
    return {
        "question_id": question_id,
        "question_content": "Read two integers and print their sum.",
        "starter_code": starter,
        "public_test_cases": json.dumps(public),
        "private_test_cases": encoded,
        "metadata": json.dumps({"func_name": func_name} if func_name else {}),
    }


def test_stdin_and_functional_problems():
    stdin_doc = livecodebench_prompt_fn(
        _record(
            "abc001_a",
            [{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}],
            [
                {"input": "10 -4\n", "output": "6\n", "testtype": "stdin"},
                {"input": "0 0\n", "output": "0", "testtype": "stdin"},
            ],
            None,
        )
    )
    functional_doc = livecodebench_prompt_fn(
        _record(
            "lc_1",
            [{"input": "[1, 2, 3]\n2", "output": "[2, 4, 6]", "testtype": "functional"}],
            [{"input": "[]\n5", "output": "[]", "testtype": "functional"}],
            "scale",
            starter="class Solution:\n    def scale(self, nums: List[int], k: int) -> List[int]:\n        ",
        )
    )
    assert "starter code" in functional_doc.query and stdin_doc.specific["kind"] == "lcb"
    right_stdin = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    wrong_stdin = "```python\na, b = map(int, input().split())\nprint(a - b)\n```"
    right_fn = "```python\nclass Solution:\n    def scale(self, nums, k):\n        return [x * k for x in nums]\n```"
    slow_fn = "```python\nclass Solution:\n    def scale(self, nums, k):\n        while True:\n            pass\n```"
    outcomes = judge(
        [
            (stdin_doc.specific, right_stdin),
            (stdin_doc.specific, wrong_stdin),
            (functional_doc.specific, right_fn),
            (functional_doc.specific, slow_fn),
        ],
        workers=2,
    )
    assert [o.passed for o in outcomes] == [True, False, True, False]

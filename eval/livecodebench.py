"""LiveCodeBench through lighteval's own task (its dataset, prompt and code extraction), judged in our sandbox.

lighteval's ``lcb:codegeneration`` runs generated code in-process without a sandbox; here its prompt function and
data (``lighteval/code_generation_lite``, subset ``v4_v5`` by default) are kept and the metric is replaced: all
test cases of a sample run inside ONE sandbox execution, compared the way LiveCodeBench does (stdin/stdout programs:
line by line after stripping, numbers compared as decimals; LeetCode-style ``Solution`` methods: JSON arguments,
equality of the returned value). The data comes from the Hub (or its local cache), so this task needs that access.
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

from eval.execution import DISCARD_STREAM, HARNESS_ALARM, Program
from eval.scoring import register_program_builder

LCB_TIMEOUT_PER_TEST_S = 6.0

LCB_HARNESS = r"""
import base64, contextlib, io, json, pickle, signal, sys
from decimal import Decimal, InvalidOperation
DATA = pickle.loads(base64.b64decode(__PAYLOAD__))
__DISCARD__
__ALARM__

def _lines(text):
    return [line.strip() for line in text.strip().split("\n")]

def _same_line(a, b):
    if a == b:
        return True
    try:
        xs, ys = [Decimal(x) for x in a.split()], [Decimal(y) for y in b.split()]
    except InvalidOperation:
        return False
    return len(xs) == len(ys) and all(x == y for x, y in zip(xs, ys))

def _report(status, index=None, error=""):
    sys.__stdout__.write(json.dumps({"status": status, "test_index": index, "error": error[-300:]}) + "\n")
    sys.__stdout__.flush()
    if status != "passed":
        sys.exit(1)

code = DATA["prelude"] + "\n" + DATA["code"]
for index, (given, expected) in enumerate(zip(DATA["inputs"], DATA["outputs"])):
    signal.setitimer(signal.ITIMER_REAL, DATA["timeout"])
    try:
        if DATA["fn_name"]:
            namespace = {"__name__": "__candidate__"}
            with contextlib.redirect_stdout(_Discard()):
                exec(compile(code, "<candidate>", "exec"), namespace)
                target = namespace["Solution"]() if "Solution" in namespace else None
                method = getattr(target, DATA["fn_name"]) if target is not None else namespace[DATA["fn_name"]]
                args = [json.loads(line) for line in given.split("\n") if line.strip()]
                result = method(*args)
            ok = result == json.loads(expected) or (isinstance(result, tuple) and list(result) == json.loads(expected))
        else:
            stdout = io.StringIO()
            sys.stdin = io.StringIO(given)
            with contextlib.redirect_stdout(stdout):
                try:
                    exec(compile(code, "<candidate>", "exec"), {"__name__": "__main__"})
                except SystemExit:
                    pass
            got, want = _lines(stdout.getvalue()), _lines(expected)
            ok = len(got) == len(want) and all(_same_line(a, b) for a, b in zip(got, want))
    except _Timeout:
        _report("failed", index, "timeout")
    except BaseException as error:
        _report("failed", index, f"{type(error).__name__}: {error}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if not ok:
        _report("failed", index, "wrong answer")
_report("passed")
""".replace("__ALARM__", HARNESS_ALARM).replace("__DISCARD__", DISCARD_STREAM)


def livecodebench_program(code: str, inputs: list[str], outputs: list[str], fn_name: str | None) -> Program:
    from lighteval.tasks.tasks.lcb.codegen_metrics import import_string  # LiveCodeBench's standard imports

    payload = {
        "code": code,
        "inputs": list(inputs),
        "outputs": list(outputs),
        "fn_name": fn_name,
        "prelude": import_string,
        "timeout": LCB_TIMEOUT_PER_TEST_S,
    }
    encoded = base64.b64encode(pickle.dumps(payload, protocol=4)).decode("ascii")
    timeout = min(LCB_TIMEOUT_PER_TEST_S * max(len(inputs), 1), 120.0) + 5.0
    return Program("python", LCB_HARNESS.replace("__PAYLOAD__", repr(encoded)), timeout_s=timeout, memory_mb=2048)


@register_program_builder("lcb")
def _lcb_program(specific: dict[str, Any], completion: str) -> Program:
    return livecodebench_program(
        extract_answer_code(completion), specific["inputs"], specific["outputs"], specific.get("fn_name")
    )


def extract_answer_code(text: str) -> str:
    """lighteval's LiveCodeBench extraction (the last fenced block), falling back to ours for unterminated blocks."""
    from lighteval.tasks.tasks.lcb.codegen_metrics import extract_code

    from eval.prompts import extract_code_block

    return extract_code(text) or extract_code_block(text, "python")


def livecodebench_prompt_fn(line: dict[str, Any], task_name: str = "livecodebench"):
    from lighteval.tasks.tasks.lcb.main import lcb_codegeneration_prompt_fn

    doc = lcb_codegeneration_prompt_fn(line, task_name)
    doc.specific.update(kind="lcb", mode="instruct", task_id=line.get("question_id", doc.id))
    return doc


def livecodebench_config(options: Any, subset: str = "v4_v5"):
    """lighteval's LiveCodeBench task config with our sandboxed pass@k metric (instruct models: chat prompts)."""
    from lighteval.tasks.lighteval_task import LightevalTaskConfig

    from eval.metrics import SampleJudge, code_metrics

    ks = [k for k in options.ks if k <= options.n_samples] or [1]
    return LightevalTaskConfig(
        name="livecodebench",
        prompt_function=livecodebench_prompt_fn,
        hf_repo="lighteval/code_generation_lite",
        hf_subset=subset,
        hf_avail_splits=["test"],
        evaluation_splits=["test"],
        generation_size=options.max_new_tokens or 4096,
        metrics=code_metrics(ks, SampleJudge(options.workers)),
        stop_sequence=[],
        num_samples=[options.n_samples],
        version=1,
    )

"""pass@k (and exact match) as lighteval metrics, every sample judged by :mod:`eval.scoring` in the sandbox.

The metrics are *batched* (lighteval hands them all documents of a task at once), so every sample of a task is
executed in one parallel sandbox run. The pass@k metrics of one task share a :class:`SampleJudge`, which executes
each sample once and keeps per-problem records for the runner's report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lighteval.metrics.metrics_sample import SampleLevelComputation
from lighteval.metrics.utils.metric_utils import SampleLevelMetric
from lighteval.models.model_output import ModelResponse
from lighteval.tasks.requests import Doc, SamplingMethod

from eval.scoring import judge


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al., 2021): EvalPlus's own estimator."""
    from evalplus.eval import estimate_pass_at_k

    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    return float(estimate_pass_at_k(n, [c], k)[0])


class SampleJudge:
    """Judges every sample of a task once and remembers per-problem results (n, c, each sample's outcome)."""

    def __init__(self, workers: int | None = None):
        self.workers = workers
        self.records: dict[str, dict[str, Any]] = {}

    def __str__(self) -> str:  # lighteval prints metric configs; the records are not configuration
        return f"SampleJudge(workers={self.workers})"

    def __deepcopy__(self, memo: dict) -> SampleJudge:
        copied = SampleJudge(self.workers)
        memo[id(self)] = copied
        return copied

    @staticmethod
    def _key(doc: Doc) -> str:
        return f"{doc.task_name}/{doc.specific['task_id']}"

    def _completions(self, response: ModelResponse) -> list[str]:
        texts = response.text_post_processed if response.text_post_processed else response.text
        return list(texts or [""])

    def ensure(self, docs: list[Doc], responses: list[ModelResponse]) -> None:
        pending = [
            (doc, resp) for doc, resp in zip(docs, responses, strict=True) if self._key(doc) not in self.records
        ]
        samples = [(doc.specific, text) for doc, resp in pending for text in self._completions(resp)]
        outcomes = iter(judge(samples, workers=self.workers))
        for doc, response in pending:
            completions = self._completions(response)
            judged = [next(outcomes) for _ in completions]
            self.records[self._key(doc)] = {
                "task": doc.task_name.split("|")[0],
                "task_id": doc.specific["task_id"],
                "n": len(judged),
                "correct": sum(o.passed for o in judged),
                "samples": [{"completion": text, **o.to_dict()} for text, o in zip(completions, judged, strict=True)],
            }

    def correct(self, doc: Doc) -> tuple[int, int]:
        record = self.records[self._key(doc)]
        return record["n"], record["correct"]


class PassAtK(SampleLevelComputation):
    """pass@k of one problem from its n samples; batched so a whole task executes in one sandbox run."""

    def __init__(self, k: int, judge_: SampleJudge):
        self.k = k
        self.judge = judge_

    def compute(self, responses: list[ModelResponse], docs: list[Doc], **kwargs) -> list[float]:
        self.judge.ensure(docs, responses)
        values = []
        for doc in docs:
            n, c = self.judge.correct(doc)
            values.append(pass_at_k(n, c, self.k) if n >= self.k else float("nan"))
        return values


def code_metrics(ks: list[int], judge_: SampleJudge | None = None, name: str = "pass@{k}") -> list[SampleLevelMetric]:
    """One batched lighteval metric per k, all sharing one judge (each sample executes once)."""
    shared = judge_ or SampleJudge()
    return [
        SampleLevelMetric(
            metric_name=name.format(k=k),
            higher_is_better=True,
            category=SamplingMethod.GENERATIVE,
            sample_level_fn=PassAtK(k, shared),
            corpus_level_fn=np.mean,
            batched_compute=True,
        )
        for k in ks
    ]


def judge_of(task: Any) -> SampleJudge | None:
    """The judge behind a loaded lighteval task's metrics (where the per-problem records are)."""
    for metric in task.metrics:
        fn = metric.sample_level_fn
        if isinstance(fn, PassAtK):
            return fn.judge
    return None

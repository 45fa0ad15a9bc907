"""The datatrove steps of the post-training data builders.

* :class:`SeedReader`: MBPP's training split (offline) as seed documents, or documents read from a folder.
* :class:`SelfCorrectingSynthesis`: the generator writes an instruction, a solution and unit tests; the sandbox runs
  them; failures go back to the generator with the error output, up to ``max_attempts``; only verified examples pass.
* :class:`CodeBlockSyntaxFilter`: tree-sitter syntax check of the code blocks of a response.
* :class:`LengthFilter`: responses too short or too long.
* :class:`OnPolicyPairs`: ``k`` completions per prompt from the policy, judged in the sandbox; (passing, failing) pairs.
"""

from __future__ import annotations

import ast
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.disk_base import DiskWriter

from datatrove_pipelines.funnel import FunnelFilter, FunnelMixin
from datatrove_pipelines.post_training.generation import GenerationError, GeneratorConfig, build_generator
from datatrove_pipelines.post_training.seeds import MBPP_TRAIN, mbpp_train_records, seed_documents
from eval.code_reward import CodeTests, TestRun, score_tests
from eval.prompts import extract_code_block

_SECTION = re.compile(r"^#{2,4}\s*(instruction|solution|tests?)\s*:?\s*$", re.IGNORECASE | re.MULTILINE)
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)
FENCE_NAMES = {
    "python": "python",
    "cpp": "cpp",
    "javascript": "javascript",
    "bash": "bash",
    "go": "go",
    "rust": "rust",
}


class SeedReader(PipelineStep):
    """Seed documents from MBPP's training split (``mbpp_train``: task ids 601-974, offline). A documents folder is
    read by :func:`seed_reader` with the stage's fault-tolerant reader instead, so that a malformed line is excluded
    and counted (``excluded/read/``), not dropped."""

    type = "📖 - READER"
    name = "seeds"

    def __init__(self, source: str, benchmarks_dir: str | None = None, limit: int | None = None):
        super().__init__()
        if source != MBPP_TRAIN:
            raise ValueError(f"SeedReader reads {MBPP_TRAIN}; read a documents folder with seed_reader ({source!r})")
        self.source, self.benchmarks_dir, self.limit = source, benchmarks_dir, limit

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        records = mbpp_train_records(self.benchmarks_dir, self.limit)
        for position, doc in enumerate(seed_documents(records)):
            if position % world_size == rank:
                self.stat_update("seeds")
                yield doc


def seed_reader(source: str, benchmarks_dir: str | None = None, limit: int | None = None) -> PipelineStep:
    """The first step of a data builder: MBPP's training split (``mbpp_train``) or a documents folder (DOCS, or a run
    folder's ``kept/``) through the stage's fault-tolerant reader, which the stage gives an ``excluded/read/`` writer."""
    if source == MBPP_TRAIN:
        return SeedReader(source, benchmarks_dir, limit)
    from datatrove_pipelines.stage import documents_reader

    return documents_reader(source, limit=limit or -1)


def seed_record(doc: Document) -> dict[str, Any]:
    """The seed of a document: an MBPP-style problem (``metadata.seed``), a verified example of an sft_data run
    (instruction, solution, tests), or a code snippet (the text itself)."""
    seed = doc.metadata.get("seed")
    if isinstance(seed, dict):
        return seed
    if doc.metadata.get("instruction") and doc.metadata.get("tests"):  # a verified example (an sft_data run)
        meta = doc.metadata
        return {
            "seed_id": meta.get("seed_id", str(doc.id)),
            "instruction": meta["instruction"],
            "reference": meta.get("solution", ""),
            "tests": list(meta["tests"]),
            "test_setup": meta.get("test_setup", ""),
            "language": meta.get("language", "python"),
        }
    return {
        "seed_id": str(doc.id),
        "instruction": "",
        "snippet": doc.text,
        "language": doc.metadata.get("language", "python"),
    }


# ---------------------------------------------------------------------------------------------------------------------
# Parsing a generator's answer


@dataclass
class Synthesized:
    instruction: str
    solution: str
    tests: list[str]
    setup: str = ""


def split_tests(code: str, language: str) -> tuple[list[str], str]:
    """(tests, setup): Python top-level statements (imports and definitions are setup, the rest one test each);
    other languages one test per non-empty line."""
    if language != "python":
        return [line for line in code.splitlines() if line.strip() and not line.strip().startswith("//")], ""
    try:
        module = ast.parse(code)
    except SyntaxError:
        return [], ""
    lines = code.splitlines()
    tests, setup = [], []
    for node in module.body:
        source = "\n".join(lines[node.lineno - 1 : node.end_lineno])
        is_setup = isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.ClassDef | ast.Assign)
        (setup if is_setup else tests).append(source)
    return tests, "\n".join(setup)


def parse_answer(text: str, language: str) -> Synthesized | None:
    """Instruction, solution and tests from ``### Instruction`` / ``### Solution`` / ``### Tests`` sections."""
    parts = _SECTION.split(text)
    sections: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=False):
        sections[name.lower().rstrip("s")] = body.strip()
    if not {"instruction", "solution", "test"} <= set(sections):
        return None
    solution = extract_code_block(sections["solution"], language, last=True).strip("\n")
    tests_code = extract_code_block(sections["test"], language, last=True)
    tests, setup = split_tests(tests_code, language)
    if not solution or not tests:
        return None
    return Synthesized(sections["instruction"], solution, tests, setup)


SYNTHESIS_PROMPT = """You write training data for a code assistant.
{seed}
Write a new, self-contained programming task in {language}, a correct solution, and unit tests for it.
Answer in exactly this format:
### Instruction
<the task, as a user would ask it>
### Solution
```{fence}
<the solution>
```
### Tests
```{fence}
<assert statements, one test per statement>
```"""

FEEDBACK_PROMPT = """Your solution and tests were run in a sandbox and did not pass:
{error}
Fix the solution (or a test that is wrong) and answer again in the same format."""


def synthesis_prompt(seed: dict[str, Any]) -> str:
    language = seed.get("language", "python")
    if seed.get("instruction"):
        described = f"Seed problem (for inspiration; do not copy it):\n{seed['instruction']}"
    else:
        described = f"Seed code snippet (for inspiration):\n```\n{seed.get('snippet', '')[:4000]}\n```"
    return SYNTHESIS_PROMPT.format(seed=described, language=language, fence=FENCE_NAMES.get(language, language))


def response_text(example: Synthesized, language: str) -> str:
    """The assistant turn of the SFT example: the verified solution in a fenced block."""
    return f"```{FENCE_NAMES.get(language, language)}\n{example.solution}\n```"


@dataclass
class SynthesisConfig:
    generator: GeneratorConfig
    max_attempts: int = 3  # first try + self-corrections
    batch_size: int = 8  # seeds whose tests run in one sandbox batch
    timeout_s: float = 10.0
    sandbox_workers: int | None = None


class BatchedSandboxStep(FunnelMixin, PipelineStep):
    """A step that works on ``config.batch_size`` documents at a time (one generation request and one sandbox batch
    for all of them); subclasses implement :meth:`_batch`, which yields the kept documents and excludes the others
    through ``writer``."""

    def __init__(self, step: str, config: Any, exclusion_writer: DiskWriter | None = None):
        self.funnel_step = self.name = step
        super().__init__()
        self.config = config
        self.exclusion_writer = exclusion_writer

    def _batch(self, docs: list[Document], writer: DiskWriter | None, rank: int) -> Iterator[Document]:
        raise NotImplementedError

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.exclusion_writer or contextlib.nullcontext() as writer:
            batch: list[Document] = []
            for doc in data or ():
                batch.append(doc)
                if len(batch) >= self.config.batch_size:
                    yield from self._batch(batch, writer, rank)
                    batch = []
            if batch:
                yield from self._batch(batch, writer, rank)


class SelfCorrectingSynthesis(BatchedSandboxStep):
    """Generator writes instruction + solution + tests → sandbox → error fed back → ... → only verified examples kept.

    Reasons: ``unverified`` (every attempt failed in the sandbox), ``unparseable`` (no attempt had the three parts),
    ``generator_error`` (the endpoint failed)."""

    type = "🤖 - SYNTHESIS"

    def __init__(self, config: SynthesisConfig, exclusion_writer: DiskWriter | None = None):
        super().__init__("synthesis", config, exclusion_writer)
        self._generator = None

    @property
    def generator(self):
        if self._generator is None:
            self._generator = build_generator(self.config.generator)
        return self._generator

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_generator"] = None
        return state

    def _attempt(self, conversations: list[list[dict]], languages: list[str]) -> list[tuple[str, Any]]:
        """One round: an answer per conversation, parsed and judged (answer, Synthesized | None, TestRun | None)."""
        answers = [texts[0] for texts in self.generator.generate(conversations, n=1)]
        parsed = [parse_answer(a, lang) for a, lang in zip(answers, languages, strict=True)]
        to_run = [i for i, p in enumerate(parsed) if p is not None]
        runs = score_tests(
            [parsed[i].solution for i in to_run],
            [
                CodeTests(languages[i], parsed[i].tests, parsed[i].setup, timeout_s=self.config.timeout_s)
                for i in to_run
            ],
            workers=self.config.sandbox_workers,
        )
        verdicts: list[TestRun | None] = [None] * len(answers)
        for i, run in zip(to_run, runs, strict=True):
            verdicts[i] = run
        return list(zip(answers, parsed, verdicts, strict=True))

    def _batch(self, docs: list[Document], writer: DiskWriter | None, rank: int) -> Iterator[Document]:
        seeds = [seed_record(doc) for doc in docs]
        languages = [seed.get("language", "python") for seed in seeds]
        conversations = [[{"role": "user", "content": synthesis_prompt(seed)}] for seed in seeds]
        outcome: dict[int, tuple[str, Any]] = {}
        pending = list(range(len(docs)))
        parsed_once = [False] * len(docs)
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                results = self._attempt([conversations[i] for i in pending], [languages[i] for i in pending])
            except GenerationError as error:
                for i in pending:
                    docs[i].metadata["generator_error"] = str(error)[:300]
                    outcome[i] = ("generator_error", None)
                break
            still = []
            for i, (answer, parsed, verdict) in zip(pending, results, strict=True):
                conversations[i].append({"role": "assistant", "content": answer})
                if parsed is None:
                    error = "the answer lacked the ### Instruction / ### Solution / ### Tests parts"
                else:
                    parsed_once[i] = True
                    if verdict.all_passed:
                        outcome[i] = ("kept", (parsed, attempt, verdict))
                        continue
                    error = f"{verdict.passed}/{verdict.total} tests passed; {verdict.reason}"
                docs[i].metadata.setdefault("attempt_errors", []).append(error[:500])
                conversations[i].append({"role": "user", "content": FEEDBACK_PROMPT.format(error=error[:2000])})
                still.append(i)
            pending = still
            if not pending:
                break
        for i in pending:
            outcome.setdefault(i, ("unverified" if parsed_once[i] else "unparseable", None))
        for i, doc in enumerate(docs):
            self.funnel_in(doc)
            status, payload = outcome[i]
            if status != "kept":
                self.funnel_exclude(doc, status, writer, rank)
                continue
            example, attempts, verdict = payload
            response = response_text(example, languages[i])
            doc.text = f"{example.instruction}\n\n{response}\n\n" + "\n".join(example.tests)
            doc.metadata = {
                "seed_id": seeds[i].get("seed_id", str(doc.id)),
                "language": languages[i],
                "messages": [
                    {"role": "user", "content": example.instruction},
                    {"role": "assistant", "content": response},
                ],
                "instruction": example.instruction,
                "solution": example.solution,
                "tests": example.tests,
                "test_setup": example.setup,
                "attempts": attempts,
                "self_corrected": attempts > 1,
                "tests_passed": f"{verdict.passed}/{verdict.total}",
            }
            self.funnel_keep(doc)
            yield doc


class CodeBlockSyntaxFilter(FunnelFilter):
    """Excludes examples whose response code blocks tree-sitter cannot parse (``syntax_error``); the parsing is
    ``datatrove_pipelines.syntax_check``'s."""

    def __init__(self, exclusion_writer: DiskWriter | None = None):
        from datatrove_pipelines.syntax_check import SyntaxCheckFilter

        super().__init__("syntax", exclusion_writer)
        self.checker = SyntaxCheckFilter()

    def check(self, doc: Document) -> str | None:
        from datatrove_pipelines.languages import language_spec
        from datatrove_pipelines.syntax_check import PARSES

        spec = language_spec(doc.metadata.get("language", "python"))  # the sandbox's "cpp" -> "C++"
        label = spec.name if spec else None
        checked = False
        for message in doc.metadata.get("messages", []):
            if message["role"] != "assistant":
                continue
            for block in _FENCE.findall(message["content"]):
                issue, _ = self.checker.find_issue(block, label)
                if issue is None:
                    break
                checked = True
                if issue not in PARSES:
                    return "syntax_error"
        if not checked:
            self.funnel_note("unchecked", doc)
        return None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_parsers"] = {}
        return state


@dataclass
class LengthConfig:
    min_response_chars: int = 10
    max_response_chars: int = 20000


class LengthFilter(FunnelFilter):
    """Responses shorter or longer than the bounds (``too_short`` / ``too_long``)."""

    def __init__(self, config: LengthConfig | None = None, exclusion_writer: DiskWriter | None = None):
        super().__init__("length", exclusion_writer)
        self.config = config or LengthConfig()

    def check(self, doc: Document) -> str | None:
        response = "".join(m["content"] for m in doc.metadata.get("messages", []) if m["role"] == "assistant")
        if len(response) < self.config.min_response_chars:
            return "too_short"
        if len(response) > self.config.max_response_chars:
            return "too_long"
        return None


# ---------------------------------------------------------------------------------------------------------------------
# DPO pairs


@dataclass
class PairsConfig:
    policy: GeneratorConfig
    k: int = 8  # completions per prompt (the paper samples hundreds)
    max_pairs_per_prompt: int = 2
    include_reference: bool = False  # the seed's reference solution joins the candidates (a policy that never passes)
    timeout_s: float = 10.0
    batch_size: int = 8
    sandbox_workers: int | None = None
    system_prompt: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def problem_prompt(seed: dict[str, Any]) -> str:
    """The user turn for a problem with tests: the task and one example test (as MBPP prompts do)."""
    example = seed.get("tests", [])[:1]
    shown = f"\nYour code should pass this test:\n{example[0]}" if example else ""
    return f"{seed['instruction']}{shown}"


class OnPolicyPairs(BatchedSandboxStep):
    """``k`` policy completions per problem, each judged against the problem's tests in the sandbox; chosen = a
    completion passing every test, rejected = one that does not. Reasons: ``no_passing``, ``no_failing``,
    ``no_tests``, ``generator_error``."""

    type = "⚖️ - PAIRS"

    def __init__(self, config: PairsConfig, exclusion_writer: DiskWriter | None = None):
        super().__init__("pairs", config, exclusion_writer)
        self._policy = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_policy"] = None
        return state

    def _batch(self, docs: list[Document], writer: DiskWriter | None, rank: int) -> Iterator[Document]:
        if self._policy is None:
            self._policy = build_generator(self.config.policy)
        seeds = [seed_record(doc) for doc in docs]
        usable = [i for i, s in enumerate(seeds) if s.get("tests")]
        prompts = {}
        for i in usable:
            messages = [{"role": "user", "content": problem_prompt(seeds[i])}]
            if self.config.system_prompt:
                messages.insert(0, {"role": "system", "content": self.config.system_prompt})
            prompts[i] = messages
        error = None
        try:
            samples = dict(
                zip(usable, self._policy.generate([prompts[i] for i in usable], n=self.config.k), strict=True)
            )
        except GenerationError as failure:
            samples, error = {}, str(failure)
        candidates: list[tuple[int, str]] = []
        for i in usable:
            for text in samples.get(i, []):
                candidates.append((i, text))
            if self.config.include_reference and seeds[i].get("reference"):
                candidates.append((i, f"```python\n{seeds[i]['reference']}\n```"))
        specs = [
            CodeTests(
                seeds[i].get("language", "python"),
                seeds[i]["tests"],
                seeds[i].get("test_setup", ""),
                timeout_s=self.config.timeout_s,
            )
            for i, _ in candidates
        ]
        languages = [seeds[i].get("language", "python") for i, _ in candidates]
        runs = score_tests(
            [extract_code_block(t, lang, last=True) for (_, t), lang in zip(candidates, languages, strict=True)],
            specs,
            workers=self.config.sandbox_workers,
        )
        judged: dict[int, tuple[list, list]] = {i: ([], []) for i in usable}
        for (i, text), run in zip(candidates, runs, strict=True):
            (judged[i][0] if run.all_passed else judged[i][1]).append((text, run))
        for i, doc in enumerate(docs):
            self.funnel_in(doc)
            if i not in prompts:
                self.funnel_exclude(doc, "no_tests", writer, rank)
                continue
            if error is not None:
                doc.metadata["generator_error"] = error[:300]
                self.funnel_exclude(doc, "generator_error", writer, rank)
                continue
            passing, failing = judged[i]
            doc.metadata["judged"] = {"passing": len(passing), "failing": len(failing)}
            if not passing or not failing:
                self.funnel_exclude(doc, "no_passing" if not passing else "no_failing", writer, rank)
                continue
            pairs = [
                {
                    "chosen": chosen,
                    "rejected": rejected,
                    "rejected_tests_passed": f"{run.passed}/{run.total}",
                    "rejected_reason": run.reason[:300],
                }
                for (chosen, _), (rejected, run) in zip(passing, failing, strict=False)
            ][: self.config.max_pairs_per_prompt]
            doc.text = prompts[i][-1]["content"]
            doc.metadata = {
                "seed_id": seeds[i].get("seed_id", str(doc.id)),
                "language": seeds[i].get("language", "python"),
                "prompt": prompts[i],
                "pairs": pairs,
                "tests": seeds[i]["tests"],
                "judged": doc.metadata["judged"],
            }
            self.funnel_keep(doc)
            yield doc

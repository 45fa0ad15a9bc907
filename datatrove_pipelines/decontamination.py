"""Word 10-gram decontamination against code benchmarks, reusable for any document stream (files, SFT, commits, web).

Normalization (the paper does not publish one; this is ours): lower-case the text, split it into tokens that are
maximal runs of Unicode word characters (``\\w+``: letters, digits, underscore); everything else (punctuation,
operators, whitespace) only separates tokens. A document is contaminated if any 10 consecutive tokens of it equal 10
consecutive tokens of a benchmark text. Token and n-gram hashes are 64-bit (xxhash, as in ``dedup.py``).

Benchmark n-grams that would fire on ordinary clean code are removed from the index, because they are boilerplate,
not the problem:

* n-grams that occur in more than ``max_problems_per_ngram`` problems of one benchmark (MultiPL-E's shared Java
  imports, the fixed ``def check(candidate)`` harness, MBPP's ``assert`` scaffolding);
* n-grams whose tokens are too generic: fewer than ``min_distinct_tokens`` distinct tokens, or fewer than
  ``min_ngram_chars`` characters in total (``if __name__ == "__main__"`` style idioms, runs of numbers);
* n-grams that occur in ``clean_reference`` texts (for the stdlib demo: none needed; see docs/code_files.md).

The index is built once per task (lazily, at the first document) and shared by all documents of the task; with
``cache_dir`` the first task saves it and the other tasks load it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

from datatrove_pipelines.common import FunnelFilter
from datatrove_pipelines.dedup import ngram_hashes, token_hashes

WORD_TOKEN = re.compile(r"\w+")
DEFAULT_BENCHMARKS = (
    "humaneval",
    "humaneval_plus",
    "mbpp",
    "mbpp_sanitized",
    "mbpp_plus",
    "cruxeval",
    "multipl_e_cpp",
    "multipl_e_java",
    "multipl_e_js",
    "multipl_e_ts",
    "multipl_e_go",
    "multipl_e_rs",
    "multipl_e_sh",
)


@dataclass
class DecontaminationConfig:
    """Which benchmarks, from where, and how n-grams are formed and pruned."""

    benchmarks: tuple[str, ...] = DEFAULT_BENCHMARKS
    benchmarks_dir: str | None = (
        None  # local copies (layout of eval/benchmarks.py); None: $SEED_CODER_BENCHMARKS_DIR or the Hub
    )
    n: int = 10
    parts: tuple[str, ...] = ("prompt", "canonical_solution", "test")  # Problem fields whose n-grams are indexed
    max_problems_per_ngram: int = 3  # more problems of one benchmark share it -> boilerplate, not indexed
    min_distinct_tokens: int = 4
    min_ngram_chars: int = 25

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be >= 1")
        unknown = set(self.parts) - {"prompt", "canonical_solution", "test"}
        if unknown:
            raise ValueError(f"unknown benchmark parts {sorted(unknown)}; use prompt, canonical_solution, test")


def normalize_tokens(text: str) -> list[str]:
    """The decontamination tokens of ``text``: lower-cased ``\\w+`` runs."""
    return WORD_TOKEN.findall(text.lower())


def text_ngram_hashes(text: str, n: int) -> np.ndarray:
    """Hashes of all word n-grams of ``text`` (normalized); empty if it has fewer than ``n`` tokens."""
    hashes = token_hashes(text.lower())
    if len(hashes) < n:
        return np.zeros(0, dtype=np.uint64)
    return ngram_hashes(hashes, n)


@dataclass
class NGramMatch:
    benchmark: str
    task_id: str
    ngram: str


class BenchmarkNGramIndex:
    """A sorted array of benchmark n-gram hashes, with the problem each came from (for the exclusion reason)."""

    def __init__(self, hashes: np.ndarray, sources: list[tuple[str, str]], n: int):
        self.hashes = hashes  # sorted, unique
        self.sources = sources  # sources[i] = (benchmark, task_id) of hashes[i]
        self.n = n

    def __len__(self) -> int:
        return len(self.hashes)

    @classmethod
    def from_texts(
        cls,
        problems: Iterable[tuple[str, str, list[str]]],
        config: DecontaminationConfig,
        clean_reference: Iterable[str] = (),
    ) -> BenchmarkNGramIndex:
        """Build from (benchmark, task_id, texts) triples, pruning the boilerplate n-grams described above."""
        problems_of: dict[int, set[tuple[str, str]]] = defaultdict(set)
        for benchmark, task_id, texts in problems:
            for text in texts:
                tokens = normalize_tokens(text)
                hashes = text_ngram_hashes(text, config.n)
                for position, value in enumerate(hashes.tolist()):
                    window = tokens[position : position + config.n]
                    if len(set(window)) < config.min_distinct_tokens or sum(map(len, window)) < config.min_ngram_chars:
                        continue
                    problems_of[value].add((benchmark, task_id))
        banned = {int(h) for text in clean_reference for h in text_ngram_hashes(text, config.n).tolist()}
        kept: dict[int, tuple[str, str]] = {}
        for value, owners in problems_of.items():
            per_benchmark: dict[str, int] = defaultdict(int)
            for benchmark, _ in owners:
                per_benchmark[benchmark] += 1
            if max(per_benchmark.values()) > config.max_problems_per_ngram or value in banned:
                continue
            kept[value] = min(owners)
        ordered = sorted(kept)
        return cls(np.array(ordered, dtype=np.uint64), [kept[h] for h in ordered], config.n)

    @classmethod
    def from_benchmarks(cls, config: DecontaminationConfig) -> BenchmarkNGramIndex:
        from eval.benchmarks import load_benchmarks

        try:
            loaded = load_benchmarks(config.benchmarks, data_dir=config.benchmarks_dir, skip_missing=True)
        except Exception as error:
            if config.benchmarks_dir or os.environ.get("SEED_CODER_BENCHMARKS_DIR"):
                raise
            raise RuntimeError(
                "could not load the decontamination benchmarks from the Hub; pass a local copy with "
                "--benchmarks DIR (or $SEED_CODER_BENCHMARKS_DIR), or disable the step with --no-decontamination"
            ) from error
        if not loaded:
            raise FileNotFoundError(f"none of the benchmarks {config.benchmarks} found in {config.benchmarks_dir}")
        triples = (
            (name, problem.task_id, [getattr(problem, part) for part in config.parts if getattr(problem, part)])
            for name, problems in loaded.items()
            for problem in problems
        )
        return cls.from_texts(triples, config)

    @classmethod
    def cached(cls, config: DecontaminationConfig, cache_dir: str) -> BenchmarkNGramIndex:
        """Load the index built for ``config`` from ``cache_dir``, building and saving it the first time."""
        key = hashlib.sha256(repr(dataclasses.asdict(config)).encode()).hexdigest()[:16]
        path = os.path.join(cache_dir, f"decontamination-index-{key}.pkl")
        if os.path.exists(path):
            with open(path, "rb") as handle:
                return pickle.load(handle)
        index = cls.from_benchmarks(config)
        os.makedirs(cache_dir, exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            pickle.dump(index, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)  # atomic: concurrent tasks never read a partial file
        return index

    def first_match(self, text: str) -> NGramMatch | None:
        """The first benchmark n-gram found in ``text``, or None."""
        if len(self.hashes) == 0:
            return None
        hashes = text_ngram_hashes(text, self.n)
        if len(hashes) == 0:
            return None
        positions = np.searchsorted(self.hashes, hashes)
        positions[positions == len(self.hashes)] = 0
        hits = np.nonzero(self.hashes[positions] == hashes)[0]
        if len(hits) == 0:
            return None
        first = int(hits[0])
        benchmark, task_id = self.sources[int(positions[first])]
        tokens = normalize_tokens(text)
        return NGramMatch(benchmark, task_id, " ".join(tokens[first : first + self.n]))


class DecontaminationFilter(FunnelFilter):
    """Excludes documents sharing a word n-gram with a benchmark; reason ``benchmark:<name>``.

    The matched problem and n-gram are kept in ``metadata.contamination`` of the excluded document.
    """

    def __init__(
        self,
        config: DecontaminationConfig | None = None,
        exclusion_writer: DiskWriter | None = None,
        index: BenchmarkNGramIndex | None = None,
        step_name: str = "decontamination",
        cache_dir: str | None = None,
    ):
        super().__init__(step_name, exclusion_writer)
        self.config = config or DecontaminationConfig()
        self._index = index
        self.cache_dir = cache_dir  # where the first task stores the built index for the other tasks

    @property
    def index(self) -> BenchmarkNGramIndex:
        if self._index is None:
            self._index = (
                BenchmarkNGramIndex.cached(self.config, self.cache_dir)
                if self.cache_dir
                else BenchmarkNGramIndex.from_benchmarks(self.config)
            )
        return self._index

    def check(self, doc: Document) -> str | None:
        match = self.index.first_match(doc.text)
        if match is None:
            return None
        doc.metadata["contamination"] = {"benchmark": match.benchmark, "task_id": match.task_id, "ngram": match.ngram}
        return f"benchmark:{match.benchmark}"

    def _safe_check(self, doc: Document) -> str | None:
        self.index  # noqa: B018 - a benchmark that cannot be loaded is a usage error: raise, do not exclude everything
        return super()._safe_check(doc)

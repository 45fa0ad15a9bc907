"""Word 10-gram decontamination against code benchmarks, reusable for any document stream (files, SFT, commits, web).

Normalization (the paper does not publish one; this is ours): lower-case the text, split it into tokens that are
maximal runs of Unicode word characters (``\\w+``: letters, digits, underscore); everything else (punctuation,
operators, whitespace) only separates tokens. A document is contaminated if any 10 consecutive tokens of it equal 10
consecutive tokens of a benchmark text. Token and n-gram hashes are 64-bit (``dedup.normalized_token_hashes``: the same tokens and hashes as
the near-dedup shingles, computed once per document for both).

Benchmark n-grams that would fire on ordinary clean code are removed from the index, because they are boilerplate,
not the problem:

* n-grams that occur in more than ``max_problems_per_ngram`` problems of one benchmark (MultiPL-E's shared Java
  imports, the fixed ``def check(candidate)`` harness, MBPP's ``assert`` scaffolding);
* n-grams whose tokens are too generic: fewer than ``min_distinct_tokens`` distinct tokens, or fewer than
  ``min_ngram_chars`` characters in total (``if __name__ == "__main__"`` style idioms, runs of numbers);
* n-grams that occur in ``clean_reference`` texts (for the stdlib demo: none needed; see docs/code_files.md).

The index is vectorised (one tokenisation of all benchmark texts, numpy grouping) and cached: in memory for the
process and on disk (``$XDG_CACHE_HOME/seed-coder/decontamination`` by default), keyed by the settings, the hashing
version and the content of the benchmark files, so a run, and every task of it, loads it instead of building it.
Lookups test a 4 MiB table of the indexed hashes' top bits first and binary-search only the n-grams that hit it.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.batching import batched

from datatrove_pipelines.funnel import FunnelFilter
from datatrove_pipelines.hashing import (
    document_ngram_hashes,
    hash_normalized_batch,
    ngram_hashes,
    normalized_token_hashes,
    word_tokens,
)

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
    # where built indexes are kept (None: $SEED_CODER_CACHE_DIR or $XDG_CACHE_HOME/seed-coder, under decontamination/);
    # cache_index=False builds the index in every process
    cache_dir: str | None = None
    cache_index: bool = True

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
    hashes = normalized_token_hashes(text)
    if len(hashes) < n:
        return np.zeros(0, dtype=np.uint64)
    return ngram_hashes(hashes, n)


@dataclass
class NGramMatch:
    benchmark: str
    task_id: str
    ngram: str


# Bumped whenever tokenisation, hashing or pruning changes, so cached indexes built by older code are not reused.
INDEX_FORMAT_VERSION = 4
_PREFILTER_BITS = 22  # 4 MiB table: a few percent of a document's n-grams get past it to the binary search
_MEMORY_CACHE: dict[str, BenchmarkNGramIndex] = {}
_HUB_PROBLEMS: dict[str, list] = {}


def default_cache_dir() -> str:
    root = os.environ.get("SEED_CODER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "seed-coder"
    )
    return os.path.join(root, "decontamination")


class BenchmarkNGramIndex:
    """Sorted, unique benchmark n-gram hashes, with the problem each came from (for the exclusion reason)."""

    def __init__(self, hashes: np.ndarray, owners: np.ndarray, problems: list[tuple[str, str]], n: int):
        self.hashes = hashes  # uint64, sorted, unique
        self.owners = owners  # owners[i]: index into problems of the problem hashes[i] came from
        self.problems = problems  # (benchmark, task_id)
        self.n = n
        self.key: str | None = None  # the cache key, when loaded or built through ``cached``
        self.prefilter = np.zeros(2**_PREFILTER_BITS, dtype=bool)  # by the top bits of the hash
        self.prefilter[hashes >> np.uint64(64 - _PREFILTER_BITS)] = True

    def __len__(self) -> int:
        return len(self.hashes)

    def source(self, position: int) -> tuple[str, str]:
        """(benchmark, task_id) of ``hashes[position]``."""
        return self.problems[int(self.owners[position])]

    @classmethod
    def from_texts(
        cls,
        problems: Iterable[tuple[str, str, list[str]]],
        config: DecontaminationConfig,
        clean_reference: Iterable[str] = (),
    ) -> BenchmarkNGramIndex:
        """Build from (benchmark, task_id, texts) triples, pruning the boilerplate n-grams described above.

        All texts are tokenised in one call (joined by newlines, which no token crosses); windows that cross a text
        boundary or are too generic are dropped, then (hash, problem) pairs are grouped with one sort.
        """
        problems = list(problems)
        keys = sorted({(benchmark, task_id) for benchmark, task_id, _ in problems})
        problem_id = {key: i for i, key in enumerate(keys)}  # ids in (benchmark, task_id) order: min id = min key
        benchmark_of = np.unique([benchmark for benchmark, _ in keys], return_inverse=True)[1] if keys else None
        texts, owner_of_text = [], []
        for benchmark, task_id, problem_texts in problems:
            for text in problem_texts:
                texts.append(text.lower())
                owner_of_text.append(problem_id[(benchmark, task_id)])
        n = config.n
        empty = cls(np.zeros(0, np.uint64), np.zeros(0, np.int32), keys, n)
        if not texts:
            return empty
        tokens = word_tokens("\n".join(texts))
        text_starts = np.cumsum([0] + [len(text.encode("utf-8", errors="surrogatepass")) + 1 for text in texts[:-1]])
        text_of = np.searchsorted(text_starts, tokens.starts, side="right") - 1
        count = len(tokens.hashes) - n + 1
        if count <= 0:
            return empty
        window = np.arange(count)
        char_offsets = np.zeros(len(tokens.hashes) + 1, dtype=np.int64)
        np.cumsum(tokens.char_lengths(), out=char_offsets[1:])
        # distinct tokens per window: a token counts if its previous occurrence lies before the window start
        order = np.argsort(tokens.hashes, kind="stable")
        repeated = np.flatnonzero(tokens.hashes[order[1:]] == tokens.hashes[order[:-1]])
        previous = np.full(len(tokens.hashes), -1, dtype=np.int64)
        previous[order[repeated + 1]] = order[repeated]
        distinct = np.zeros(count, dtype=np.int64)
        for offset in range(n):
            distinct += previous[offset : offset + count] < window
        keep = (
            (text_of[:count] == text_of[n - 1 :])
            & (distinct >= config.min_distinct_tokens)
            & (char_offsets[n:] - char_offsets[:count] >= config.min_ngram_chars)
        )
        hashes = ngram_hashes(tokens.hashes, n)[keep]
        owners = np.asarray(owner_of_text, dtype=np.int64)[text_of[:count][keep]]
        # unique (hash, problem) pairs, sorted by hash then problem
        order = np.lexsort((owners, hashes))
        hashes, owners = hashes[order], owners[order]
        new_pair = np.ones(len(hashes), dtype=bool)
        new_pair[1:] = (hashes[1:] != hashes[:-1]) | (owners[1:] != owners[:-1])
        hashes, owners = hashes[new_pair], owners[new_pair]
        # problems per (hash, benchmark): too many -> boilerplate, the hash is not indexed
        benchmarks = benchmark_of[owners]
        new_group = np.ones(len(hashes), dtype=bool)
        new_group[1:] = (hashes[1:] != hashes[:-1]) | (benchmarks[1:] != benchmarks[:-1])
        group_sizes = np.diff(np.append(np.flatnonzero(new_group), len(hashes)))
        banned = hashes[new_group][group_sizes > config.max_problems_per_ngram]
        reference = [text_ngram_hashes(text, n) for text in clean_reference]
        if reference:
            banned = np.concatenate([banned, *reference])
        first_of_hash = np.ones(len(hashes), dtype=bool)
        first_of_hash[1:] = hashes[1:] != hashes[:-1]
        unique_hashes, first_owner = hashes[first_of_hash], owners[first_of_hash]
        indexed = ~np.isin(unique_hashes, banned)
        return cls(unique_hashes[indexed], first_owner[indexed].astype(np.int32), keys, n)

    @classmethod
    def from_benchmarks(cls, config: DecontaminationConfig) -> BenchmarkNGramIndex:
        """Build from the benchmarks of ``config`` (no cache)."""
        return cls.from_texts(_benchmark_texts(config), config)

    @classmethod
    def cached(cls, config: DecontaminationConfig, cache_dir: str | None = None) -> BenchmarkNGramIndex:
        """The index for ``config``: from this process's memory, else from the disk cache, else built (and saved).

        The key covers the settings, ``INDEX_FORMAT_VERSION`` and the content of the local benchmark files (for Hub
        benchmarks, of their loaded texts), so a changed benchmark file or hashing change never reuses a stale index.
        """
        key, problems = _cache_key(config)
        if key in _MEMORY_CACHE:
            return _MEMORY_CACHE[key]
        folder = cache_dir or config.cache_dir or default_cache_dir()
        path = os.path.join(folder, f"index-{key}.npz")
        index = _load_index(path, config.n) if config.cache_index else None
        if index is None:
            index = cls.from_texts(problems if problems is not None else _benchmark_texts(config), config)
            if config.cache_index:
                _save_index(index, path)
        index.key = key
        _MEMORY_CACHE[key] = index
        return index

    @staticmethod
    def clear_memory_cache() -> None:
        """Forget the indexes this process loaded (the disk cache stays): the next ``cached`` call loads again."""
        _MEMORY_CACHE.clear()

    def first_match(self, text: str) -> NGramMatch | None:
        """The first benchmark n-gram found in ``text``, or None."""
        return self.first_matches([text])[0]

    def first_matches(self, texts: list[str]) -> list[NGramMatch | None]:
        """``first_match`` of many texts with one lookup: their n-grams are hashed in one array (windows that cross
        from one text into the next are dropped), the prefilter and the binary search run once."""
        matches: list[NGramMatch | None] = [None] * len(texts)
        if len(self.hashes) == 0 or not texts:
            return matches
        windows, owner, offset = document_ngram_hashes([normalized_token_hashes(text) for text in texts], self.n)
        maybe = np.flatnonzero(self.prefilter[windows >> np.uint64(64 - _PREFILTER_BITS)])
        positions = np.searchsorted(self.hashes, windows[maybe])
        positions[positions == len(self.hashes)] = 0
        hits = np.flatnonzero(self.hashes[positions] == windows[maybe])
        for hit in hits.tolist():  # in window order: the first hit of a text is its first match
            text_index = int(owner[maybe[hit]])
            if matches[text_index] is None:
                first = int(offset[maybe[hit]])
                benchmark, task_id = self.source(int(positions[hit]))
                tokens = normalize_tokens(texts[text_index])
                matches[text_index] = NGramMatch(benchmark, task_id, " ".join(tokens[first : first + self.n]))
        return matches


def _benchmark_texts(config: DecontaminationConfig) -> list[tuple[str, str, list[str]]]:
    """(benchmark, task_id, texts) of every problem of the configured benchmarks."""
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
    return [
        (name, problem.task_id, [getattr(problem, part) for part in config.parts if getattr(problem, part)])
        for name, problems in loaded.items()
        for problem in problems
    ]


def _cache_key(config: DecontaminationConfig) -> tuple[str, list | None]:
    """(key, loaded problems or None): local benchmark files are fingerprinted by content without parsing them."""
    from eval.benchmarks import BENCHMARK_SOURCES, resolve_data_dir

    settings = {
        name: value
        for name, value in dataclasses.asdict(config).items()
        if name not in ("benchmarks_dir", "cache_dir", "cache_index")
    }
    digest = hashlib.sha256(repr((INDEX_FORMAT_VERSION, sorted(settings.items()))).encode())
    local_dir = resolve_data_dir(config.benchmarks_dir)
    problems = None
    if local_dir is not None:
        for name in config.benchmarks:
            path = Path(local_dir) / BENCHMARK_SOURCES[name].local_path if name in BENCHMARK_SOURCES else None
            digest.update(name.encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest() if path and path.is_file() else b"missing")
    else:  # Hub: fingerprint what was loaded (the datasets library caches the download), once per process
        memo_key = repr(sorted(settings.items()))
        if memo_key not in _HUB_PROBLEMS:
            _HUB_PROBLEMS[memo_key] = _benchmark_texts(config)
        problems = _HUB_PROBLEMS[memo_key]
        for benchmark, task_id, texts in problems:
            digest.update(repr((benchmark, task_id, texts)).encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()[:24], problems


def _load_index(path: str, n: int) -> BenchmarkNGramIndex | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            problems = list(zip(data["benchmarks"].tolist(), data["task_ids"].tolist(), strict=True))
            return BenchmarkNGramIndex(data["hashes"], data["owners"], problems, n)
    except (OSError, KeyError, ValueError):  # absent, partial or from an incompatible writer: rebuild
        return None


def _save_index(index: BenchmarkNGramIndex, path: str) -> None:
    """Atomic write (concurrent tasks never read a partial file); a read-only cache only costs a rebuild."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        hashes=index.hashes,
        owners=index.owners,
        benchmarks=np.array([benchmark for benchmark, _ in index.problems], dtype=str),
        task_ids=np.array([task_id for _, task_id in index.problems], dtype=str),
    )
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(buffer.getvalue())
        os.replace(temporary, path)
    except OSError:
        pass


PRECHECK_KEY = "decontamination_precheck"


def _match_dict(match: NGramMatch | None) -> dict | None:
    return None if match is None else {"benchmark": match.benchmark, "task_id": match.task_id, "ngram": match.ngram}


class DecontaminationPrecheck(PipelineStep):
    """Looks documents up early, right after the dedup signatures tokenised them (the lookup reuses that
    tokenisation), and leaves the result in ``metadata.decontamination_precheck`` for DecontaminationFilter, which
    applies it at its own place in the funnel. Documents are never dropped here."""

    type = "🧪 - DECONTAMINATION"
    name = "🔎 precheck"

    def __init__(
        self, config: DecontaminationConfig | None = None, cache_dir: str | None = None, batch_size: int = 64
    ):
        super().__init__()
        self.config = config or DecontaminationConfig()
        self.cache_dir = cache_dir
        self.batch_size = batch_size  # as DedupSignatures': its token hashes of the batch are reused

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        index = None
        for batch in batched(data or (), self.batch_size):
            with self.track_time("batch"):
                index = index or BenchmarkNGramIndex.cached(self.config, self.cache_dir)
                try:
                    for doc, match in zip(batch, index.first_matches([doc.text for doc in batch]), strict=True):
                        doc.metadata[PRECHECK_KEY] = {"index": index.key, "match": _match_dict(match)}
                except Exception:  # the filter looks again and excludes the document with the error as reason
                    pass
            yield from batch


class DecontaminationFilter(FunnelFilter):
    """Excludes documents sharing a word n-gram with a benchmark; reason ``benchmark:<name>``.

    The matched problem and n-gram are kept in ``metadata.contamination`` of the excluded document. A result left
    by DecontaminationPrecheck for the same index is used instead of looking the document up again.
    """

    def __init__(
        self,
        config: DecontaminationConfig | None = None,
        exclusion_writer: DiskWriter | None = None,
        index: BenchmarkNGramIndex | None = None,
        step_name: str = "decontamination",
        cache_dir: str | None = None,
        batch_size: int = 64,
    ):
        super().__init__(step_name, exclusion_writer, batch_size=batch_size)
        self.config = config or DecontaminationConfig()
        self._index = index
        self.cache_dir = cache_dir  # overrides config.cache_dir

    @property
    def index(self) -> BenchmarkNGramIndex:
        if self._index is None:
            self._index = BenchmarkNGramIndex.cached(self.config, self.cache_dir)
        return self._index

    def check(self, doc: Document) -> str | None:
        precheck = doc.metadata.pop(PRECHECK_KEY, None)
        if isinstance(precheck, dict) and precheck.get("index") is not None and precheck["index"] == self.index.key:
            match = precheck["match"]
        else:
            match = _match_dict(self.index.first_match(doc.text))
        if match is None:
            return None
        doc.metadata["contamination"] = match
        return f"benchmark:{match['benchmark']}"

    def check_batch(self, batch: list[Document]) -> list[str | None]:
        """Decisions for a batch: the documents' tokens are hashed together (and remembered, so the dedup
        signatures after this step reuse them) and looked up in one pass; a precheck result is used when present."""
        self.index  # noqa: B018 - a benchmark that cannot be loaded is a usage error: raise, do not exclude everything
        pending = [doc for doc in batch if not self._has_precheck(doc)]
        try:
            texts = [doc.text for doc in pending]
            hash_normalized_batch(texts)
            found = dict(zip(map(id, pending), self.index.first_matches(texts), strict=True))
        except Exception:  # one document at a time, each failure its own error:<type> exclusion
            return [self._safe_check(doc) for doc in batch]
        reasons = []
        for doc in batch:
            if id(doc) in found:
                doc.metadata.pop(PRECHECK_KEY, None)  # one for another index, if any
                match = _match_dict(found[id(doc)])
                if match is None:
                    reasons.append(None)
                    continue
                doc.metadata["contamination"] = match
                reasons.append(f"benchmark:{match['benchmark']}")
            else:
                reasons.append(self._safe_check(doc))
        return reasons

    def _has_precheck(self, doc: Document) -> bool:
        precheck = doc.metadata.get(PRECHECK_KEY)
        return isinstance(precheck, dict) and precheck.get("index") is not None and precheck["index"] == self.index.key

    def _safe_check(self, doc: Document) -> str | None:
        self.index  # noqa: B018 - a benchmark that cannot be loaded is a usage error: raise, do not exclude everything
        return super()._safe_check(doc)


def add_decontamination_arguments(
    parser: argparse.ArgumentParser, benchmarks_help: str = "local benchmark directory (default: Hub)"
) -> None:
    """``--benchmarks DIR`` (where the benchmarks the 10-gram index is built from lie) and ``--no-decontamination``,
    the flags of every stage that decontaminates."""
    parser.add_argument("--benchmarks", default=None, help=benchmarks_help)
    parser.add_argument("--no-decontamination", action="store_true")

"""The files related to a change: BM25 (``bm25s``) over the parent snapshot, queried with the message and the paths.

Tokens are code-aware: identifiers are kept whole (lower-cased) and also split at ``_`` and camelCase boundaries, so
``parse_header``, ``parseHeader`` and the message words "parse header" meet; a file's path contributes its tokens
too (``src/http/parser.py`` -> src, http, parser, py). A file's tokens are computed once per blob id and reused by
every snapshot that holds it.

Indexes are built once per snapshot and reused for later snapshots while they stay close (``SnapshotIndex``): files
that changed since the index was built are masked in the bm25s scores and scored with the same BM25 formula (lucene
variant, the index's document frequencies and average length) from their own tokens, so the ranking is the index's
one plus the few fresh files; when too many files changed the index is rebuilt. ``reference_bm25_scores`` is the
plain formula over a whole snapshot that the tests compare the fast path with.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache

import numpy as np

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]+")
SUBWORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
STOPWORDS = frozenset(
    "a an and are as at be but by for from has have if in into is it its of on or so that the their then there "
    "these this to was were will with".split()
)


@lru_cache(maxsize=1 << 18)
def expand_word(word: str) -> tuple[str, ...]:
    """``parseHeader`` -> (parseheader, parse, header); stop words and one-letter parts dropped."""
    whole = word.lower().strip("_")
    parts = [part.lower() for part in SUBWORD.findall(word)]
    tokens = [whole] if whole and whole not in STOPWORDS else []
    if len(parts) > 1:
        tokens.extend(part for part in parts if len(part) > 1 and part != whole and part not in STOPWORDS)
    return tuple(tokens)


def token_counts(text: str) -> Counter:
    """Bag of code-aware tokens of ``text`` (word counts first, then one expansion per distinct word)."""
    counts: Counter = Counter()
    for word, count in Counter(IDENTIFIER.findall(text)).items():
        for token in expand_word(word):
            counts[token] += count
    return counts


def path_tokens(path: str) -> list[str]:
    return [token for word in IDENTIFIER.findall(path) for token in expand_word(word)]


def query_tokens(message: str, changed_paths: Iterable[str]) -> list[str]:
    """The query of a commit: its message's tokens and its changed paths' tokens, each once."""
    tokens = list(token_counts(message))
    for path in changed_paths:
        tokens.extend(path_tokens(path))
    return list(dict.fromkeys(tokens))


def lucene_idf(df: int, n_docs: int) -> float:
    return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))


def bm25_term(tf: float, idf: float, doc_len: float, avg_len: float, k1: float, b: float) -> float:
    return idf * tf / (tf + k1 * (1 - b + b * doc_len / avg_len))


def reference_bm25_scores(query: list[str], docs: list[Counter], k1: float = 1.5, b: float = 0.75) -> list[float]:
    """Plain BM25 (lucene variant, as bm25s computes it) of every document of a corpus, for the tests."""
    n_docs = len(docs)
    lengths = [sum(doc.values()) for doc in docs]
    avg_len = sum(lengths) / n_docs if n_docs else 1.0
    df = Counter(token for doc in docs for token in doc)
    scores = []
    for doc, length in zip(docs, lengths, strict=True):
        scores.append(
            sum(
                bm25_term(doc[token], lucene_idf(df[token], n_docs), length, avg_len, k1, b)
                for token in query
                if doc[token]
            )
        )
    return scores


class SnapshotIndex:
    """A bm25s index of one snapshot's files (``path -> blob``), with what is needed to score other files alike."""

    def __init__(self, files: dict[str, str], counts: dict[str, Counter], k1: float = 1.5, b: float = 0.75):
        import bm25s

        self.files = dict(files)  # path -> blob id of the indexed snapshot (indexable files only)
        self.paths = [path for path in self.files if counts.get(path)]
        self.position = {path: index for index, path in enumerate(self.paths)}
        self.k1, self.b = k1, b
        corpus = [list(counts[path].elements()) for path in self.paths]
        self.n_docs = len(corpus)
        self.avg_len = (sum(len(doc) for doc in corpus) / self.n_docs) if self.n_docs else 1.0
        self.df: Counter = Counter()
        for path in self.paths:
            self.df.update(counts[path].keys())
        self.retriever = None
        if self.n_docs:
            self.retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
            self.retriever.index(corpus, show_progress=False)

    def scores(self, query: list[str]) -> np.ndarray:
        """bm25s scores of the indexed files for ``query`` (tokens unknown to the index ignored)."""
        if self.retriever is None:
            return np.zeros(0, dtype=np.float32)
        ids = self.retriever.get_tokens_ids(query)
        if not ids:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self.retriever.get_scores_from_ids(ids), dtype=np.float64)

    def score_outside(self, query: list[str], counts: Counter) -> float:
        """The BM25 score a file that is not in the index gets, with the index's statistics."""
        length = sum(counts.values())
        score = 0.0
        for token in query:
            tf = counts.get(token)
            if tf:
                idf = lucene_idf(self.df.get(token, 0), max(self.n_docs, 1))
                score += bm25_term(tf, idf, length, self.avg_len, self.k1, self.b)
        return score

    def top(
        self,
        query: list[str],
        snapshot: dict[str, str],
        counts_for: Callable[[str, str], Counter | None],
        excluded: set[str],
        k: int,
    ) -> list[tuple[str, float]]:
        """The ``k`` best files of ``snapshot`` (positive scores only; ties by path), ``excluded`` left out. Files whose
        blob differs from the indexed one (``counts_for(path, blob)`` gives their tokens) are scored by ``score_outside``."""
        stale = self.files.items() - snapshot.items()  # indexed, but changed or gone since
        fresh = snapshot.items() - self.files.items()  # changed or new since the index was built
        results: list[tuple[str, float]] = []
        scores = self.scores(query)
        if len(scores) and scores.any():
            masked = [self.position[path] for path in excluded if path in self.position]
            masked += [self.position[path] for path, _ in stale if path in self.position]
            if masked:
                scores[masked] = 0.0
            candidates = np.flatnonzero(scores > 0)
            if len(candidates) > 4 * k:
                candidates = candidates[np.argpartition(-scores[candidates], 4 * k - 1)[: 4 * k]]
            results = [(self.paths[i], float(scores[i])) for i in candidates.tolist()]
        for path, blob in fresh:
            if path not in excluded:
                counts = counts_for(path, blob)
                if counts:
                    score = self.score_outside(query, counts)
                    if score > 0:
                        results.append((path, score))
        results.sort(key=lambda item: (-round(item[1], 5), item[0]))
        return results[:k]

    def drift(self, snapshot: dict[str, str]) -> int:
        """How many files differ between the indexed snapshot and ``snapshot``."""
        return len(snapshot.items() ^ self.files.items())

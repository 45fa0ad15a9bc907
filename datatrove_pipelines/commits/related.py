"""The files related to a change: BM25 with ``bm25s`` over the parent snapshot, queried with the message and paths.

Tokens are code-aware sub-words: runs of ASCII letters and digits, split at camelCase boundaries (``parseHeader``,
``HTTPServer`` -> parse header, http server) and at underscores and punctuation, lower-cased, stop words and one-letter
tokens dropped (``code_tokens`` is the plain-Python specification, ``code_token_hashes`` the numpy one: the same
tokens, as the 64-bit hashes of ``datatrove_pipelines.dedup``). A file's path adds its own tokens. Tokens of a file
are computed once per (path, blob id) and reused by every snapshot that holds it.

``CountsBM25`` is a ``bm25s.BM25`` whose index is built from per-file token counts with a few numpy calls (bm25s
builds its lucene matrix from token lists with Python loops, ~0.5 s for a few hundred files here; the postings are
ordered by ``postings_order``, one SIMD sort tested against a stable argsort); retrieval is bm25s's own. The tests
compare its scores with ``bm25s.BM25.index`` on the same corpus and with the plain formula
(``reference_bm25_scores``).

``SnapshotIndex`` is built once per snapshot and reused for the next snapshots while they stay close: files changed
since it was built are masked out of the bm25s scores and scored with the same formula and statistics from their own
tokens; when too many changed, the index is rebuilt. ``SnapshotIndex.top`` is the plain one-commit path;
``SnapshotIndex.top_many`` scores the commits of a batch that share the index together, with the same numbers (tested):
the indexed files through one sparse product of the queries' token indicators with the index matrix (float32, summed
token by token in id order like bm25s), the fresh files through one product of the terms of their tokens that some
query holds with the queries' indicators (float64, summed in hash order like ``score_many_outside``); each commit's
candidates are cut to those that can reach its top k (``near_top``, tested against ``near_top_plain``) before the
Python sort.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import bm25s
import numpy as np
import scipy.sparse

# The token hash (shared with dedup) is imported here only: the rest of the commits package and its tests use it from
# this module, so moving it to another module is a one-line change.
from datatrove_pipelines.hashing import hash_token_spans, reference_token_hash

STOPWORDS = (
    "a an and are as at be but by for from has have if in into is it its of on or so that the their then there "
    "these this to was were will with"
).split()


_LOWER_LETTERS, _UPPER_LETTERS, _DIGITS = b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"0123456789"
# one ``bytes.translate`` gives each byte's class: 0 not part of a word, 1 lower-case letter, 2 upper-case, 3 digit
_BYTE_CLASS = bytes(
    1 if byte in _LOWER_LETTERS else 2 if byte in _UPPER_LETTERS else 3 if byte in _DIGITS else 0
    for byte in range(256)
)
_STOP_HASHES = np.sort(np.array([reference_token_hash(word) for word in STOPWORDS], dtype=np.uint64))
_STOP_MAX_BYTES = max(len(word) for word in STOPWORDS)


def _stop_table(hashes: np.ndarray) -> tuple[np.ndarray, np.uint64]:
    """A table indexed by a hash's low bits holding the one stop-word hash with those bits (the fewest bits that
    keep them apart); a slot without one holds a value whose low bits are not its index, which no hash that lands
    there can equal."""
    bits = 6
    while len(np.unique(hashes & np.uint64((1 << bits) - 1))) < len(hashes):
        bits += 1
    mask = np.uint64((1 << bits) - 1)
    table = np.arange(1 << bits, dtype=np.uint64) ^ np.uint64(1)
    table[hashes & mask] = hashes
    return table, mask


_STOP_TABLE, _STOP_MASK = _stop_table(_STOP_HASHES)


def code_tokens(text: str) -> list[str]:
    """The specification, one character at a time: the lower-cased sub-words of ``text`` (stop words and one-letter
    tokens left out)."""
    tokens, current = [], ""
    for position, char in enumerate(text):
        is_word = char.isascii() and char.isalnum()
        if not is_word:
            tokens.append(current)
            current = ""
            continue
        previous = text[position - 1] if position else ""
        following = text[position + 1] if position + 1 < len(text) else ""
        if (
            current
            and char.isupper()
            and (
                previous.islower()
                or previous.isdigit()
                or (previous.isupper() and following.isascii() and following.islower())
            )
        ):
            tokens.append(current)
            current = ""
        current += char
    tokens.append(current)
    return [token.lower() for token in tokens if len(token) > 1 and token.lower() not in STOPWORDS]


def code_token_hashes(text: str) -> np.ndarray:
    """``reference_token_hash`` of each of ``code_tokens(text)``, in order, computed with numpy."""
    return _token_hashes_and_starts(text.encode("utf-8", "surrogatepass"))[0]


def _token_hashes_and_starts(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of ``code_tokens`` of ``raw`` and their byte offsets. Byte classes come from one
    ``bytes.translate`` (a fraction of a numpy table lookup's cost); a token ends at the next boundary, a token start
    or the end of a run of word bytes, both found by one ``flatnonzero``; only tokens as short as a stop word are
    looked up, in a table indexed by their hash's low bits."""
    size = len(raw)
    if not size:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    classes = np.frombuffer(raw.translate(_BYTE_CLASS), dtype=np.uint8)
    word, upper, lower = classes != 0, classes == 2, classes == 1
    lower_or_digit = word & ~upper
    start = np.zeros(size + 1, dtype=bool)  # one past the end: the boundary of a run that ends the text
    start[:size] = word
    start[1:size] &= ~word[:-1] | (upper[1:] & lower_or_digit[:-1])
    start[1 : size - 1] |= upper[1:-1] & upper[:-2] & lower[2:]  # HTTPServer: a new word at the S
    boundary = start.copy()
    boundary[1:size] |= word[:-1] & ~word[1:]  # the byte after a run of word bytes
    boundary[size] = word[-1]
    positions = np.flatnonzero(boundary)
    is_start = start[positions[:-1]]
    starts, ends = positions[:-1][is_start], positions[1:][is_start]
    keep = ends - starts > 1
    starts, ends = starts[keep], ends[keep]
    hashes = hash_token_spans(raw.lower(), starts, ends)
    short = np.flatnonzero(ends - starts <= _STOP_MAX_BYTES)
    candidates = hashes[short]
    stop = short[_STOP_TABLE[candidates & _STOP_MASK] == candidates]
    if not len(stop):
        return hashes, starts
    content = np.ones(len(hashes), dtype=bool)
    content[stop] = False
    return hashes[content], starts[content]


def split_token_hashes(first: str, second: str) -> tuple[np.ndarray, np.ndarray]:
    """``code_token_hashes`` of two texts with one tokenization (no token crosses the newline between them)."""
    head = first.encode("utf-8", "surrogatepass")
    hashes, starts = _token_hashes_and_starts(head + b"\n" + second.encode("utf-8", "surrogatepass"))
    cut = np.searchsorted(starts, len(head))
    return hashes[:cut], hashes[cut:]


def token_hashes_of_many(texts: list[str]) -> list[np.ndarray]:
    """``code_token_hashes`` of each text with one tokenization of them all (joined by newlines, which no token
    crosses): numpy's per-call costs are paid once for a batch of short texts."""
    raws = [text.encode("utf-8", "surrogatepass") for text in texts]
    if not raws:
        return []
    hashes, starts = _token_hashes_and_starts(b"\n".join(raws))
    text_starts = np.cumsum(np.array([len(raw) + 1 for raw in raws], dtype=np.int64))[:-1]
    return np.split(hashes, np.searchsorted(starts, text_starts))


def token_counts(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct token hashes, their counts) of ``text``."""
    hashes, counts = np.unique(code_token_hashes(text), return_counts=True)
    return hashes, counts.astype(np.float64)


def postings_order(hashes: np.ndarray) -> np.ndarray:
    """``np.argsort(hashes, kind="stable")`` (the reference; tested), from one unstable SIMD sort of 64-bit keys
    instead of a stable sort of the hashes: each key is a hash's high bits over the element's position, so equal
    hashes keep their order. Two different hashes that share their high bits may come out of order: checked, and
    then the stable sort is done after all."""
    return _postings_order(hashes)[0]


def _postings_order(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``postings_order`` and the hashes in that order."""
    count = len(hashes)
    position_bits = max(int(count - 1).bit_length(), 1)
    if count >= 2 and position_bits <= 40:  # ~2^24 hash bits at least: collisions stay rare
        shift = np.uint64(position_bits)
        keys = (hashes >> shift) << shift
        keys |= np.arange(count, dtype=np.uint64)
        keys.sort()
        order = (keys & np.uint64((1 << position_bits) - 1)).astype(np.intp)
        ordered = hashes[order]
        if not (ordered[1:] < ordered[:-1]).any():
            return order, ordered
    order = np.argsort(hashes, kind="stable")
    return order, hashes[order]


def lucene_idf(df, n_docs: int):
    return np.log(1 + (n_docs - df + 0.5) / (df + 0.5))


def reference_bm25_scores(query: list, docs: list[Counter], k1: float = 1.5, b: float = 0.75) -> list[float]:
    """Plain BM25 (the lucene variant bm25s computes) of every document of a corpus: the tests' reference."""
    n_docs = len(docs)
    lengths = [sum(doc.values()) for doc in docs]
    avg_len = sum(lengths) / n_docs
    df = Counter(token for doc in docs for token in doc)
    scores = []
    for doc, length in zip(docs, lengths, strict=True):
        score = 0.0
        for token in set(query):
            if doc[token]:
                idf = math.log(1 + (n_docs - df[token] + 0.5) / (df[token] + 0.5))
                score += idf * doc[token] / (doc[token] + k1 * (1 - b + b * length / avg_len))
        scores.append(score)
    return scores


class CountsBM25(bm25s.BM25):
    """bm25s (lucene variant) indexed from token counts; retrieval is bm25s's (``get_scores_from_ids``)."""

    def __init__(self, k1: float = 1.5, b: float = 0.75):
        super().__init__(k1=k1, b=b, method="lucene", backend="numpy", csc_backend="numpy")

    def index_counts(self, docs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Index documents given as (distinct token hashes, counts); returns the vocabulary (sorted hashes), whose
        positions are the token ids of ``get_scores_from_ids``."""
        sizes = np.array([len(hashes) for hashes, _ in docs], dtype=np.int64)
        all_hashes = np.concatenate([hashes for hashes, _ in docs]) if docs else np.zeros(0, np.uint64)
        all_tf = np.concatenate([counts for _, counts in docs]) if docs else np.zeros(0)
        # postings by token, those of a token in document order (what bm25s's CSC holds)
        order, sorted_hashes = _postings_order(all_hashes)
        new_token = np.ones(len(sorted_hashes), dtype=bool)
        new_token[1:] = sorted_hashes[1:] != sorted_hashes[:-1]
        vocabulary = sorted_hashes[new_token]
        sorted_token_ids = np.cumsum(new_token) - 1
        doc_ids = np.repeat(np.arange(len(docs), dtype=np.int32), sizes)
        lengths = np.bincount(doc_ids, weights=all_tf, minlength=len(docs))  # whole counts: exact in any order
        self.n_docs, self.avg_len = len(docs), (float(lengths.mean()) if len(docs) else 1.0)
        self.df = np.bincount(sorted_token_ids, minlength=len(vocabulary))
        self.idf = lucene_idf(self.df, self.n_docs)
        sorted_docs = doc_ids[order]
        sorted_tf = all_tf[order]
        # each document's length norm once, then one gather (the same numbers as computing it posting by posting)
        norm = self.k1 * (1 - self.b + self.b * lengths / self.avg_len)
        tfc = sorted_tf / (norm[sorted_docs] + sorted_tf)
        indptr = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        np.cumsum(self.df, out=indptr[1:])
        self.scores = {
            "data": (self.idf[sorted_token_ids] * tfc).astype(self.dtype),
            "indices": sorted_docs.astype(self.int_dtype, copy=False),
            "indptr": indptr,
            "num_docs": self.n_docs,
        }
        self.nonoccurrence_array = None
        self.vocabulary = vocabulary
        self.vocab_dict = _LazyVocabulary(vocabulary)
        self.unique_token_ids_set = range(len(vocabulary))
        return vocabulary

    def query_ids(self, query_hashes: np.ndarray) -> np.ndarray:
        """The token ids of the query's hashes that the index knows."""
        positions = np.searchsorted(self.vocabulary, query_hashes)
        inside = positions < len(self.vocabulary)
        found = np.zeros(len(query_hashes), dtype=bool)
        found[inside] = self.vocabulary[positions[inside]] == query_hashes[inside]
        return np.unique(positions[found])

    def score_outside(self, query_hashes: np.ndarray, doc: tuple[np.ndarray, np.ndarray]) -> float:
        """The score a document that is not in the index gets, with the index's statistics."""
        return float(self.score_many_outside(query_hashes, [doc])[0])

    def score_many_outside(self, query_hashes: np.ndarray, docs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """``score_outside`` of several documents with one set of numpy calls."""
        sizes = np.array([len(hashes) for hashes, _ in docs], dtype=np.int64)
        hashes = np.concatenate([doc[0] for doc in docs])
        counts = np.concatenate([doc[1] for doc in docs])
        owner = np.repeat(np.arange(len(docs)), sizes)
        lengths = np.bincount(owner, weights=counts, minlength=len(docs))
        query = np.unique(query_hashes)  # sorted: membership by binary search
        at = np.searchsorted(query, hashes)
        at[at == len(query)] = 0
        hit = query[at] == hashes if len(query) else np.zeros(len(hashes), dtype=bool)
        hashes, tf, owner = hashes[hit], counts[hit], owner[hit]
        positions = np.searchsorted(self.vocabulary, hashes)
        inside = positions < len(self.vocabulary)
        known = np.zeros(len(hashes), dtype=bool)
        known[inside] = self.vocabulary[positions[inside]] == hashes[inside]
        df = np.zeros(len(hashes))
        df[known] = self.df[positions[known]]
        norm = self.k1 * (1 - self.b + self.b * lengths[owner] / self.avg_len)
        terms = lucene_idf(df, self.n_docs) * tf / (tf + norm)
        return np.bincount(owner, weights=terms, minlength=len(docs))


class _LazyVocabulary(dict):
    """bm25s's ``vocab_dict`` (hash -> id), filled only if bm25s's string-query path asks for it."""

    def __init__(self, vocabulary: np.ndarray):
        super().__init__()
        self._vocabulary = vocabulary

    def _fill(self) -> None:
        if not super().__len__() and len(self._vocabulary):
            self.update(zip(self._vocabulary.tolist(), range(len(self._vocabulary)), strict=True))

    def __contains__(self, key) -> bool:
        self._fill()
        return super().__contains__(key)

    def __getitem__(self, key):
        self._fill()
        return super().__getitem__(key)

    def __len__(self) -> int:
        return len(self._vocabulary)


Tokens = tuple[np.ndarray, np.ndarray]


class SnapshotIndex:
    """A ``CountsBM25`` over one snapshot's files (``path -> blob``), reused for nearby snapshots."""

    def __init__(self, files: dict[str, str], tokens: dict[str, Tokens], k1: float = 1.5, b: float = 0.75):
        self.files = dict(files)  # the whole snapshot (files without tokens are simply not indexed)
        self.paths = [path for path in files if path in tokens and len(tokens[path][0])]
        self.position = {path: index for index, path in enumerate(self.paths)}
        self.bm25 = CountsBM25(k1, b)
        self.bm25.index_counts([tokens[path] for path in self.paths])
        scores = self.bm25.scores  # bm25s's CSC (token -> documents) is a CSR matrix with one row per token
        self.matrix = scipy.sparse.csr_matrix(
            (scores["data"], scores["indices"], scores["indptr"]), shape=(len(self.bm25.vocabulary), len(self.paths))
        )
        self._outside_weights: dict[tuple[str, str], np.ndarray] = {}  # (path, blob) -> per-token BM25 term
        self._differences: dict[int, tuple[dict, set]] = {}  # id(snapshot) -> (snapshot, pairs that differ)

    def drift(self, snapshot: dict[str, str]) -> int:
        """How many (path, blob) pairs differ between the indexed snapshot and ``snapshot``."""
        return len(self.difference(snapshot))

    def difference(self, snapshot: dict[str, str]) -> set[tuple[str, str]]:
        """The (path, blob) pairs in one of the indexed snapshot and ``snapshot`` only, remembered for the snapshots
        of the current batch (``drift`` then ``top_many`` ask for the same ones)."""
        memo = self._differences.get(id(snapshot))
        if memo is None or memo[0] is not snapshot:
            if len(self._differences) > 256:
                self._differences.clear()
            memo = self._differences[id(snapshot)] = (snapshot, snapshot.items() ^ self.files.items())
        return memo[1]

    def top(
        self,
        query_hashes: np.ndarray,
        snapshot: dict[str, str],
        tokens_for: Callable[[str, str], Tokens | None],
        excluded: set[str],
        k: int,
    ) -> list[tuple[str, float]]:
        """The ``k`` best files of ``snapshot`` (positive scores; ties by path), ``excluded`` left out. Files whose blob
        differs from the indexed one (``tokens_for(path, blob)``) are scored with ``score_outside``."""
        stale = self.files.items() - snapshot.items()
        fresh = snapshot.items() - self.files.items()
        results: list[tuple[str, float]] = []
        if self.paths and len(query_hashes):
            ids = self.bm25.query_ids(query_hashes)
            if len(ids):
                scores = np.asarray(self.bm25.get_scores_from_ids(ids.tolist()), dtype=np.float64)
                masked = [self.position[path] for path in excluded if path in self.position]
                masked += [self.position[path] for path, _ in stale if path in self.position]
                scores[masked] = 0.0
                candidates = np.flatnonzero(scores > 0)
                if len(candidates) > 4 * k:
                    candidates = candidates[np.argpartition(-scores[candidates], 4 * k - 1)[: 4 * k]]
                results = [(self.paths[i], float(scores[i])) for i in candidates.tolist()]
        fresh_docs = [(path, tokens_for(path, blob)) for path, blob in fresh if path not in excluded]
        fresh_docs = [(path, doc) for path, doc in fresh_docs if doc is not None and len(doc[0])]
        if fresh_docs and len(query_hashes):
            scores = self.bm25.score_many_outside(query_hashes, [doc for _, doc in fresh_docs])
            results += [(path, float(score)) for (path, _), score in zip(fresh_docs, scores, strict=True) if score > 0]
        results.sort(key=lambda item: (-round(item[1], 4), item[0]))
        return results[:k]

    def top_many(
        self,
        queries: list[np.ndarray],
        snapshots: list[dict[str, str]],
        tokens_for_many: Callable[[list[tuple[str, str]]], list[Tokens | None]],
        excluded: list[set[str]],
        k: int,
    ) -> list[list[tuple[str, float]]]:
        """``top`` of several commits (sorted distinct query hashes, snapshots, exclusions) against this index, with
        the same scores: the indexed files through one sparse product of the queries' token indicators with the
        index (float32, summed token by token in id order, as bm25s does), the files changed since the index was
        built through one product of their terms with the queries' indicators (summed in hash order in float64, as
        ``score_many_outside`` does). Only the candidates that can reach a commit's top ``k`` are sorted in Python
        (``near_top``)."""
        if k <= 0:
            return [[] for _ in queries]
        files, position = self.files, self.position
        fresh_of: list[list[tuple[str, str]]] = []
        masked_of: list[list[int]] = []
        for snapshot, skip in zip(snapshots, excluded, strict=True):
            differ = self.difference(snapshot)
            self._differences.pop(id(snapshot), None)
            fresh, masked = [], [position[path] for path in skip if path in position]
            for pair in differ:  # a differing pair the index holds is stale, any other is fresh
                if files.get(pair[0]) == pair[1]:
                    if pair[0] in position:
                        masked.append(position[pair[0]])
                elif pair[0] not in skip:
                    fresh.append(pair)
            fresh_of.append(fresh)
            masked_of.append(masked)
        results: list[list[tuple[str, float]]] = [[] for _ in queries]
        if self.paths and queries:
            rows, docs, values = self._indexed_candidates(queries, masked_of, k)
            paths = self.paths
            for row, doc, value in zip(rows.tolist(), docs.tolist(), values.tolist(), strict=True):
                results[row].append((paths[doc], value))
        union = list(dict.fromkeys(pair for pairs in fresh_of for pair in pairs))
        if union:
            tokens_of = dict(zip(union, tokens_for_many(union), strict=True))
            union = [pair for pair in union if tokens_of[pair] is not None and len(tokens_of[pair][0])]
        if union:
            row_of = {pair: row for row, pair in enumerate(union)}
            scores = self._outside_scores(queries, union, tokens_of)
            file_rows = [row_of[pair] for pairs in fresh_of for pair in pairs if pair in row_of]
            commits = np.repeat(np.arange(len(queries)), [sum(pair in row_of for pair in pairs) for pairs in fresh_of])
            file_rows = np.array(file_rows, dtype=np.int64)
            values = scores[file_rows, commits]
            positive = values > 0
            commits, file_rows, values = commits[positive], file_rows[positive], values[positive]
            near = near_top(commits, values, len(queries), k)
            for commit, row, value in zip(
                commits[near].tolist(), file_rows[near].tolist(), values[near].tolist(), strict=True
            ):
                results[commit].append((union[row][0], value))
        for candidates in results:
            candidates.sort(key=lambda item: (-round(item[1], 4), item[0]))
        return [candidates[:k] for candidates in results]

    def _indexed_candidates(
        self, queries: list[np.ndarray], masked_of: list[list[int]], k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(commit, index position, score) of the indexed files that can reach each commit's top ``k`` as ``top``
        ranks them (``masked_of``: index positions left out): ``top`` keeps the ``4 k`` best (``argpartition``),
        of which only those within 1e-4 of the ``k``-th best can make the top ``k``; where files tied at the
        ``4 k``-th score are that close, ``argpartition``'s own choice is taken, as in ``top``."""
        vocabulary = self.bm25.vocabulary
        count = len(queries)
        sizes = np.array([len(query) for query in queries], dtype=np.int64)
        hashes = np.concatenate(queries)
        owner = np.repeat(np.arange(count), sizes)
        positions = np.searchsorted(vocabulary, hashes)
        inside = positions < len(vocabulary)
        found = np.zeros(len(hashes), dtype=bool)
        found[inside] = vocabulary[positions[inside]] == hashes[inside]
        indptr = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner[found], minlength=count), out=indptr[1:])
        indicator = scipy.sparse.csr_matrix(
            (np.ones(int(found.sum()), dtype=self.matrix.dtype), positions[found], indptr),
            shape=(count, len(vocabulary)),
        )
        product = (indicator @ self.matrix).tocsr()
        product.sort_indices()
        rows = np.repeat(np.arange(count), np.diff(product.indptr))
        docs = product.indices.astype(np.int64)
        values = product.data.astype(np.float64)
        keep = values > 0
        masked_sizes = [len(masked) for masked in masked_of]
        if sum(masked_sizes):
            n_docs = len(self.paths)
            masked = np.unique(np.repeat(np.arange(count), masked_sizes) * n_docs + np.concatenate(masked_of))
            keys = rows * n_docs + docs
            at = np.searchsorted(masked, keys)
            at[at == len(masked)] = 0
            keep &= masked[at] != keys
        rows, docs, values = rows[keep], docs[keep], values[keep]
        crowded: list[int] = []
        near = near_top(rows, values, count, k, crowded_beyond=4 * k, crowded=crowded)
        for row in crowded:  # top's own argpartition: the same numbers in the same order, the same choice
            start, end = np.searchsorted(rows, [row, row + 1])
            best = start + np.argpartition(-values[start:end], 4 * k - 1)[: 4 * k]
            chosen = np.zeros(end - start, dtype=bool)
            chosen[best - start] = True
            near[start:end] &= chosen
        return rows[near], docs[near], values[near]

    def _outside_scores(
        self, queries: list[np.ndarray], union: list[tuple[str, str]], docs: dict[tuple[str, str], Tokens]
    ) -> np.ndarray:
        """(files x commits) scores of files outside the index, with the index's statistics: the BM25 term of each
        of their tokens that some query holds (``score_many_outside``'s formula, element by element), summed per
        file and commit in hash order by one sparse product."""
        bm25 = self.bm25
        vocabulary = np.unique(np.concatenate(queries))
        sizes = np.array([len(docs[pair][0]) for pair in union], dtype=np.int64)
        hashes = np.concatenate([docs[pair][0] for pair in union])
        tf = np.concatenate([docs[pair][1] for pair in union])
        owner = np.repeat(np.arange(len(union)), sizes)
        lengths = np.bincount(owner, weights=tf, minlength=len(union))
        at = np.searchsorted(vocabulary, hashes)
        at[at == len(vocabulary)] = 0
        hit = vocabulary[at] == hashes if len(vocabulary) else np.zeros(len(hashes), dtype=bool)
        hashes, tf, owner, at = hashes[hit], tf[hit], owner[hit], at[hit]
        positions = np.searchsorted(bm25.vocabulary, hashes)
        inside = positions < len(bm25.vocabulary)
        known = np.zeros(len(hashes), dtype=bool)
        known[inside] = bm25.vocabulary[positions[inside]] == hashes[inside]
        df = np.zeros(len(hashes))
        df[known] = bm25.df[positions[known]]
        norm = bm25.k1 * (1 - bm25.b + bm25.b * lengths[owner] / bm25.avg_len)
        terms = lucene_idf(df, bm25.n_docs) * tf / (tf + norm)
        indptr = np.zeros(len(union) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner, minlength=len(union)), out=indptr[1:])
        matrix = scipy.sparse.csr_matrix((terms, at, indptr), shape=(len(union), len(vocabulary)))
        indicator = np.zeros((len(vocabulary), len(queries)))
        columns = np.searchsorted(vocabulary, np.concatenate(queries))
        indicator[columns, np.repeat(np.arange(len(queries)), [len(query) for query in queries])] = 1.0
        return matrix @ indicator


def near_top(
    rows: np.ndarray,
    values: np.ndarray,
    count: int,
    k: int,
    crowded_beyond: int | None = None,
    crowded: list[int] | None = None,
) -> np.ndarray:
    """Which entries (``rows``: sorted row of each, ``count`` rows) can be among their row's ``k`` best once ranked
    by score rounded to 4 decimals: all of a row of at most ``k``, else those within 1e-4 of the row's ``k``-th
    best value (any lower one rounds strictly below ``k`` others). With ``crowded_beyond`` (n), the rows of more
    than n entries whose n-th best is itself that close are added to ``crowded``, since there which n entries a
    cut to the n best keeps decides the ranking. ``near_top_plain`` is the reference."""
    sizes = np.bincount(rows, minlength=count)
    starts = np.zeros(count, dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    order = np.lexsort((-values, rows))  # best first within each row
    big = sizes > k
    threshold = np.full(count, -np.inf)
    threshold[big] = values[order[starts[big] + k - 1]] - 1e-4
    if crowded_beyond is not None and crowded is not None:
        beyond = sizes > crowded_beyond
        crowded.extend(np.flatnonzero(beyond)[values[order[starts[beyond] + crowded_beyond - 1]] >= threshold[beyond]])
    return values >= threshold[rows]


def near_top_plain(rows: np.ndarray, values: np.ndarray, count: int, k: int) -> np.ndarray:
    """``near_top`` one row at a time, with ``np.partition`` (what ``top_many`` did per commit)."""
    keep = np.zeros(len(values), dtype=bool)
    for row in range(count):
        members = np.flatnonzero(rows == row)
        column = values[members]
        if len(column) > k:
            threshold = np.partition(column, len(column) - k)[len(column) - k] - 1e-4
            keep[members] = column >= threshold
        else:
            keep[members] = True
    return keep

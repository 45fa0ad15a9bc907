"""Exact (SHA-256) and near (MinHash LSH) deduplication of code files, as datatrove stages.

Hashing (tokens, shingles, signatures) is the library :mod:`datatrove_pipelines.hashing`; this module holds the
stages, which chain with ``depends=``:

1. ``DedupSignatures`` (N tasks, inline in the first pass, after the per-file filters): gives each document a
   reference ``(rank, index)``, writes its SHA-256, its MinHash band signatures and its preference key, and passes the
   document on (to the intermediate writer).
2. ``DedupBuckets`` (up to ``num_buckets`` tasks, each taking one or more buckets): per bucket, exact groups of
   equal SHA-256 and the pairs of equal band signatures (candidates), as datatrove's ``MinhashDedupBuckets``.
3. ``DedupCluster`` (1 task; after the buckets in the same task when there is only one): one decision for both
   kinds. Exact pairs group identical files, all pairs (exact and near) group clusters; each cluster keeps exactly
   one document, its **preferred** member, and so does each exact group (the rest are ``exact_duplicate`` when
   identical to their group's keeper, else ``near_duplicate``).
4. ``DedupFilter`` (N tasks): drops what stage 3 decided, with reason ``exact_duplicate`` / ``near_duplicate``.

Which copy survives: the pipeline runs the per-file filters (rules, syntax, decontamination) *before* the
signatures, so only files that pass them take part, and a cluster whose members pass loses none of them to a broken
copy. Among those the preference is: more stars (``stars`` / ``max_stars_count`` / ``star_events_count`` in the
metadata or its ``source`` columns), then the more recent (``committer_date`` / ``revision_date`` /
``last_modified``), then the smallest id (``<repo>/<path>``), so the survivors do not depend on ``--tasks``.

Shingles are code-aware: 5-grams of identifier/number tokens (``\\w+``; lower-cased, punctuation and whitespace
ignored), as bigcode's near-dedup did, instead of datatrove's English word tokenizer. With 14 bands of 8 hashes the
LSH threshold is (1/14)^(1/8) ≈ 0.72 Jaccard (bigcode: 0.7). Signatures are one-permutation MinHash (one hash per
shingle, optimal densification), standard MinHash for small files (``standard_minhash_below`` shingles), in
datatrove's signature format. The number of candidate pairs per 10K documents is in ``stats.json`` (``reports``).

All files go through datatrove's ``DataFolder`` (fsspec), so the work folder may be local or remote.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.io import DataFolder, get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.batching import batched
from datatrove.utils.hashing import HashConfig

from datatrove_pipelines.funnel import FunnelFilter
from datatrove_pipelines.hashing import (  # noqa: F401 - re-exported for callers of the old module layout
    CODE_TOKEN,
    TOKEN_CACHE_STATS,
    MinhashSignatureHasher,
    WordTokens,
    document_ngram_hashes,
    hash_normalized_batch,
    mix64,
    ngram_hashes,
    normalized_token_hashes,
    normalized_tokens,
    reference_ngram_hash,
    reference_token_hash,
    word_tokens,
)

DEDUP_REF_KEY = "dedup_ref"
REPORT_PREFIX = "report/"  # datatrove stats keys that stats.json lists under "reports"
_EXACT_DTYPE = np.dtype([("h1", ">u8"), ("h2", ">u8"), ("index", "<u4")])
STAR_KEYS = ("stars", "max_stars_count", "star_events_count", "stargazers_count")
DATE_KEYS = ("committer_date", "revision_date", "last_modified", "max_stars_repo_stars_event_max_datetime")
_PREFERENCE_FIELDS = frozenset(STAR_KEYS + DATE_KEYS)


@dataclass
class DedupConfig:
    """Exact + MinHash dedup settings; ``work_dir`` holds signatures, duplicate pairs and removal lists."""

    exact: bool = True
    near: bool = True
    n_grams: int = 5  # tokens per shingle
    num_buckets: int = 14  # LSH bands
    hashes_per_bucket: int = 8  # rows per band; threshold ≈ (1/num_buckets)^(1/hashes_per_bucket)
    seed: int = 1
    # a bucket with at most this many signatures (one per document) is matched in memory with one sort
    # (~44 bytes each); larger buckets, or buckets split among several tasks, use datatrove's streaming merge
    max_bucket_signatures_in_memory: int = 50_000_000
    # files with fewer shingles get standard MinHash (see hashing.MinhashSignatureHasher): one-permutation MinHash
    # over mostly-empty bins lines families of small templated files up into false band candidates
    standard_minhash_below: int = 224

    @property
    def threshold(self) -> float:
        return (1 / self.num_buckets) ** (1 / self.hashes_per_bucket)

    def minhash_config(self) -> MinhashConfig:
        return MinhashConfig(
            n_grams=self.n_grams,
            num_buckets=self.num_buckets,
            hashes_per_bucket=self.hashes_per_bucket,
            seed=self.seed,
            hash_config=HashConfig(precision=32, hash_fc="xxhash"),
        )


# --------------------------------------------------------------------------------------------------------------------
# Stage 1: signatures
# --------------------------------------------------------------------------------------------------------------------

MINHASH_SIGNATURES = "minhash/signatures"
MINHASH_PAIRS = "minhash/duplicate_pairs"
EXACT_SIGNATURES = "exact/signatures"
EXACT_PAIRS = "exact/duplicate_pairs"
PREFERENCE_KEYS = "preference"
REMOVALS = "removals"


def minhash_sig_dir(work_dir: str) -> str:
    return f"{work_dir.rstrip('/')}/{MINHASH_SIGNATURES}"


def minhash_dups_dir(work_dir: str) -> str:
    return f"{work_dir.rstrip('/')}/{MINHASH_PAIRS}"


def exact_sig_dir(work_dir: str) -> str:
    return f"{work_dir.rstrip('/')}/{EXACT_SIGNATURES}"


def exact_dups_dir(work_dir: str) -> str:
    return f"{work_dir.rstrip('/')}/{EXACT_PAIRS}"


def removal_dir(work_dir: str) -> str:
    return f"{work_dir.rstrip('/')}/{REMOVALS}"


def _lookup(metadata: dict[str, Any], keys: tuple[str, ...]) -> Any:
    source = metadata.get("source") if isinstance(metadata.get("source"), dict) else {}
    for key in keys:
        for where in (metadata, source):
            value = where.get(key)
            if value not in (None, ""):
                return value
    return None


def preference_key(doc: Document) -> list:
    """[-stars, recency, id]: sorted ascending, the preferred copy comes first (missing stars count as 0, a missing
    date as the oldest). The id order is a total order that does not depend on how the input was split."""
    metadata = doc.metadata
    source = metadata.get("source")
    if not _PREFERENCE_FIELDS & metadata.keys() and not (
        isinstance(source, dict) and _PREFERENCE_FIELDS & source.keys()
    ):
        return [-0.0, "", str(doc.id)]  # the common case, without the lookups
    stars = _lookup(doc.metadata, STAR_KEYS)
    try:
        stars = float(stars) if stars is not None else 0.0
    except (TypeError, ValueError):
        stars = 0.0
    date = _lookup(doc.metadata, DATE_KEYS)
    return [-stars, str(date) if date is not None else "", str(doc.id)]


def _sort_key(key: list) -> tuple:
    """The sort key of a stored preference: more stars, then more recent (dates sort descending), then the id."""
    stars, date, doc_id = key
    return (stars, tuple(-ord(c) for c in date) + (1,), doc_id)


_NO_KEY = (0.0, (1,), "")  # a document without a stored key (not expected): after every keyed one


class DedupSignatures(PipelineStep):
    """Tags each document with ``metadata.dedup_ref = [rank, index]`` and writes its exact and MinHash signatures
    and its preference key (``preference/<rank>.jsonl``: ``[index, -stars, date, id]`` per line)."""

    type = "🫂 - DEDUP"
    name = "✍ signatures"

    def __init__(self, work_dir: str, config: DedupConfig | None = None, batch_size: int = 64):
        super().__init__()
        self.work_dir = work_dir
        self.config = config or DedupConfig()
        self.batch_size = batch_size  # documents tokenised together (hash_normalized_batch)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        config = self.config
        folder = get_datafolder(self.work_dir)
        hasher = MinhashSignatureHasher(config)
        exact_records: list[tuple[int, int, int]] = []
        minhash_indices: list[int] = []
        minhash_signatures: list[np.ndarray] = []
        hits_before = TOKEN_CACHE_STATS["hits"]
        index = 0
        with folder.open(f"{PREFERENCE_KEYS}/{rank:05d}.jsonl", "wt") as keys:
            for batch in batched(data or [], self.batch_size):
                with self.track_time("batch"):
                    token_hashes = hash_normalized_batch([doc.text for doc in batch]) if config.near else []
                    signature_sets = hasher.signature_sets(token_hashes) if config.near else []
                    lines = []
                    for position, doc in enumerate(batch):
                        doc.metadata[DEDUP_REF_KEY] = [rank, index + position]
                        lines.append(json.dumps([index + position, *preference_key(doc)]))
                        if config.exact:
                            digest = bytes.fromhex(doc.metadata["sha256"])
                            exact_records.append(
                                (
                                    int.from_bytes(digest[:8], "big"),
                                    int.from_bytes(digest[8:16], "big"),
                                    index + position,
                                )
                            )
                        if config.near:
                            for signature in signature_sets[position]:
                                minhash_indices.append(index + position)
                                minhash_signatures.append(signature)
                    keys.write("\n".join(lines) + "\n")
                index += len(batch)
                self.stat_update("documents", value=len(batch))
                yield from batch
        self.stat_update("token_cache_hits", value=TOKEN_CACHE_STATS["hits"] - hits_before)
        with self.track_time():
            if config.exact:
                self._write_exact(folder, exact_records, rank)
            if config.near:
                self._write_minhash(folder, minhash_indices, minhash_signatures, rank)

    def _write_exact(self, folder: DataFolder, records: list[tuple[int, int, int]], rank: int) -> None:
        table = np.array(records, dtype=_EXACT_DTYPE)
        bucket_of = (table["h1"] >> np.uint64(56)) % np.uint64(self.config.num_buckets) if len(table) else table["h1"]
        for bucket in range(self.config.num_buckets):
            with folder.open(f"{EXACT_SIGNATURES}/bucket_{bucket:03d}/{rank:05d}.npy", "wb") as handle:
                np.save(handle, table[bucket_of == bucket])

    def _write_minhash(self, folder: DataFolder, indices: list[int], signatures: list[np.ndarray], rank: int) -> None:
        per_bucket = self.config.hashes_per_bucket
        fields = [(f"field{i + 1}", "<u4") for i in range(per_bucket)] + [(f"field{per_bucket + 1}", "<u4")]
        dtype = np.dtype(fields)
        matrix = np.stack(signatures) if signatures else np.zeros((0, per_bucket * self.config.num_buckets), np.uint32)
        for bucket in range(self.config.num_buckets):
            records = np.empty(len(indices), dtype=dtype)
            for i in range(per_bucket):
                records[f"field{i + 1}"] = matrix[:, bucket * per_bucket + i]
            records[f"field{per_bucket + 1}"] = np.asarray(indices, dtype=np.uint32)
            records.sort(order=dtype.names)  # datatrove's bucket stage merges sorted files
            with folder.open(f"{MINHASH_SIGNATURES}/bucket_{bucket:03d}/{rank:05d}.minhash.sig", "wb") as handle:
                handle.write(records.tobytes())


# --------------------------------------------------------------------------------------------------------------------
# Stage 2: buckets (exact groups + MinHash band matches)
# --------------------------------------------------------------------------------------------------------------------


def _rank_of(path: str) -> int:
    return int(path.rsplit("/", 1)[-1].split(".")[0])


def find_exact_duplicate_pairs(sig_folder: str | DataFolder) -> np.ndarray:
    """(first_rank, first_index, rank, index) rows linking every further member of each equal-SHA group to its first
    member (which copy is kept is decided in stage 3)."""
    folder = get_datafolder(sig_folder)
    tables = []
    for path in folder.list_files(glob_pattern="*.npy") if folder.isdir("") else []:
        with folder.open(path, "rb") as handle:
            table = np.load(handle)
        tables.append((table, np.full(len(table), _rank_of(path), dtype=np.uint32)))
    if not tables:
        return np.zeros((0, 4), dtype=np.uint32)
    h1 = np.concatenate([t["h1"] for t, _ in tables]).astype(np.uint64)
    h2 = np.concatenate([t["h2"] for t, _ in tables]).astype(np.uint64)
    index = np.concatenate([t["index"] for t, _ in tables]).astype(np.uint32)
    ranks = np.concatenate([r for _, r in tables])
    order = np.lexsort((index, ranks, h2, h1))
    h1, h2, index, ranks = h1[order], h2[order], index[order], ranks[order]
    same_as_previous = np.zeros(len(h1), dtype=bool)
    same_as_previous[1:] = (h1[1:] == h1[:-1]) & (h2[1:] == h2[:-1])
    group_start = np.maximum.accumulate(np.where(same_as_previous, 0, np.arange(len(h1))))
    dup = np.nonzero(same_as_previous)[0]
    keeper = group_start[dup]
    return np.stack([ranks[keeper], index[keeper], ranks[dup], index[dup]], axis=1).astype(np.uint32)


def band_match_pairs(
    signature_files: list[str], hashes_per_bucket: int, folder: DataFolder | None = None
) -> np.ndarray:
    """(rank, index, rank, index) rows linking the documents whose band signatures are equal, from one bucket's
    signature files (``<rank>.minhash.sig``, datatrove's format): all records sorted at once, each record paired
    with the next equal one, as datatrove's streaming merge pairs them (so its duplicate clusters are the same).
    A document with two signatures (see ``MinhashSignatureHasher.signature_sets``) may pair with itself; such rows
    are dropped."""
    folder = folder or get_datafolder("/")
    record = np.dtype([("sig", "<u4", (hashes_per_bucket,)), ("index", "<u4")])
    tables = []
    for path in signature_files:
        with folder.open(path, "rb") as handle:
            tables.append(np.frombuffer(handle.read(), dtype=record))
    ranks = [
        np.full(len(table), _rank_of(path), np.uint32) for path, table in zip(signature_files, tables, strict=True)
    ]
    if not tables or not sum(map(len, tables)):
        return np.zeros((0, 4), dtype=np.uint32)
    table, rank = np.concatenate(tables), np.concatenate(ranks)
    signatures = table["sig"]
    order = np.lexsort(signatures.T[::-1])
    signatures = signatures[order]
    same = np.flatnonzero((signatures[1:] == signatures[:-1]).all(axis=1))
    first, second = order[same], order[same + 1]
    pairs = np.stack([rank[first], table["index"][first], rank[second], table["index"][second]], axis=1)
    return pairs[(pairs[:, 0] != pairs[:, 2]) | (pairs[:, 1] != pairs[:, 3])]


class DedupBuckets(MinhashDedupBuckets):
    """Stage 2, one task per bucket: exact SHA-256 groups of the bucket, then the MinHash band matches (in memory,
    or datatrove's streaming merge for buckets too large for it or split among several tasks)."""

    name = "🪣 buckets"

    def __init__(self, work_dir: str, config: DedupConfig | None = None):
        self.dedup_config = config or DedupConfig()
        self.work_dir = work_dir
        super().__init__(
            input_folder=minhash_sig_dir(work_dir),
            output_folder=minhash_dups_dir(work_dir),
            config=self.dedup_config.minhash_config(),
        )

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        """With fewer tasks than buckets, task ``rank`` handles buckets rank, rank + world_size, ...; with more,
        they must be a multiple of the bucket count (datatrove splits each bucket's hash range among its tasks)."""
        num_buckets = self.dedup_config.num_buckets
        if world_size < num_buckets:
            for bucket in range(rank, num_buckets, world_size):
                yield from self._run_bucket(bucket, num_buckets)
        else:
            yield from self._run_bucket(rank, world_size)

    def _run_bucket(self, rank: int, world_size: int):
        workers_per_bucket = world_size // self.dedup_config.num_buckets
        bucket, bucket_worker = divmod(rank, max(workers_per_bucket, 1))
        work = get_datafolder(self.work_dir)
        if self.dedup_config.exact and bucket_worker == 0:
            with self.track_time():
                pairs = find_exact_duplicate_pairs(
                    get_datafolder(f"{exact_sig_dir(self.work_dir)}/bucket_{bucket:03d}")
                )
                with work.open(f"{EXACT_PAIRS}/{bucket:05d}.dups", "wb") as handle:
                    handle.write(pairs.astype("<u4").tobytes())
                self.stat_update("exact_duplicates", value=len(pairs))
        if self.dedup_config.near:
            folder = f"{MINHASH_SIGNATURES}/bucket_{bucket:03d}"
            files = sorted(work.list_files(folder, glob_pattern="*.minhash.sig")) if work.isdir(folder) else []
            record_size = 4 * (self.dedup_config.hashes_per_bucket + 1)
            signatures = sum(work.size(path) for path in files) // record_size
            if workers_per_bucket <= 1 and signatures <= self.dedup_config.max_bucket_signatures_in_memory:
                with self.track_time():
                    pairs = band_match_pairs(files, self.dedup_config.hashes_per_bucket, work)
                    with work.open(f"{MINHASH_PAIRS}/{bucket:05d}_00.dups", "wb") as out:
                        out.write(pairs.astype("<u4").tobytes())
                    self.stat_update("total_matches", value=len(pairs))
            else:
                yield from super().run(None, rank, world_size) or []


# --------------------------------------------------------------------------------------------------------------------
# Stage 3: one decision for exact and near duplicates
# --------------------------------------------------------------------------------------------------------------------


def _read_pairs(folder: str | DataFolder) -> np.ndarray:
    folder = get_datafolder(folder)
    arrays = []
    for path in sorted(folder.list_files(glob_pattern="*.dups")) if folder.isdir("") else []:
        with folder.open(path, "rb") as handle:
            arrays.append(np.frombuffer(handle.read(), dtype="<u4").reshape(-1, 4))
    return np.concatenate(arrays) if arrays else np.zeros((0, 4), dtype=np.uint32)


def _distinct_pairs(pairs: np.ndarray) -> int:
    """The number of distinct unordered document pairs among band matches (a pair matching in k bands counts once)."""
    if not len(pairs):
        return 0
    a = pairs[:, 0].astype(np.uint64) << np.uint64(32) | pairs[:, 1].astype(np.uint64)
    b = pairs[:, 2].astype(np.uint64) << np.uint64(32) | pairs[:, 3].astype(np.uint64)
    return len(np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), axis=0))


def _components(pairs: Iterable[np.ndarray]) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Connected components (root -> members) of the graph whose edges are the (rank, index, rank, index) rows."""
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(node):
        root = node
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(node, node) != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    for rows in pairs:
        for row in rows.tolist():
            a, b = (row[0], row[1]), (row[2], row[3])
            parent.setdefault(a, a)
            parent.setdefault(b, b)
            root_a, root_b = find(a), find(b)
            if root_a != root_b:
                parent[max(root_a, root_b)] = min(root_a, root_b)
    components: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for node in list(parent):
        components[find(node)].append(node)
    return components


def decide_removals(exact_pairs: np.ndarray, near_pairs: np.ndarray, preference=None) -> tuple[set, set]:
    """(exact-removed refs, near-removed refs); refs are (rank, index). Each exact group and each cluster keeps one
    document: the first by ``preference`` (ref -> sort key; default: the ref itself)."""
    preference = preference or (lambda ref: ref)
    exact_removed: set[tuple[int, int]] = set()
    for members in _components([exact_pairs]).values():
        keeper = min(members, key=preference)
        exact_removed.update(member for member in members if member != keeper)
    near_removed: set[tuple[int, int]] = set()
    for members in _components([exact_pairs, near_pairs]).values():
        survivor = min(members, key=preference)  # also its exact group's keeper: the same order decides both
        near_removed.update(member for member in members if member != survivor and member not in exact_removed)
    return exact_removed, near_removed


def read_preference_keys(work_dir: str, refs: set[tuple[int, int]]) -> tuple[dict[tuple[int, int], tuple], int]:
    """(sort key of each of ``refs``, number of documents that have a key) from ``preference/<rank>.jsonl``."""
    folder = get_datafolder(work_dir)
    wanted: dict[int, set[int]] = defaultdict(set)
    for rank, index in refs:
        wanted[rank].add(index)
    keys: dict[tuple[int, int], tuple] = {}
    documents = 0
    for path in folder.list_files(PREFERENCE_KEYS, glob_pattern="*.jsonl") if folder.isdir(PREFERENCE_KEYS) else []:
        rank = _rank_of(path)
        indices = wanted.get(rank, set())
        with folder.open(path, "rt") as handle:
            for line in handle:
                if not line.strip():
                    continue
                documents += 1
                if indices:
                    index, *key = json.loads(line)
                    if index in indices:
                        keys[(rank, index)] = _sort_key(key)
    return keys, documents


class DedupCluster(PipelineStep):
    """Stage 3 (a single task): decides the exact and near duplicates (preferred copy kept) and writes per-rank
    removal lists; reports the near-dedup candidate pairs per 10K documents."""

    type = "🫂 - DEDUP"
    name = "🔗 cluster"

    def __init__(self, work_dir: str, config: DedupConfig | None = None):
        super().__init__()
        self.work_dir = work_dir
        self.config = config or DedupConfig()

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        if world_size != 1:
            raise ValueError("DedupCluster must run as a single task")
        for _ in data or ():  # runs the steps before it in the same task (DedupBuckets, which yields nothing)
            pass
        with self.track_time():
            empty = np.zeros((0, 4), dtype=np.uint32)
            exact_pairs = _read_pairs(exact_dups_dir(self.work_dir)) if self.config.exact else empty
            near_pairs = _read_pairs(minhash_dups_dir(self.work_dir)) if self.config.near else empty
            refs = {
                (int(r), int(i))
                for rows in (exact_pairs, near_pairs)
                for r, i in np.concatenate([rows[:, 0:2], rows[:, 2:4]]).tolist()
            }
            keys, documents = read_preference_keys(self.work_dir, refs)
            exact_removed, near_removed = decide_removals(
                exact_pairs, near_pairs, lambda ref: (keys.get(ref, _NO_KEY), ref)
            )
            folder = get_datafolder(self.work_dir)
            if folder.isdir(REMOVALS):
                for old in folder.list_files(REMOVALS, glob_pattern="*.npy"):
                    folder.rm(old)
            for kind, removed in (("exact", exact_removed), ("near", near_removed)):
                by_rank: dict[int, list[int]] = defaultdict(list)
                for source_rank, index in removed:
                    by_rank[source_rank].append(index)
                for source_rank, indices in by_rank.items():
                    with folder.open(f"{REMOVALS}/{kind}_{source_rank:05d}.npy", "wb") as handle:
                        np.save(handle, np.array(sorted(indices), np.uint32))
            self.stat_update("exact_duplicates", value=len(exact_removed))
            self.stat_update("near_duplicates", value=len(near_removed))
            if self.config.near:
                self.stat_update(f"{REPORT_PREFIX}near_dedup/documents", value=documents)
                candidates = _distinct_pairs(near_pairs)
                self.stat_update(f"{REPORT_PREFIX}near_dedup/candidate_pairs", value=candidates)
                per_10k = 10_000 * candidates / documents if documents else 0.0
                self.stat_update(f"{REPORT_PREFIX}near_dedup/candidate_pairs_per_10k_docs", value=round(per_10k, 2))
        yield from ()


# --------------------------------------------------------------------------------------------------------------------
# Stage 4: filter
# --------------------------------------------------------------------------------------------------------------------


class DedupFilter(FunnelFilter):
    """Excludes the duplicates stage 3 chose (``kind`` "exact" or "near"); reads removal lists once per task."""

    def __init__(self, work_dir: str, kind: str, exclusion_writer: DiskWriter | None = None, drop_ref: bool = False):
        if kind not in ("exact", "near"):
            raise ValueError(f"kind must be 'exact' or 'near', not {kind!r}")
        super().__init__(f"{kind}_dedup", exclusion_writer)
        self.work_dir = work_dir
        self.kind = kind
        self.drop_ref = drop_ref  # the last dedup filter removes the bookkeeping key from the documents
        self._removals: dict[int, set[int]] | None = None

    def removals(self) -> dict[int, set[int]]:
        if self._removals is None:
            self._removals = {}
            folder = get_datafolder(self.work_dir)
            paths = folder.list_files(REMOVALS, glob_pattern=f"{self.kind}_*.npy") if folder.isdir(REMOVALS) else []
            for path in paths:
                source_rank = int(path.rsplit("/", 1)[-1][len(self.kind) + 1 :].split(".")[0])
                with folder.open(path, "rb") as handle:
                    self._removals[source_rank] = set(np.load(handle).tolist())
        return self._removals

    def check(self, doc: Document) -> str | None:
        ref = doc.metadata.pop(DEDUP_REF_KEY, None) if self.drop_ref else doc.metadata.get(DEDUP_REF_KEY)
        if ref is None:
            raise ValueError("document has no dedup_ref: was it written by the DedupSignatures stage?")
        source_rank, index = ref
        if index in self.removals().get(source_rank, ()):
            return f"{self.kind}_duplicate"
        return None

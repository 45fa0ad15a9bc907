"""Exact (SHA-256) and near (MinHash LSH) deduplication of code files, as datatrove stages.

Stages (``depends=`` chains them):

1. ``DedupSignatures`` (N tasks, inline in the first pass): gives each document a reference ``(rank, index)``,
   writes its SHA-256 and its MinHash signature, and passes the document on (to the intermediate writer).
2. ``DedupBuckets`` (``num_buckets`` tasks): per bucket, exact groups of equal SHA-256 and datatrove's
   ``MinhashDedupBuckets`` pairs of equal band signatures.
3. ``DedupCluster`` (1 task): one decision for both kinds. Exact copies: the smallest reference of each SHA-256
   group is kept. Near copies: pairs are unioned (exact pairs too) and in each cluster the smallest reference that
   exact dedup kept is kept; every other member is a near duplicate. So each cluster keeps exactly one document.
4. ``DedupFilter`` (N tasks): drops what stage 3 decided, with reason ``exact_duplicate`` / ``near_duplicate``.

Shingles are code-aware: 5-grams of identifier/number tokens (``\\w+``; case kept, punctuation and whitespace
ignored), as bigcode's near-dedup did, instead of datatrove's English word tokenizer. With 14 bands of 8 hashes the
LSH threshold is (1/14)^(1/8) ≈ 0.72 Jaccard (bigcode: 0.7).
"""

from __future__ import annotations

import glob
import os
import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.hashing import HashConfig

from datatrove_pipelines.common import FunnelFilter

DEDUP_REF_KEY = "dedup_ref"
CODE_TOKEN = re.compile(r"\w+")
_EXACT_DTYPE = np.dtype([("h1", ">u8"), ("h2", ">u8"), ("index", "<u4")])


@dataclass
class DedupConfig:
    """Exact + MinHash dedup settings; ``work_dir`` holds signatures, duplicate pairs and removal lists."""

    exact: bool = True
    near: bool = True
    n_grams: int = 5  # tokens per shingle
    num_buckets: int = 14  # LSH bands
    hashes_per_bucket: int = 8  # rows per band; threshold ≈ (1/num_buckets)^(1/hashes_per_bucket)
    seed: int = 1
    shingle_block_rows: int = 4096  # rows hashed at once when computing a signature (bounds memory)

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
# Hashing
# --------------------------------------------------------------------------------------------------------------------


def token_hashes(text: str) -> np.ndarray:
    """64-bit xxhash of each ``\\w+`` token (deterministic across processes, unlike ``hash``)."""
    from xxhash import xxh64_intdigest

    tokens = CODE_TOKEN.findall(text)
    return np.fromiter(map(xxh64_intdigest, tokens), dtype=np.uint64, count=len(tokens))


_NGRAM_MULTIPLIERS = np.random.RandomState(20250603).randint(1, 2**62, size=64, dtype=np.uint64) | np.uint64(1)


def ngram_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """Hash of every window of ``n`` consecutive token hashes (a file shorter than ``n`` tokens gives one window)."""
    if len(hashes) == 0:
        return hashes
    if len(hashes) < n:
        n = len(hashes)
    windows = len(hashes) - n + 1
    combined = np.zeros(windows, dtype=np.uint64)
    for offset in range(n):
        combined += hashes[offset : offset + windows] * _NGRAM_MULTIPLIERS[offset]  # wraps mod 2**64 on purpose
    combined ^= combined >> np.uint64(29)  # mix the high bits down before multiply-shift hashing
    return combined


class MinhashSignatureHasher:
    """MinHash with multiply-shift hashing (no modulo): h_i(x) = (a_i * x + b_i) >> 32, 32-bit values."""

    def __init__(self, config: DedupConfig):
        self.config = config
        num_hashes = config.num_buckets * config.hashes_per_bucket
        generator = np.random.RandomState(config.seed)
        self.a = generator.randint(1, 2**63, size=num_hashes, dtype=np.uint64) | np.uint64(1)
        self.b = generator.randint(0, 2**63, size=num_hashes, dtype=np.uint64)

    def signature(self, text: str) -> np.ndarray | None:
        """The (num_buckets * hashes_per_bucket,) uint32 signature, or None for a file without tokens."""
        shingles = np.unique(ngram_hashes(token_hashes(text), self.config.n_grams))
        if shingles.size == 0:
            return None
        block = self.config.shingle_block_rows
        result = np.full(self.a.shape, np.iinfo(np.uint32).max, dtype=np.uint64)
        for start in range(0, len(shingles), block):
            rows = shingles[start : start + block, None]
            hashed = (rows * self.a[None, :] + self.b[None, :]) >> np.uint64(32)
            np.minimum(result, hashed.min(axis=0), out=result)
        # datatrove stops reading a bucket at the max value (its sentinel): keep signatures strictly below it
        return np.minimum(result, np.iinfo(np.uint32).max - 1).astype(np.uint32)


# --------------------------------------------------------------------------------------------------------------------
# Stage 1: signatures
# --------------------------------------------------------------------------------------------------------------------


def minhash_sig_dir(work_dir: str) -> str:
    return os.path.join(work_dir, "minhash", "signatures")


def minhash_dups_dir(work_dir: str) -> str:
    return os.path.join(work_dir, "minhash", "duplicate_pairs")


def exact_sig_dir(work_dir: str) -> str:
    return os.path.join(work_dir, "exact", "signatures")


def exact_dups_dir(work_dir: str) -> str:
    return os.path.join(work_dir, "exact", "duplicate_pairs")


def removal_dir(work_dir: str) -> str:
    return os.path.join(work_dir, "removals")


class DedupSignatures(PipelineStep):
    """Tags each document with ``metadata.dedup_ref = [rank, index]`` and writes its exact and MinHash signatures."""

    type = "🫂 - DEDUP"
    name = "✍ signatures"

    def __init__(self, work_dir: str, config: DedupConfig | None = None):
        super().__init__()
        self.work_dir = work_dir
        self.config = config or DedupConfig()

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        config = self.config
        hasher = MinhashSignatureHasher(config)
        exact_records: list[tuple[int, int, int]] = []
        minhash_indices: list[int] = []
        minhash_signatures: list[np.ndarray] = []
        for index, doc in enumerate(data or []):
            with self.track_time():
                doc.metadata[DEDUP_REF_KEY] = [rank, index]
                if config.exact:
                    digest = bytes.fromhex(doc.metadata["sha256"])
                    exact_records.append(
                        (int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big"), index)
                    )
                if config.near:
                    signature = hasher.signature(doc.text)
                    if signature is not None:
                        minhash_indices.append(index)
                        minhash_signatures.append(signature)
            self.stat_update("documents")
            yield doc
        with self.track_time():
            if config.exact:
                self._write_exact(exact_records, rank)
            if config.near:
                self._write_minhash(minhash_indices, minhash_signatures, rank)

    def _write_exact(self, records: list[tuple[int, int, int]], rank: int) -> None:
        table = np.array(records, dtype=_EXACT_DTYPE)
        bucket_of = (table["h1"] >> np.uint64(56)) % np.uint64(self.config.num_buckets) if len(table) else table["h1"]
        for bucket in range(self.config.num_buckets):
            folder = os.path.join(exact_sig_dir(self.work_dir), f"bucket_{bucket:03d}")
            os.makedirs(folder, exist_ok=True)
            np.save(os.path.join(folder, f"{rank:05d}.npy"), table[bucket_of == bucket])

    def _write_minhash(self, indices: list[int], signatures: list[np.ndarray], rank: int) -> None:
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
            folder = os.path.join(minhash_sig_dir(self.work_dir), f"bucket_{bucket:03d}")
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"{rank:05d}.minhash.sig"), "wb") as handle:
                handle.write(records.tobytes())


# --------------------------------------------------------------------------------------------------------------------
# Stage 2: buckets (exact groups + MinHash band matches)
# --------------------------------------------------------------------------------------------------------------------


def find_exact_duplicate_pairs(sig_folder: str) -> np.ndarray:
    """(keeper_rank, keeper_index, rank, index) rows for every non-first member of each equal-SHA group."""
    tables = []
    for path in sorted(glob.glob(os.path.join(sig_folder, "*.npy"))):
        table = np.load(path)
        rank = int(os.path.basename(path).split(".")[0])
        tables.append((table, np.full(len(table), rank, dtype=np.uint32)))
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


class DedupBuckets(MinhashDedupBuckets):
    """Stage 2, one task per bucket: exact SHA-256 groups of the bucket, then datatrove's MinHash band matching."""

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
        workers_per_bucket = world_size // self.dedup_config.num_buckets
        bucket, bucket_worker = divmod(rank, max(workers_per_bucket, 1))
        if self.dedup_config.exact and bucket_worker == 0:
            with self.track_time():
                pairs = find_exact_duplicate_pairs(os.path.join(exact_sig_dir(self.work_dir), f"bucket_{bucket:03d}"))
                os.makedirs(exact_dups_dir(self.work_dir), exist_ok=True)
                with open(os.path.join(exact_dups_dir(self.work_dir), f"{bucket:05d}.dups"), "wb") as handle:
                    handle.write(pairs.astype("<u4").tobytes())
                self.stat_update("exact_duplicates", value=len(pairs))
        if self.dedup_config.near:
            yield from super().run(None, rank, world_size) or []


# --------------------------------------------------------------------------------------------------------------------
# Stage 3: one decision for exact and near duplicates
# --------------------------------------------------------------------------------------------------------------------


def _read_pairs(folder: str) -> np.ndarray:
    arrays = [
        np.fromfile(path, dtype="<u4").reshape(-1, 4) for path in sorted(glob.glob(os.path.join(folder, "*.dups")))
    ]
    return np.concatenate(arrays) if arrays else np.zeros((0, 4), dtype=np.uint32)


def decide_removals(exact_pairs: np.ndarray, near_pairs: np.ndarray) -> tuple[set, set]:
    """(exact-removed refs, near-removed refs); refs are (rank, index). One document per cluster survives."""
    exact_removed = {(int(r), int(i)) for r, i in exact_pairs[:, 2:4]}
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(node):
        root = node
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(node, node) != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    for row in np.concatenate([exact_pairs, near_pairs]) if len(exact_pairs) + len(near_pairs) else []:
        a, b = (int(row[0]), int(row[1])), (int(row[2]), int(row[3]))
        root_a, root_b = find(a), find(b)
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    clusters: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for node in list(parent):
        clusters[find(node)].append(node)
    near_removed = set()
    for members in clusters.values():
        survivors = sorted(node for node in members if node not in exact_removed)
        near_removed.update(survivors[1:])
    return exact_removed, near_removed


class DedupCluster(PipelineStep):
    """Stage 3 (a single task): decides the exact and near duplicates and writes per-rank removal lists."""

    type = "🫂 - DEDUP"
    name = "🔗 cluster"

    def __init__(self, work_dir: str, config: DedupConfig | None = None):
        super().__init__()
        self.work_dir = work_dir
        self.config = config or DedupConfig()

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        if world_size != 1:
            raise ValueError("DedupCluster must run as a single task")
        with self.track_time():
            exact_pairs = _read_pairs(exact_dups_dir(self.work_dir)) if self.config.exact else np.zeros((0, 4))
            near_pairs = _read_pairs(minhash_dups_dir(self.work_dir)) if self.config.near else np.zeros((0, 4))
            exact_removed, near_removed = decide_removals(exact_pairs, near_pairs)
            folder = removal_dir(self.work_dir)
            os.makedirs(folder, exist_ok=True)
            for old in glob.glob(os.path.join(folder, "*.npy")):
                os.remove(old)
            for kind, refs in (("exact", exact_removed), ("near", near_removed)):
                by_rank: dict[int, list[int]] = defaultdict(list)
                for source_rank, index in refs:
                    by_rank[source_rank].append(index)
                for source_rank, indices in by_rank.items():
                    np.save(
                        os.path.join(folder, f"{kind}_{source_rank:05d}.npy"), np.array(sorted(indices), np.uint32)
                    )
            self.stat_update("exact_duplicates", value=len(exact_removed))
            self.stat_update("near_duplicates", value=len(near_removed))
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
            for path in glob.glob(os.path.join(removal_dir(self.work_dir), f"{self.kind}_*.npy")):
                source_rank = int(os.path.basename(path)[len(self.kind) + 1 :].split(".")[0])
                self._removals[source_rank] = set(np.load(path).tolist())
        return self._removals

    def check(self, doc: Document) -> str | None:
        ref = doc.metadata.pop(DEDUP_REF_KEY, None) if self.drop_ref else doc.metadata.get(DEDUP_REF_KEY)
        if ref is None:
            raise ValueError("document has no dedup_ref: was it written by the DedupSignatures stage?")
        source_rank, index = ref
        if index in self.removals().get(source_rank, ()):
            return f"{self.kind}_duplicate"
        return None

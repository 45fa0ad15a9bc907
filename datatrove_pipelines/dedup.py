"""Exact (SHA-256) and near (MinHash LSH) deduplication of code files, as datatrove stages.

Stages (``depends=`` chains them):

1. ``DedupSignatures`` (N tasks, inline in the first pass): gives each document a reference ``(rank, index)``,
   writes its SHA-256 and its MinHash signature, and passes the document on (to the intermediate writer).
2. ``DedupBuckets`` (up to ``num_buckets`` tasks, each taking one or more buckets): per bucket, exact groups of
   equal SHA-256 and datatrove's ``MinhashDedupBuckets`` pairs of equal band signatures.
3. ``DedupCluster`` (1 task; after the buckets in the same task when there is only one): one decision for both kinds. Exact copies: the smallest reference of each SHA-256
   group is kept. Near copies: pairs are unioned (exact pairs too) and in each cluster the smallest reference that
   exact dedup kept is kept; every other member is a near duplicate. So each cluster keeps exactly one document.
4. ``DedupFilter`` (N tasks): drops what stage 3 decided, with reason ``exact_duplicate`` / ``near_duplicate``.

Shingles are code-aware: 5-grams of identifier/number tokens (``\\w+``; lower-cased, punctuation and whitespace
ignored), as bigcode's near-dedup did, instead of datatrove's English word tokenizer. With 14 bands of 8 hashes the
LSH threshold is (1/14)^(1/8) ≈ 0.72 Jaccard (bigcode: 0.7). Signatures are one-permutation MinHash (one hash per
shingle, optimal densification), written in datatrove's signature format.
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
from datatrove.utils.batching import batched
from datatrove.utils.hashing import HashConfig

from datatrove_pipelines.funnel import FunnelFilter

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
    # a bucket with at most this many signatures (one per document) is matched in memory with one sort
    # (~44 bytes each); larger buckets, or buckets split among several tasks, use datatrove's streaming merge
    max_bucket_signatures_in_memory: int = 50_000_000

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
#
# Token hashes are computed for all tokens of a document at once with numpy, on the UTF-8 bytes: a token is a maximal
# run of bytes that belong to word characters (``\\w``), and its hash packs its bytes 8 at a time into 64-bit words
# (read unaligned from the byte buffer) mixed with the murmur3 finalizer. No Python object is created per token, and
# the work per character is a few vectorised passes (mark word bytes, find run edges); the rest is per token.
# ``reference_token_hash`` is the same function written per token in plain Python (the tests compare the two).

_MIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SHIFT_33 = np.uint64(33)
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=np.uint64)  # [k] keeps k bytes
_CHUNK_SALT = np.uint64(0xD6E8FEB86659FD93)

# Word-ness of every code point, filled lazily with the regex itself so that it is exactly ``\w``.
_WORD_CODE_POINT = np.zeros(0x110000, dtype=bool)
_WORD_CODE_POINT_KNOWN = np.zeros(0x110000, dtype=bool)
_WORD_CODE_POINT[:128] = [CODE_TOKEN.fullmatch(chr(c)) is not None for c in range(128)]
_WORD_CODE_POINT_KNOWN[:128] = True
_ASCII_WORD_BYTES = bytes(_WORD_CODE_POINT[:128].astype(np.uint8).tolist()) + bytes(128)


def mix64(values: np.ndarray) -> np.ndarray:
    """The murmur3 64-bit finalizer (a bijection that spreads every input bit), in place."""
    values ^= values >> _SHIFT_33
    values *= _MIX_1
    values ^= values >> _SHIFT_33
    values *= _MIX_2
    values ^= values >> _SHIFT_33
    return values


def _word_byte_mask(text: str, raw: bytes) -> np.ndarray:
    """int8 per UTF-8 byte of ``text``: 1 where the byte belongs to a word character."""
    if len(raw) == len(text):  # ASCII: one byte per character, one table lookup per byte
        return np.frombuffer(raw.translate(_ASCII_WORD_BYTES), dtype=np.int8)
    mask = np.frombuffer(bytearray(raw.translate(_ASCII_WORD_BYTES)), dtype=np.int8)  # non-ASCII bytes: 0 for now
    code_points = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
    high = code_points[code_points >= 128]  # in text order, one per UTF-8 lead byte
    unseen = high[~_WORD_CODE_POINT_KNOWN[high]]
    if len(unseen):
        unseen = np.unique(unseen)
        for code_point in unseen.tolist():
            _WORD_CODE_POINT[code_point] = CODE_TOKEN.fullmatch(chr(code_point)) is not None
        _WORD_CODE_POINT_KNOWN[unseen] = True
    is_word = _WORD_CODE_POINT[high]
    leads = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) >= 0xC0)[is_word]
    widths = 2 + (high[is_word] >= 0x800).view(np.uint8) + (high[is_word] >= 0x10000)
    for offset in range(4):
        mask[leads[widths > offset] + offset] = 1
    return mask


@dataclass
class WordTokens:
    """The ``\\w+`` tokens of a text: hashes and UTF-8 byte offsets (``raw[starts[i]:ends[i]]`` is token i)."""

    raw: bytes
    hashes: np.ndarray  # uint64
    starts: np.ndarray  # int64
    ends: np.ndarray  # int64

    def char_lengths(self) -> np.ndarray:
        """Length of each token in characters (not bytes)."""
        if len(self.raw) == 0 or not len(self.starts):
            return self.ends - self.starts
        data = np.frombuffer(self.raw, dtype=np.uint8)
        char_starts = np.zeros(len(data) + 1, dtype=np.int64)
        np.cumsum((data & 0xC0) != 0x80, out=char_starts[1:])
        return char_starts[self.ends] - char_starts[self.starts]


def word_tokens(text: str) -> WordTokens:
    """Tokens (maximal runs of ``\\w`` characters, case kept) of ``text`` with their hashes, all at once."""
    raw = text.encode("utf-8", errors="surrogatepass")
    return _tokens_of(raw, _word_byte_mask(text, raw))


# The last normalised text and its tokens: steps of one task that look at the same document (the same str object),
# the dedup signature and the decontamination precheck, share one tokenisation. One tuple: swapped atomically.
_LAST_NORMALIZED: tuple[str | None, WordTokens | None] = (None, None)


def normalized_tokens(text: str) -> WordTokens:
    """``word_tokens(text.lower())``: the tokens near-dedup shingles and decontamination n-grams are both made of
    (case-insensitive, as bigcode's near-dedup hashed its shingles). The result for the last text is kept, so the
    second step to ask for the same document gets it for free."""
    global _LAST_NORMALIZED
    last_text, last_tokens = _LAST_NORMALIZED
    if last_text is text:
        return last_tokens
    if text.isascii():  # bytes.lower is str.lower here, and the word mask is one table lookup per byte
        raw = text.encode("ascii").lower()
        tokens = _tokens_of(raw, np.frombuffer(raw.translate(_ASCII_WORD_BYTES), dtype=np.int8))
    else:
        tokens = word_tokens(text.lower())
    _LAST_NORMALIZED = (text, tokens)
    return tokens


# Token hashes of the texts of the last batch: DedupSignatures tokenises its documents in batches, and the
# decontamination precheck, the next step, asks for the same str objects. Keyed by id(); the entries hold the texts,
# so an id cannot be reused while its entry is there.
_BATCH_HASHES: dict[int, tuple[str, np.ndarray]] = {}


def normalized_token_hashes(text: str) -> np.ndarray:
    """``normalized_tokens(text).hashes``; from the last ``hash_normalized_batch`` when ``text`` was in it."""
    entry = _BATCH_HASHES.get(id(text))
    if entry is not None and entry[0] is text:
        return entry[1]
    return normalized_tokens(text).hashes


def hash_normalized_batch(texts: list[str]) -> list[np.ndarray]:
    """``normalized_token_hashes`` of many texts, remembered for the next steps: the ASCII texts are joined by
    newlines (no token crosses one) and tokenised and hashed with one set of numpy calls, the others one by one."""
    global _BATCH_HASHES
    result: list[np.ndarray] = [np.zeros(0, dtype=np.uint64)] * len(texts)
    ascii_positions = [position for position, text in enumerate(texts) if text.isascii()]
    others = [position for position, text in enumerate(texts) if not text.isascii()]
    if ascii_positions:
        parts = [texts[position] for position in ascii_positions]
        raw = "\n".join(parts).encode("ascii").lower()
        tokens = _tokens_of(raw, np.frombuffer(raw.translate(_ASCII_WORD_BYTES), dtype=np.int8))
        _split_tokens(tokens, list(map(len, parts)), ascii_positions, result)
    if others:  # lower-cased one by one (lower-casing may change lengths), tokenised together
        lowered = [texts[position].lower() for position in others]
        sizes = [len(text.encode("utf-8", errors="surrogatepass")) for text in lowered]
        _split_tokens(word_tokens("\n".join(lowered)), sizes, others, result)
    _BATCH_HASHES = {id(text): (text, hashes) for text, hashes in zip(texts, result, strict=True)}
    return result


def _split_tokens(tokens: WordTokens, sizes: list[int], positions: list[int], result: list[np.ndarray]) -> None:
    """Give each of the newline-joined texts (``sizes`` in bytes) the hashes of the tokens that start in it."""
    text_starts = np.cumsum(np.asarray(sizes, dtype=np.int64) + 1)[:-1]  # of the 2nd, 3rd, ... text
    for position, hashes in zip(
        positions, np.split(tokens.hashes, np.searchsorted(tokens.starts, text_starts)), strict=True
    ):
        result[position] = hashes


def _tokens_of(raw: bytes, mask: np.ndarray) -> WordTokens:
    """Tokens of ``raw`` given its word-byte mask: a token starts where the mask goes 0 -> 1 and ends at 1 -> 0."""
    if not len(mask):
        empty = np.zeros(0, dtype=np.int64)
        return WordTokens(raw, np.zeros(0, dtype=np.uint64), empty, empty)
    edges = np.flatnonzero(mask[1:] != mask[:-1]) + 1  # every change, start or end, inside the text
    if mask[0]:
        edges = np.concatenate(([0], edges))
    if mask[-1]:
        edges = np.append(edges, len(mask))
    starts, ends = edges[0::2], edges[1::2]
    return WordTokens(raw, _hash_tokens(raw, starts, ends), starts, ends)


def _hash_tokens(raw: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``reference_token_hash`` of every token: the first 8 bytes of all tokens, then the further 8-byte chunks
    of the longer tokens in one flat array (no loop over chunk positions)."""
    if not len(starts):
        return np.zeros(0, dtype=np.uint64)
    buffer = raw + bytes(8)  # every 8-byte read that starts inside ``raw`` stays inside the buffer
    words = np.ndarray(shape=(len(raw) + 1,), dtype="<u8", buffer=buffer, strides=(1,))  # unaligned 8-byte windows
    lengths = ends - starts
    state = words[starts] & _LOW_BYTES[np.minimum(lengths, 8)]
    state ^= lengths.astype(np.uint64) * _GOLDEN
    longer = np.flatnonzero(lengths > 8)
    if len(longer):
        extra = (lengths[longer] - 1) // 8  # chunks after the first
        first_extra = np.cumsum(extra) - extra
        chunk = np.arange(int(extra.sum())) - np.repeat(first_extra - 1, extra)  # 1, 2, ... within each token
        values = words[np.repeat(starts[longer], extra) + 8 * chunk]
        values &= _LOW_BYTES[np.minimum(np.repeat(lengths[longer], extra) - 8 * chunk, 8)]
        values ^= chunk.astype(np.uint64) * _CHUNK_SALT
        state[longer] ^= np.bitwise_xor.reduceat(mix64(values), first_extra)
    return mix64(state)


def reference_token_hash(token: str) -> int:
    """``word_tokens``' hash of one token, in plain Python: the specification the vectorised code must meet.

    The UTF-8 bytes are read as little-endian 64-bit chunks c_0, c_1, ...; the hash is
    mix(c_0 ^ length * GOLDEN ^ mix(c_1 ^ 1 * SALT) ^ mix(c_2 ^ 2 * SALT) ^ ...) with mix the murmur3 finalizer.
    """
    data = token.encode("utf-8", errors="surrogatepass")
    mask = 2**64 - 1

    def mix(value: int) -> int:
        value ^= value >> 33
        value = (value * int(_MIX_1)) & mask
        value ^= value >> 33
        value = (value * int(_MIX_2)) & mask
        return value ^ (value >> 33)

    state = int.from_bytes(data[:8], "little") ^ ((len(data) * int(_GOLDEN)) & mask)
    for chunk in range(1, (len(data) + 7) // 8):
        state ^= mix(int.from_bytes(data[8 * chunk : 8 * chunk + 8], "little") ^ ((chunk * int(_CHUNK_SALT)) & mask))
    return mix(state)


# n-gram hashes are polynomial in an odd base B (mod 2**64): H[i] = sum_k hashes[i + k] * B**(n - 1 - k). Windows
# of 2, 4, 8, ... tokens are built by doubling (P_2m[i] = P_m[i] * B**m + P_m[i + m]) and the binary digits of n
# are joined the same way, so a 10-gram costs 4 multiply-adds per position instead of 10.
_NGRAM_BASE = np.uint64(0x9FB21C651E98DF25)


def _base_power(exponent: int) -> np.uint64:
    return np.uint64(pow(int(_NGRAM_BASE), exponent, 2**64))


def ngram_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """Hash of every window of ``n`` consecutive token hashes (a file shorter than ``n`` tokens gives one window)."""
    if len(hashes) == 0:
        return hashes
    n = min(n, len(hashes))
    windows = len(hashes) - n + 1
    combined: np.ndarray | None = None  # the windows of the first ``covered`` tokens
    covered = 0
    power, width = hashes, 1  # P_width
    while True:
        if n & width:
            if combined is None:
                combined = power[:windows].copy()
            else:
                combined *= _base_power(width)  # wraps mod 2**64 on purpose
                combined += power[covered : covered + windows]
            covered += width
        if 2 * width > n:
            break
        power = power[:-width] * _base_power(width) + power[width:]
        width *= 2
    combined ^= combined >> np.uint64(29)
    return combined


def document_ngram_hashes(token_hashes: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The n-gram hashes of many documents at once: (hash, document, position in the document) of every window of
    ``n`` tokens that lies inside one document (documents shorter than ``n`` tokens have none)."""
    lengths = np.fromiter(map(len, token_hashes), dtype=np.int64, count=len(token_hashes))
    if not len(lengths) or lengths.max() < n:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros(0, dtype=np.uint64), empty, empty
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    windows = ngram_hashes(np.concatenate(token_hashes), n)
    position = np.arange(len(windows))
    document = np.searchsorted(starts, position, side="right") - 1
    inside = position + n <= starts[document] + lengths[document]
    return windows[inside], document[inside], (position - starts[document])[inside]


def reference_ngram_hash(hashes: list[int]) -> int:
    """``ngram_hashes``' hash of one window, in plain Python (the specification the doubling must meet)."""
    value = 0
    for token_hash in hashes:
        value = (value * int(_NGRAM_BASE) + token_hash) % 2**64
    return value ^ (value >> 29)


class MinhashSignatureHasher:
    """One-permutation MinHash with optimal densification (Shrivastava, ICML 2017).

    Each shingle is hashed once (seeded): the high bits choose one of the ``num_buckets * hashes_per_bucket`` bins,
    the low 32 bits are its value, and each bin keeps its minimum. A bin no shingle fell into borrows the value of the
    first non-empty bin of its own fixed random sequence of bins (the same for every document), so two documents
    still agree on a bin with probability = their Jaccard similarity, as with one hash function per bin, at the cost
    of one hash per shingle instead of 112.
    """

    def __init__(self, config: DedupConfig):
        self.config = config
        self.num_hashes = config.num_buckets * config.hashes_per_bucket
        generator = np.random.RandomState(config.seed)
        self.salt = np.uint64(generator.randint(0, 2**63, dtype=np.uint64))
        self.borrow_order = np.stack([generator.permutation(self.num_hashes) for _ in range(self.num_hashes)])
        self.borrow_rank = np.argsort(self.borrow_order, axis=1)  # [b, c]: position of bin c in bin b's order

    def signature(self, text: str) -> np.ndarray | None:
        """The (num_buckets * hashes_per_bucket,) uint32 signature, or None for a file without tokens."""
        return self.signature_of_token_hashes(normalized_token_hashes(text))

    def signature_of_token_hashes(self, token_hashes: np.ndarray) -> np.ndarray | None:
        shingles = ngram_hashes(token_hashes, self.config.n_grams)
        if shingles.size == 0:
            return None
        return self.signature_of_shingles(shingles)

    def signature_of_shingles(self, shingles: np.ndarray) -> np.ndarray:
        mixed = mix64(shingles ^ self.salt)
        bins = ((mixed >> np.uint64(32)) * np.uint64(self.num_hashes)) >> np.uint64(32)
        signature = np.full(self.num_hashes, _EMPTY_BIN, dtype=np.uint64)
        np.minimum.at(signature, bins.astype(np.intp), mixed & np.uint64(0xFFFFFFFF))
        return self._finish(signature)

    def signatures_of_token_hashes(self, token_hashes: list[np.ndarray]) -> list[np.ndarray | None]:
        """``signature_of_token_hashes`` of many documents with one set of numpy calls: the token hashes are
        concatenated, shingled once (windows that cross a document boundary are dropped), and binned into one
        matrix; only documents with empty bins (small files) are finished one by one."""
        n = self.config.n_grams
        lengths = np.fromiter(map(len, token_hashes), dtype=np.int64, count=len(token_hashes))
        signatures: list[np.ndarray | None] = [None] * len(token_hashes)
        if not lengths.sum():
            return signatures
        shingles, owners, _ = document_ngram_hashes(token_hashes, n)
        short = np.flatnonzero((lengths > 0) & (lengths < n))  # one window over all their tokens
        if len(short):
            shingles = np.concatenate([shingles, *(ngram_hashes(token_hashes[i], n) for i in short.tolist())])
            owners = np.concatenate((owners, short))
        mixed = mix64(shingles ^ self.salt)
        bins = ((mixed >> np.uint64(32)) * np.uint64(self.num_hashes)) >> np.uint64(32)
        matrix = np.full((len(token_hashes), self.num_hashes), _EMPTY_BIN, dtype=np.uint64)
        np.minimum.at(
            matrix.reshape(-1), owners * self.num_hashes + bins.astype(np.int64), mixed & np.uint64(0xFFFFFFFF)
        )
        has_empty_bins = (matrix == _EMPTY_BIN).any(axis=1)
        complete = np.minimum(matrix, np.iinfo(np.uint32).max - 1).astype(np.uint32)
        for document in np.flatnonzero(lengths > 0).tolist():
            signatures[document] = self._finish(matrix[document]) if has_empty_bins[document] else complete[document]
        return signatures

    def _finish(self, signature: np.ndarray) -> np.ndarray:
        """Fill the empty bins of a binned signature (densification) and make it datatrove's uint32 signature."""
        missing = np.flatnonzero(signature == _EMPTY_BIN)
        if 2 * missing.size > self.num_hashes:  # few filled bins (a small file): the filled bin of least rank
            filled = np.flatnonzero(signature != _EMPTY_BIN)
            nearest = self.borrow_rank[missing[:, None], filled[None, :]].argmin(axis=1)
            signature[missing] = signature[filled[nearest]]
        elif missing.size:  # each empty bin takes the value of the first filled bin in its borrowing order
            candidates = self.borrow_order[missing]
            first_filled = (signature[candidates] != _EMPTY_BIN).argmax(axis=1)
            signature[missing] = signature[candidates[np.arange(len(missing)), first_filled]]
        # datatrove stops reading a bucket at the max value (its sentinel): keep signatures strictly below it
        return np.minimum(signature, np.iinfo(np.uint32).max - 1).astype(np.uint32)


_EMPTY_BIN = np.uint64(2**32)  # above every 32-bit value: a bin no shingle fell into


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

    def __init__(self, work_dir: str, config: DedupConfig | None = None, batch_size: int = 64):
        super().__init__()
        self.work_dir = work_dir
        self.config = config or DedupConfig()
        self.batch_size = batch_size  # documents tokenised together (hash_normalized_batch)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        config = self.config
        hasher = MinhashSignatureHasher(config)
        exact_records: list[tuple[int, int, int]] = []
        minhash_indices: list[int] = []
        minhash_signatures: list[np.ndarray] = []
        index = 0
        for batch in batched(data or [], self.batch_size):
            with self.track_time("batch"):
                token_hashes = hash_normalized_batch([doc.text for doc in batch]) if config.near else []
                signatures = hasher.signatures_of_token_hashes(token_hashes) if config.near else []
                for position, doc in enumerate(batch):
                    doc.metadata[DEDUP_REF_KEY] = [rank, index + position]
                    if config.exact:
                        digest = bytes.fromhex(doc.metadata["sha256"])
                        exact_records.append(
                            (int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big"), index + position)
                        )
                    if config.near:
                        signature = signatures[position]
                        if signature is not None:
                            minhash_indices.append(index + position)
                            minhash_signatures.append(signature)
            index += len(batch)
            self.stat_update("documents", value=len(batch))
            yield from batch
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


def band_match_pairs(signature_files: list[str], hashes_per_bucket: int) -> np.ndarray:
    """(rank, index, rank, index) rows linking the documents whose band signatures are equal, from one bucket's
    signature files (``<rank>.minhash.sig``, datatrove's format): all records sorted at once, each record paired
    with the next equal one, as datatrove's streaming merge pairs them (so its duplicate clusters are the same)."""
    record = np.dtype([("sig", "<u4", (hashes_per_bucket,)), ("index", "<u4")])
    tables = [np.fromfile(path, dtype=record) for path in signature_files]
    ranks = [
        np.full(len(table), int(os.path.basename(path).split(".")[0]), np.uint32)
        for path, table in zip(signature_files, tables, strict=True)
    ]
    if not tables or not sum(map(len, tables)):
        return np.zeros((0, 4), dtype=np.uint32)
    table, rank = np.concatenate(tables), np.concatenate(ranks)
    signatures = table["sig"]
    order = np.lexsort(signatures.T[::-1])
    signatures = signatures[order]
    same = np.flatnonzero((signatures[1:] == signatures[:-1]).all(axis=1))
    first, second = order[same], order[same + 1]
    return np.stack([rank[first], table["index"][first], rank[second], table["index"][second]], axis=1)


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
        if self.dedup_config.exact and bucket_worker == 0:
            with self.track_time():
                pairs = find_exact_duplicate_pairs(os.path.join(exact_sig_dir(self.work_dir), f"bucket_{bucket:03d}"))
                os.makedirs(exact_dups_dir(self.work_dir), exist_ok=True)
                with open(os.path.join(exact_dups_dir(self.work_dir), f"{bucket:05d}.dups"), "wb") as handle:
                    handle.write(pairs.astype("<u4").tobytes())
                self.stat_update("exact_duplicates", value=len(pairs))
        if self.dedup_config.near:
            folder = os.path.join(minhash_sig_dir(self.work_dir), f"bucket_{bucket:03d}")
            files = sorted(glob.glob(os.path.join(folder, "*.minhash.sig")))
            record_size = 4 * (self.dedup_config.hashes_per_bucket + 1)
            signatures = sum(os.path.getsize(path) for path in files) // record_size
            if workers_per_bucket <= 1 and signatures <= self.dedup_config.max_bucket_signatures_in_memory:
                with self.track_time():
                    pairs = band_match_pairs(files, self.dedup_config.hashes_per_bucket)
                    os.makedirs(minhash_dups_dir(self.work_dir), exist_ok=True)
                    with open(os.path.join(minhash_dups_dir(self.work_dir), f"{bucket:05d}_00.dups"), "wb") as out:
                        out.write(pairs.astype("<u4").tobytes())
                    self.stat_update("total_matches", value=len(pairs))
            else:
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
        for _ in data or ():  # runs the steps before it in the same task (DedupBuckets, which yields nothing)
            pass
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

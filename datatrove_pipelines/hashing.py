"""Token, n-gram and MinHash hashing of code, shared by near-dedup (shingles) and decontamination (10-grams).

A library, not a pipeline step: :mod:`datatrove_pipelines.dedup` makes signatures of it and
:mod:`datatrove_pipelines.decontamination` looks n-grams up with it. Each fast (numpy) function has a plain Python
reference beside it that the tests compare it with.

Tokens are maximal runs of ``\\w`` characters; near-dedup and decontamination both use the tokens of the lower-cased
text (:func:`normalized_tokens`). Token hashes of recently hashed texts are kept (:func:`normalized_token_hashes`), so
the steps of one task that look at the same document (decontamination, then the dedup signature) tokenise it once.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

CODE_TOKEN = re.compile(r"\w+")

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


# Token hashes of recently hashed texts: the steps of one task that look at the same document (the same str object),
# the decontamination filter and then the dedup signatures, tokenise it once. Keyed by id(); the entries hold the
# texts, so an id cannot be reused while its entry is there. Bounded: the oldest entries go first.
_RECENT_HASHES: OrderedDict[int, tuple[str, np.ndarray]] = OrderedDict()
RECENT_HASHES_LIMIT = 1024  # texts (a few batches of 64 in flight between two steps)
TOKEN_CACHE_STATS = {"hits": 0, "misses": 0}  # per process; the dedup signatures step reports its share


def _recent(text: str) -> np.ndarray | None:
    entry = _RECENT_HASHES.get(id(text))
    if entry is not None and entry[0] is text:
        return entry[1]
    return None


def _remember(texts: list[str], hashes: list[np.ndarray]) -> None:
    for text, text_hashes in zip(texts, hashes, strict=True):
        _RECENT_HASHES[id(text)] = (text, text_hashes)
        _RECENT_HASHES.move_to_end(id(text))
    while len(_RECENT_HASHES) > RECENT_HASHES_LIMIT:
        _RECENT_HASHES.popitem(last=False)


def normalized_token_hashes(text: str) -> np.ndarray:
    """``normalized_tokens(text).hashes``; from the recent texts of ``hash_normalized_batch`` when ``text`` is one."""
    hashes = _recent(text)
    if hashes is not None:
        return hashes
    return normalized_tokens(text).hashes


def hash_normalized_batch(texts: list[str]) -> list[np.ndarray]:
    """``normalized_token_hashes`` of many texts, remembered for the next steps. Texts hashed recently are taken
    from the cache (counted in ``TOKEN_CACHE_STATS``); of the others, the ASCII texts are joined by newlines (no token
    crosses one) and tokenised and hashed with one set of numpy calls, the rest one by one."""
    result: list[np.ndarray] = [np.zeros(0, dtype=np.uint64)] * len(texts)
    missing = []
    for position, text in enumerate(texts):
        hashes = _recent(text)
        if hashes is None:
            missing.append(position)
        else:
            result[position] = hashes
    TOKEN_CACHE_STATS["hits"] += len(texts) - len(missing)
    TOKEN_CACHE_STATS["misses"] += len(missing)
    ascii_positions = [position for position in missing if texts[position].isascii()]
    others = [position for position in missing if not texts[position].isascii()]
    if ascii_positions:
        parts = [texts[position] for position in ascii_positions]
        raw = "\n".join(parts).encode("ascii").lower()
        tokens = _tokens_of(raw, np.frombuffer(raw.translate(_ASCII_WORD_BYTES), dtype=np.int8))
        _split_tokens(tokens, list(map(len, parts)), ascii_positions, result)
    if others:  # lower-cased one by one (lower-casing may change lengths), tokenised together
        lowered = [texts[position].lower() for position in others]
        sizes = [len(text.encode("utf-8", errors="surrogatepass")) for text in lowered]
        _split_tokens(word_tokens("\n".join(lowered)), sizes, others, result)
    _remember([texts[position] for position in missing], [result[position] for position in missing])
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
    return WordTokens(raw, hash_token_spans(raw, starts, ends), starts, ends)


def hash_token_spans(raw: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
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

    Below ``standard_minhash_below`` shingles (a small file) most bins are empty and borrowed, and the borrowing
    lines whole families of small templated files up: their band signatures collide far more often than their
    Jaccard similarity says. Those files get standard MinHash instead (:meth:`standard_signature_of_shingles`, one
    independent affine hash per bin over the mixed shingle hashes, as datasketch computes it), which makes the
    band-collision probability exactly 1 - (1 - J^r)^b. Files up to ``standard_minhash_below / threshold`` shingles
    get both signatures (:meth:`signature_sets`), so a small file still meets its larger near-copies.

    ``config``: any object with ``n_grams``, ``num_buckets``, ``hashes_per_bucket``, ``seed`` and optionally
    ``standard_minhash_below`` (e.g. :class:`datatrove_pipelines.dedup.DedupConfig`).
    """

    def __init__(self, config):
        self.config = config
        self.num_hashes = config.num_buckets * config.hashes_per_bucket
        generator = np.random.RandomState(config.seed)
        self.salt = np.uint64(generator.randint(0, 2**63, dtype=np.uint64))
        self.borrow_order = np.stack([generator.permutation(self.num_hashes) for _ in range(self.num_hashes)])
        self.borrow_rank = np.argsort(self.borrow_order, axis=1)  # [b, c]: position of bin c in bin b's order
        standard = np.random.RandomState([config.seed, 0x5EED])  # another stream: the OPH values stay as they were
        self.standard_salt = np.uint64(standard.randint(0, 2**63, dtype=np.uint64))
        self.standard_a = standard.randint(0, 2**63, size=self.num_hashes, dtype=np.uint64) * np.uint64(2) + np.uint64(
            1
        )
        self.standard_b = standard.randint(0, 2**63, size=self.num_hashes, dtype=np.uint64)
        self.standard_a32 = (self.standard_a >> np.uint64(32)).astype(np.uint32) | np.uint32(1)
        self.standard_b32 = (self.standard_b >> np.uint64(32)).astype(np.uint32)
        self.standard_below = int(getattr(config, "standard_minhash_below", 0) or 0)
        threshold = (1 / config.num_buckets) ** (1 / config.hashes_per_bucket)
        self.both_below = int(np.ceil(self.standard_below / threshold)) if self.standard_below else 0

    def standard_signature_of_shingles(self, shingles: np.ndarray) -> np.ndarray:
        """Standard MinHash: bin i is the minimum over the shingles of ``(a_i * x + b_i) mod 2**32`` (a_i odd, so a
        bijection), x the top 32 bits of the shingle's mixed hash; independent bins, no borrowing. The plain
        reference of :meth:`standard_signatures_of_token_hashes`."""
        mixed = (mix64(shingles ^ self.standard_salt) >> np.uint64(32)).astype(np.uint32)
        values = self.standard_a32[:, None] * mixed[None, :] + self.standard_b32[:, None]
        return np.minimum(values.min(axis=1), np.iinfo(np.uint32).max - 1).astype(np.uint32)

    def signature_sets(self, token_hashes: list[np.ndarray]) -> list[list[np.ndarray]]:
        """The band signatures of each document: none (no tokens), the one-permutation signature (large files), the
        standard one (small files), or both (files near the boundary, see the class docstring)."""
        n = self.config.n_grams
        lengths = np.fromiter(map(len, token_hashes), dtype=np.int64, count=len(token_hashes))
        shingle_counts = np.where(lengths >= n, lengths - n + 1, (lengths > 0).astype(np.int64))
        one_permutation = self.signatures_of_token_hashes(
            [
                hashes if count >= self.standard_below else hashes[:0]
                for hashes, count in zip(token_hashes, shingle_counts, strict=True)
            ]
        )
        small = np.flatnonzero((shingle_counts > 0) & (shingle_counts < self.both_below)).tolist()
        standard = dict(
            zip(small, self.standard_signatures_of_token_hashes([token_hashes[i] for i in small]), strict=True)
        )
        result: list[list[np.ndarray]] = []
        for position in range(len(token_hashes)):
            signatures = [] if one_permutation[position] is None else [one_permutation[position]]
            if position in standard:
                signatures.append(standard[position])
            result.append(signatures)
        return result

    def standard_signatures_of_token_hashes(self, token_hashes: list[np.ndarray]) -> list[np.ndarray]:
        """``standard_signature_of_shingles`` of many documents (each with at least one token) with one set of numpy
        calls: the shingles of all of them hashed 112 ways in one matrix, then the minimum per document segment."""
        if not token_hashes:
            return []
        n = self.config.n_grams
        shingles, owners, _ = document_ngram_hashes(token_hashes, n)
        short = [i for i, hashes in enumerate(token_hashes) if 0 < len(hashes) < n]  # one window over all tokens
        if short:
            shingles = np.concatenate([shingles, *(ngram_hashes(token_hashes[i], n) for i in short)])
            owners = np.concatenate((owners, np.asarray(short, dtype=owners.dtype)))
            order = np.argsort(owners, kind="stable")
            shingles, owners = shingles[order], owners[order]
        mixed = (mix64(shingles ^ self.standard_salt) >> np.uint64(32)).astype(np.uint32)
        values = self.standard_a32[:, None] * mixed[None, :]  # wraps mod 2**32: a bijection per bin (a odd)
        values += self.standard_b32[:, None]
        starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
        minima = np.minimum.reduceat(values, starts, axis=1)  # (bins, documents), documents in order
        signatures = np.minimum(minima, np.iinfo(np.uint32).max - 1).astype(np.uint32).T
        return list(signatures)

    def signature(self, text: str) -> np.ndarray | None:
        """The (num_buckets * hashes_per_bucket,) uint32 one-permutation signature, or None for a file without
        tokens."""
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

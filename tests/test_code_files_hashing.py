"""The vectorised hashing of the code-file pipeline against plain-Python references: token hashes, one-permutation
MinHash, the decontamination index (build, cache, lookup)."""

from __future__ import annotations

import hashlib
import itertools
import re
import shutil
import sysconfig
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from datatrove.data import Document
from mini_benchmarks import write_mini_benchmarks

from datatrove_pipelines.decontamination import (
    PRECHECK_KEY,
    BenchmarkNGramIndex,
    DecontaminationConfig,
    DecontaminationFilter,
    DecontaminationPrecheck,
    _benchmark_texts,
    normalize_tokens,
    text_ngram_hashes,
)
from datatrove_pipelines.dedup import (
    DedupBuckets,
    DedupConfig,
    DedupSignatures,
    MinhashSignatureHasher,
    _read_pairs,
    decide_removals,
    hash_normalized_batch,
    mix64,
    ngram_hashes,
    normalized_token_hashes,
    normalized_tokens,
    reference_ngram_hash,
    reference_token_hash,
    word_tokens,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])
WORD = re.compile(r"\w+")
TRICKY_TEXTS = [
    "",
    "   \n\t",
    "x",
    "def f(x_1):\n    return x_1+2",
    "İstanbul straße ǅ 你好 мир x²³ ①② _a_ \u200b zero\u200dwidth é ٣٤ ١ e\u0301",  # non-ASCII word characters
    "emoji😀word a😀b 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0001f600\U0001f600",  # 4-byte characters, inside and between words
    "\ud800lone surrogate\udfff",
    "a" * 8 + " " + "b" * 9 + " " + "c" * 16 + " " + "d" * 17 + " " + "e" * 65 + " " + "f" * 3000,  # chunk edges
    "ñ" * 9 + " " + "x" * 7 + "é",  # multi-byte characters across 8-byte chunks
]


def stdlib_texts(count: int) -> list[str]:
    texts = []
    for path in sorted(STDLIB.glob("*.py"))[:count] + sorted(STDLIB.rglob("test_unicode*.py"))[:3]:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            continue
    return texts


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_tokens_and_hashes_match_the_reference_on_tricky_text(text):
    tokens = word_tokens(text)
    expected = WORD.findall(text)
    found = [
        tokens.raw[s:e].decode("utf-8", errors="surrogatepass")
        for s, e in zip(tokens.starts, tokens.ends, strict=True)
    ]
    assert found == expected
    assert tokens.hashes.tolist() == [reference_token_hash(token) for token in expected]
    assert tokens.char_lengths().tolist() == [len(token) for token in expected]


def test_tokens_and_hashes_match_the_reference_on_the_stdlib():
    texts = stdlib_texts(60)
    assert any(not text.isascii() for text in texts)
    for text in texts:
        tokens = word_tokens(text)
        expected = WORD.findall(text)
        assert len(tokens.hashes) == len(expected)
        sample = slice(None, None, 7)  # every 7th token: the reference is slow Python
        assert tokens.hashes[sample].tolist() == [reference_token_hash(token) for token in expected[sample]]


def test_batched_token_hashes_equal_one_text_at_a_time():
    """hash_normalized_batch (ASCII texts joined and tokenised together) gives each text its own tokens' hashes,
    and the next step asking for one of those texts gets the batch's array."""
    texts = TRICKY_TEXTS + stdlib_texts(40) + ["", "word", "a\nb", "trailing_"]
    hashed = hash_normalized_batch(texts)
    for text, hashes in zip(texts, hashed, strict=True):
        assert hashes.tolist() == word_tokens(text.lower()).hashes.tolist()
    assert normalized_token_hashes(texts[5]) is hashed[5]
    assert normalized_token_hashes(texts[5] + " ").tolist() == word_tokens((texts[5] + " ").lower()).hashes.tolist()


def test_token_hashes_have_no_collisions_on_the_stdlib_vocabulary():
    vocabulary = sorted({token for text in stdlib_texts(120) for token in WORD.findall(text)})
    hashes = word_tokens(" ".join(vocabulary)).hashes
    assert len(hashes) == len(vocabulary) and len(set(hashes.tolist())) == len(vocabulary)


# --------------------------------------------------------------------------------------------------------------------
# One-permutation MinHash
# --------------------------------------------------------------------------------------------------------------------


def test_signatures_are_deterministic_and_dense():
    config = DedupConfig()
    first, second = MinhashSignatureHasher(config), MinhashSignatureHasher(config)
    text = (STDLIB / "textwrap.py").read_text()
    assert (first.signature(text) == second.signature(text)).all()
    tiny = first.signature("import os")  # one shingle: every bin borrows it, none keeps the empty marker
    assert tiny.shape == (config.num_buckets * config.hashes_per_bucket,) and tiny.dtype == np.uint32
    assert len(set(tiny.tolist())) == 1 and int(tiny[0]) < np.iinfo(np.uint32).max
    assert first.signature("  ,;  ") is None
    other_seed = MinhashSignatureHasher(DedupConfig(seed=2)).signature(text)
    assert (other_seed != first.signature(text)).mean() > 0.9


def test_batched_signatures_equal_one_document_at_a_time():
    hasher = MinhashSignatureHasher(DedupConfig())
    rng = np.random.default_rng(5)
    lengths = [0, 3, 0, 1, 4, 5, 6, 0, 40, 200, 2, 1000, 0]  # empty, shorter than a shingle, exactly one, many
    token_hashes = [rng.integers(0, 2**63, size=length, dtype=np.uint64) for length in lengths]
    batched_signatures = hasher.signatures_of_token_hashes(token_hashes)
    for hashes, signature in zip(token_hashes, batched_signatures, strict=True):
        alone = hasher.signature_of_token_hashes(hashes)
        assert (signature is None) == (alone is None) and (alone is None or signature.tolist() == alone.tolist())
    assert hasher.signatures_of_token_hashes([np.zeros(0, np.uint64)] * 3) == [None, None, None]


def test_densification_borrows_from_the_first_filled_bin_in_each_order():
    """Both ways of filling empty bins (by rank when most bins are empty, by scanning otherwise) give the plain
    definition: an empty bin takes the value of the first filled bin in its borrowing order."""
    hasher = MinhashSignatureHasher(DedupConfig())
    rng = np.random.default_rng(3)
    for size in (1, 2, 5, 20, 50, 56, 57, 80, 200):
        shingles = rng.integers(0, 2**63, size=size, dtype=np.uint64)
        mixed = mix64(shingles ^ hasher.salt)
        bins = (((mixed >> np.uint64(32)) * np.uint64(hasher.num_hashes)) >> np.uint64(32)).tolist()
        values = (mixed & np.uint64(0xFFFFFFFF)).tolist()
        direct: dict[int, int] = {}
        for b, v in zip(bins, values, strict=True):
            direct[b] = min(direct.get(b, v), v)
        expected = [
            direct[b] if b in direct else direct[next(c for c in hasher.borrow_order[b].tolist() if c in direct)]
            for b in range(hasher.num_hashes)
        ]
        assert hasher.signature_of_shingles(shingles).tolist() == expected, size


def test_signature_agreement_estimates_jaccard_similarity():
    """Pairs of shingle sets with known Jaccard similarity J: the share of equal bins is ~J (the LSH premise)."""
    hasher = MinhashSignatureHasher(DedupConfig())
    rng = np.random.default_rng(0)
    for jaccard in (0.2, 0.5, 0.8, 0.95):
        errors = []
        for size in (40, 400, 4000):  # few shingles (many densified bins) to many
            union = rng.integers(0, 2**63, size=size, dtype=np.uint64)
            shared = int(round(jaccard * size))
            rest = size - shared
            a = np.concatenate([union[:shared], union[shared : shared + rest // 2]])
            b = np.concatenate([union[:shared], union[shared + rest // 2 :]])
            true = shared / len(np.union1d(a, b))
            agreement = (hasher.signature_of_shingles(a) == hasher.signature_of_shingles(b)).mean()
            errors.append(agreement - true)
        assert abs(np.mean(errors)) < 0.08, (jaccard, errors)


def test_near_copies_collide_in_a_band_and_unrelated_files_do_not():
    config = DedupConfig()
    hasher = MinhashSignatureHasher(config)
    original = (STDLIB / "textwrap.py").read_text()
    fork = original.replace("TextWrapper", "TextFormatter", 3).replace("    ", "\t") + "\nEXTRA = 1\n"
    unrelated = (STDLIB / "heapq.py").read_text()

    def bands(text):
        return hasher.signature(text).reshape(config.num_buckets, config.hashes_per_bucket)

    assert (bands(original) == bands(fork)).all(axis=1).any()
    assert not (bands(original) == bands(unrelated)).all(axis=1).any()


def test_in_memory_band_matching_gives_datatroves_duplicate_clusters(tmp_path):
    """The bucket stage matched in memory (one sort per bucket) and by datatrove's streaming merge decide the same
    exact and near duplicates, on stdlib files plus near copies spread over two tasks."""
    texts = stdlib_texts(80)
    texts += [text.replace("def ", "def  ", 2) + "\n# fork\n" for text in texts[::9]]  # near copies
    texts += texts[:3]  # exact copies
    decisions = []
    for limit in (DedupConfig.max_bucket_signatures_in_memory, 0):  # in memory, then datatrove's merge
        work = tmp_path / f"work-{limit}"
        config = DedupConfig(max_bucket_signatures_in_memory=limit)
        for rank in (0, 1):
            docs = [
                Document(text=text, id=str(i), metadata={"sha256": hashlib.sha256(text.encode()).hexdigest()})
                for i, text in enumerate(texts)
                if i % 2 == rank
            ]
            list(DedupSignatures(str(work), config).run(docs, rank=rank, world_size=2))
        for bucket_task in range(2):
            list(DedupBuckets(str(work), config).run(None, rank=bucket_task, world_size=2))
        pairs = [
            _read_pairs(str(work / "exact" / "duplicate_pairs")),
            _read_pairs(str(work / "minhash" / "duplicate_pairs")),
        ]
        decisions.append(decide_removals(*pairs))
    (exact_in_memory, near_in_memory), (exact_streamed, near_streamed) = decisions
    assert exact_in_memory == exact_streamed and len(exact_in_memory) == 3
    assert near_in_memory == near_streamed and len(near_in_memory) >= len(texts[:80:9]) - 1


def test_ngram_hashes_are_order_sensitive():
    hashes = word_tokens("a b c d e f").hashes
    assert len(ngram_hashes(hashes, 5)) == 2
    assert ngram_hashes(hashes, 5)[0] != ngram_hashes(word_tokens("b a c d e f").hashes, 5)[0]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 10, 13, 16, 31])
def test_ngram_hashes_by_doubling_match_the_reference(n):
    hashes = word_tokens(" ".join(f"t{i % 23}" for i in range(70))).hashes
    found = ngram_hashes(hashes, n).tolist()
    values = hashes.tolist()
    assert found == [reference_ngram_hash(values[i : i + n]) for i in range(len(values) - n + 1)]
    if n > 3:  # fewer tokens than n: one window over all of them
        assert ngram_hashes(hashes[:3], n).tolist() == [reference_ngram_hash(values[:3])]


def test_near_dedup_shingles_ignore_case():
    hasher = MinhashSignatureHasher(DedupConfig())
    text = (STDLIB / "textwrap.py").read_text()
    assert (hasher.signature(text) == hasher.signature(text.upper())).all()


# --------------------------------------------------------------------------------------------------------------------
# Decontamination index
# --------------------------------------------------------------------------------------------------------------------


def reference_index(problems, config: DecontaminationConfig) -> dict[int, tuple[str, str]]:
    """The index as a dict, built one window at a time in Python (the original algorithm)."""
    problems_of = defaultdict(set)
    for benchmark, task_id, texts in problems:
        for text in texts:
            tokens = normalize_tokens(text)
            for position, value in enumerate(text_ngram_hashes(text, config.n).tolist()):
                window = tokens[position : position + config.n]
                if len(set(window)) < config.min_distinct_tokens or sum(map(len, window)) < config.min_ngram_chars:
                    continue
                problems_of[value].add((benchmark, task_id))
    kept = {}
    for value, owners in problems_of.items():
        per_benchmark = defaultdict(int)
        for benchmark, _ in owners:
            per_benchmark[benchmark] += 1
        if max(per_benchmark.values()) <= config.max_problems_per_ngram:
            kept[value] = min(owners)
    return kept


@pytest.fixture(scope="module")
def benchmarks_dir(tmp_path_factory) -> Path:
    """Benchmark-like files (tests/mini_benchmarks.py): the index tests need no offline benchmark copies."""
    return write_mini_benchmarks(tmp_path_factory.mktemp("mini-benchmarks"))


@pytest.fixture(scope="module")
def small_config(benchmarks_dir, tmp_path_factory) -> DecontaminationConfig:
    return DecontaminationConfig(
        benchmarks=("humaneval", "mbpp"),
        benchmarks_dir=str(benchmarks_dir),
        cache_dir=str(tmp_path_factory.mktemp("index-cache")),
    )


def test_vectorised_index_equals_the_reference_build(small_config):
    problems = _benchmark_texts(small_config)
    index = BenchmarkNGramIndex.from_texts(problems, small_config)
    expected = reference_index(problems, small_config)
    assert len(index) > 1_000
    assert {int(value): index.source(i) for i, value in enumerate(index.hashes.tolist())} == expected


def test_clean_reference_ngrams_are_not_indexed(small_config):
    problems = _benchmark_texts(small_config)[:50]
    full = BenchmarkNGramIndex.from_texts(problems, small_config)
    clean = problems[0][2][0]
    pruned = BenchmarkNGramIndex.from_texts(problems, small_config, clean_reference=[clean])
    banned = set(text_ngram_hashes(clean, small_config.n).tolist())
    assert banned & set(full.hashes.tolist())
    assert not banned & set(pruned.hashes.tolist())


def test_index_is_cached_on_disk_and_keyed_by_benchmark_content(small_config, benchmarks_dir, tmp_path):
    BenchmarkNGramIndex.clear_memory_cache()
    built = BenchmarkNGramIndex.cached(small_config)
    cached_files = list(Path(small_config.cache_dir).glob("index-*.npz"))
    assert len(cached_files) == 1
    BenchmarkNGramIndex.clear_memory_cache()
    loaded = BenchmarkNGramIndex.cached(small_config)
    assert loaded is not built and (loaded.hashes == built.hashes).all() and loaded.problems == built.problems
    assert BenchmarkNGramIndex.cached(small_config) is loaded  # the process keeps it

    # a changed benchmark file gets its own index
    copy = tmp_path / "benchmarks"
    shutil.copytree(benchmarks_dir, copy)
    mbpp = copy / "mbpp" / "mbpp.jsonl"
    mbpp.write_text("\n".join(mbpp.read_text().splitlines()[:20]) + "\n")
    changed = DecontaminationConfig(**{**small_config.__dict__, "benchmarks_dir": str(copy)})
    smaller = BenchmarkNGramIndex.cached(changed)
    assert len(list(Path(small_config.cache_dir).glob("index-*.npz"))) == 2
    assert len(smaller) < len(built)


def test_prefiltered_lookup_agrees_with_a_full_binary_search(small_config):
    index = BenchmarkNGramIndex.cached(small_config)
    problems = _benchmark_texts(small_config)
    texts = stdlib_texts(80) + [problem[2][0] + "\n# pasted\n" for problem in problems[::9]]
    matches = 0
    for text in texts:
        hashes = text_ngram_hashes(text, index.n)
        positions = np.searchsorted(index.hashes, hashes) % max(len(index), 1)
        hits = np.flatnonzero(index.hashes[positions] == hashes)
        match = index.first_match(text)
        assert (match is None) == (len(hits) == 0)
        if match is not None:
            matches += 1
            assert (match.benchmark, match.task_id) == index.source(int(positions[hits[0]]))
            assert match.ngram == " ".join(normalize_tokens(text)[int(hits[0]) : int(hits[0]) + index.n])
    assert matches >= 5


@pytest.mark.parametrize("text", TRICKY_TEXTS + ["Return X_1 + Y", "ÀÉÎ and İ: lower-casing changes lengths"])
def test_normalized_tokens_are_the_tokens_of_the_lower_cased_text(text):
    expected = word_tokens(text.lower())
    first = normalized_tokens(text)
    assert first.hashes.tolist() == expected.hashes.tolist()
    assert first.starts.tolist() == expected.starts.tolist() and first.ends.tolist() == expected.ends.tolist()
    assert normalized_tokens(text) is first  # the second step asking for the same document gets the same tokens
    assert normalized_tokens(text + " x") is not first


def test_precheck_gives_the_filter_the_same_decisions(small_config):
    problems = _benchmark_texts(small_config)
    texts = stdlib_texts(40) + [problem[2][0] + "\nprint(1)\n" for problem in problems[::15]]

    def documents():
        return [Document(text=text, id=str(i), metadata={"size": len(text)}) for i, text in enumerate(texts)]

    alone = documents()
    kept_alone = [doc.id for doc in DecontaminationFilter(small_config).run(alone)]
    prechecked = list(DecontaminationPrecheck(small_config).run(documents()))
    assert all(PRECHECK_KEY in doc.metadata for doc in prechecked)
    kept_prechecked = [doc.id for doc in DecontaminationFilter(small_config).run(prechecked)]
    assert kept_prechecked == kept_alone and len(kept_alone) < len(texts)
    assert [doc.metadata.get("contamination") for doc in prechecked] == [
        doc.metadata.get("contamination") for doc in alone
    ]
    assert not any(PRECHECK_KEY in doc.metadata for doc in prechecked)

    # a precheck against another index is not trusted: the filter looks the document up itself
    stale = documents()
    for doc in stale:
        doc.metadata[PRECHECK_KEY] = {"index": "another-index", "match": None}
    assert [doc.id for doc in DecontaminationFilter(small_config).run(stale)] == kept_alone


# --------------------------------------------------------------------------------------------------------------------
# Small templated files: candidates bounded as standard MinHash bounds them, side by side with datasketch
# --------------------------------------------------------------------------------------------------------------------

FIELDS = ["user", "order", "item", "price", "name", "email", "status", "created"]
OTHER_FIELDS = ["updated", "owner", "token", "count", "total", "label", "color", "size", "region", "tag"]
TYPES = ["int", "str", "float", "bool", "list[str]", "dict[str, int]", "datetime", "Optional[str]"]


def templated_model_files(count: int = 600, copies: int = 40, seed: int = 0) -> list[str]:
    """Generated API types (a family of small files, < 224 shingles, the case that lined up one-permutation MinHash
    bins), plus ``copies`` near copies of some of them (a comment added): real near duplicates to find."""
    rng = np.random.RandomState(seed)
    words = FIELDS + OTHER_FIELDS
    texts = []
    for _ in range(count):
        fields = list(FIELDS)
        for _ in range(rng.randint(2, 6)):
            fields[rng.randint(8)] = OTHER_FIELDS[rng.randint(len(OTHER_FIELDS))]
        name = "".join(word.capitalize() for word in rng.choice(words, 2, replace=False))
        body = "\n".join(f"    {field}: {TYPES[words.index(field) % len(TYPES)]}" for field in fields)
        texts.append(f"from pydantic import BaseModel\n\n\nclass {name}Model(BaseModel):\n{body}\n")
    texts += [texts[i] + "    # generated\n" for i in range(0, copies * 7, 7)]
    return texts


def candidate_pairs(signature_sets: list[list[np.ndarray]], bands: int, rows: int) -> set[tuple[int, int]]:
    """Distinct document pairs that share a band signature (the LSH candidates)."""
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    for doc, signatures in enumerate(signature_sets):
        for signature in signatures:
            for band in range(bands):
                buckets[(band, signature[band * rows : (band + 1) * rows].tobytes())].append(doc)
    pairs = set()
    for members in buckets.values():
        for i, a in enumerate(members):
            pairs.update((min(a, b), max(a, b)) for b in members[i + 1 :] if a != b)
    return pairs


def test_small_file_candidates_are_bounded_like_datasketch():
    from datasketch import MinHash, MinHashLSH

    config = DedupConfig()
    texts = templated_model_files()
    shingles = [set(ngram_hashes(normalized_token_hashes(text), config.n_grams).tolist()) for text in texts]
    assert max(map(len, shingles)) < config.standard_minhash_below

    ours = candidate_pairs(
        MinhashSignatureHasher(config).signature_sets([normalized_token_hashes(t) for t in texts]),
        config.num_buckets,
        config.hashes_per_bucket,
    )
    lsh = MinHashLSH(num_perm=config.num_buckets * config.hashes_per_bucket, params=(14, 8))
    sketches = []
    for doc, shingle_set in enumerate(shingles):
        sketch = MinHash(num_perm=config.num_buckets * config.hashes_per_bucket, seed=config.seed)
        sketch.update_batch([value.to_bytes(8, "little") for value in shingle_set])
        lsh.insert(doc, sketch)
        sketches.append(sketch)
    theirs = {(min(a, b), max(a, b)) for a, sketch in enumerate(sketches) for b in lsh.query(sketch) if a != b}

    def jaccard(pair):
        a, b = shingles[pair[0]], shingles[pair[1]]
        return len(a & b) / len(a | b)

    near = {pair for pair in itertools.combinations(range(len(texts)), 2) if jaccard(pair) >= 0.85}
    assert len(near) >= 40
    assert len(near & ours) >= 0.95 * len(near) and len(near & theirs) >= 0.95 * len(near)  # the same recall
    # false candidates (Jaccard < 0.5): as many as standard MinHash gives by theory, and as datasketch finds
    false_ours = sum(jaccard(pair) < 0.5 for pair in ours)
    false_theirs = sum(jaccard(pair) < 0.5 for pair in theirs)
    expected = sum(
        1 - (1 - jaccard(pair) ** 8) ** 14
        for pair in itertools.combinations(range(len(texts)), 2)
        if 0.2 < jaccard(pair) < 0.5  # below 0.2 the probability is < 3e-5 per pair
    )
    assert false_ours <= 2 * expected + 10, (false_ours, expected)
    assert false_ours <= 2 * false_theirs + 10, (false_ours, false_theirs)


def test_files_near_the_standard_minhash_boundary_meet_their_copies():
    """A small file (standard MinHash) and its larger near copy (one-permutation MinHash) still share a scheme: the
    files just above the boundary carry both signatures."""
    config = DedupConfig()
    hasher = MinhashSignatureHasher(config)
    lines = [f"    value_{i} = compute_{i}(argument_{i}, {i})" for i in range(60)]
    small = "def build(argument):\n" + "\n".join(lines[:50]) + "\n"
    larger = "def build(argument):\n" + "\n".join(lines[:58]) + "\n"
    small_count = len(ngram_hashes(normalized_token_hashes(small), 5))
    larger_count = len(ngram_hashes(normalized_token_hashes(larger), 5))
    assert small_count < config.standard_minhash_below <= larger_count < hasher.both_below
    sets = hasher.signature_sets([normalized_token_hashes(small), normalized_token_hashes(larger)])
    assert len(sets[0]) == 1 and len(sets[1]) == 2
    assert candidate_pairs(sets, config.num_buckets, config.hashes_per_bucket) == {(0, 1)}

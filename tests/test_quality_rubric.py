"""Quality filtering, the fast parts: rubric prompt and truncation, answer parsing, the stand-in's rule, sampling,
and the histogram threshold. No models, no servers."""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

import pytest
from datatrove.data import Document

from datatrove_pipelines.openai_api import api_root
from datatrove_pipelines.quality.annotate import StratifiedSample
from datatrove_pipelines.quality.distribution import ScoreHistogram, is_below, round_score
from datatrove_pipelines.quality.rubric import (
    build_prompt,
    expected_rating,
    extract_file,
    parse_rating,
    prompt_parts,
    truncate_content,
)
from datatrove_pipelines.quality.stand_in_oracle import stand_in_answer, stand_in_rating

STDLIB = Path(sysconfig.get_paths()["stdlib"])


# --------------------------------------------------------------------------------------------------------------------
# The prompt
# --------------------------------------------------------------------------------------------------------------------


def test_prompt_states_zero_policy_first_and_answer_format_last():
    code = (STDLIB / "colorsys.py").read_text()
    prompt = build_prompt("Python", code)
    assert "Language: Python" in prompt
    assert code in prompt
    zero, readability = prompt.index("zero-score"), prompt.index("Readability")
    assert zero < readability < prompt.index(code)
    assert prompt.rstrip().endswith("integer from 0 to 10.")
    assert "Rating: [[X]]" in prompt[prompt.index(code) + len(code) :]


def test_long_files_are_cut_at_a_line_break_and_the_prompt_says_so():
    code = (STDLIB / "argparse.py").read_text()
    shown, truncated = truncate_content(code, 1000)
    assert truncated and len(shown) <= 1000 and shown.endswith("\n") and code.startswith(shown)
    assert truncate_content("short\n", 1000) == ("short\n", False)
    parts = prompt_parts("Python", code, 1000)
    assert parts.content == shown
    total_lines = code.count("\n")
    assert f"only its first {shown.count(chr(10))} of {total_lines} lines are shown" in parts.prefix
    # a single over-long line is cut hard at the limit
    assert truncate_content("x" * 50, 10) == ("x" * 10, True)


def test_fence_is_longer_than_any_backtick_run_and_the_file_round_trips():
    markdown = "# Title\n\n````python\nprint('```')\n````\n"
    prompt = build_prompt("Markdown", markdown)
    assert "\n`````\n" in prompt
    assert extract_file(prompt) == ("Markdown", markdown)
    truncated_prompt = build_prompt("Python", (STDLIB / "argparse.py").read_text(), 2000)
    language, content = extract_file(truncated_prompt)
    assert language == "Python" and len(content) <= 2000
    assert extract_file("rate this please") is None


# --------------------------------------------------------------------------------------------------------------------
# Parsing answers
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "rating", "clamped"),
    [
        ("Clear code.\nRating: [[7]]", 7, False),
        ("Some say [[2]] but I disagree.\nRating: [[8]]", 8, False),  # the last one wins
        ("Rating: [[ 9 ]]", 9, False),
        ("Rating: [[6/10]]", 6, False),
        ("Rating: [[7.5]]", 8, False),  # rounded half up
        ("Rating: [[12]]", 10, True),
        ("Rating: [[-3]]", 0, True),
        ("Generated code, zero policy.\nRating: [[0]]", 0, False),
    ],
)
def test_parse_rating_takes_the_last_bracketed_number(answer, rating, clamped):
    parsed = parse_rating(answer)
    assert (parsed.rating, parsed.clamped, parsed.malformed) == (rating, clamped, False)


@pytest.mark.parametrize(
    ("answer", "finish_reason", "error"),
    [
        ("Rating: 7", "stop", "no_rating"),
        ("The format is Rating: [[X]]", "stop", "no_rating"),
        ("This file is well documented and the functions are", "length", "truncated"),
        ("", "stop", "empty_response"),
        (None, "stop", "empty_response"),
    ],
)
def test_malformed_answers_are_never_given_a_score(answer, finish_reason, error):
    parsed = parse_rating(answer, finish_reason)
    assert parsed.malformed and parsed.rating is None and parsed.error == error


def test_expected_rating_is_the_probability_weighted_mean():
    assert expected_rating([0.0] * 10 + [1.0]) == 10.0
    assert expected_rating([1.0] + [0.0] * 10) == 0.0
    assert expected_rating([0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5]) == 5.0
    with pytest.raises(ValueError):
        expected_rating([1.0, 0.0])


# --------------------------------------------------------------------------------------------------------------------
# The stand-in oracle's rule
# --------------------------------------------------------------------------------------------------------------------


def test_stand_in_rule_zeroes_data_and_generated_files_and_rewards_documentation():
    data_file = "TABLE = [\n" + "".join(f"    ({i}, 'x{i}', 0x{i:02x}),\n" for i in range(40)) + "]\n"
    assert stand_in_rating(data_file) == 0
    assert stand_in_rating("# Auto-generated by tool.py, do not edit\nX = compute()\n") == 0
    documented = '"""A module."""\n\n\ndef f(x):\n    """Double x."""\n    # plain arithmetic\n    return 2 * x\n'
    bare = "def f(x):\n    y = x\n    z = y\n    return z + x\n"
    assert stand_in_rating(documented) > stand_in_rating(bare) >= 1
    assert stand_in_rating((STDLIB / "encodings" / "cp1252.py").read_text()) == 0  # a decoding table


def test_every_stand_in_answer_parses_to_what_it_means():
    """The stand-in's misbehaviours (decoy [[X]], out-of-range, missing brackets) against the real parser."""
    files = sorted(STDLIB.glob("*.py"))[:120]
    kinds = set()
    for path in files:
        answer = stand_in_answer("Python", path.read_text(errors="replace"), malformed_every=5)
        parsed = parse_rating(answer.text)
        assert parsed.rating == answer.expected_rating, path.name
        kinds.add("malformed" if parsed.malformed else "clamped" if parsed.clamped else "ok")
    assert kinds == {"malformed", "clamped", "ok"}


# --------------------------------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------------------------------


def _documents() -> list[Document]:
    docs = [
        Document(text=path.read_text(errors="replace"), id=f"cpython/{path.name}", metadata={"language": "Python"})
        for path in sorted(STDLIB.glob("*.py"))[:60]
    ]
    docs += [Document(text=f"echo {i}\n", id=f"sh/{i}.sh", metadata={"language": "Shell"}) for i in range(3)]
    docs.append(Document(text="   \n", id="empty/a.py", metadata={"language": "Python"}))
    return docs


def _sample(docs: list[Document], per_language: int, seed: int, world_size: int = 1):
    step = StratifiedSample(per_language, seed=seed)
    sampled = list(step.run(iter(docs), rank=0, world_size=world_size))
    return sampled, step.stats


def test_stratified_sample_is_seeded_per_language_and_independent_of_input_order():
    docs = _documents()
    sampled, stats = _sample(docs, per_language=10, seed=3)
    by_language = {}
    for doc in sampled:
        by_language.setdefault(doc.metadata["language"], []).append(doc.id)
    assert {k: len(v) for k, v in by_language.items()} == {"Python": 10, "Shell": 3}
    assert "empty/a.py" not in by_language["Python"]

    shuffled = docs[:]
    random.Random(0).shuffle(shuffled)
    assert [d.id for d in _sample(shuffled, 10, 3)[0]] == [d.id for d in sampled]
    assert {d.id for d in _sample(docs, 10, 4)[0]} != {d.id for d in sampled}

    counters = {key: value.total for key, value in stats.stats.items()}
    assert counters["funnel/sample/docs_in"] == len(docs)
    assert counters["funnel/sample/docs_kept"] == 13
    assert counters["funnel/sample/reason/not_sampled/docs"] == len(docs) - 13 - 1
    assert counters["funnel/sample/reason/empty/docs"] == 1


def test_each_task_takes_its_share_of_the_quota():
    sampled, _ = _sample(_documents(), per_language=10, seed=0, world_size=4)
    assert sum(d.metadata["language"] == "Python" for d in sampled) == 3  # ceil(10 / 4)


def test_base_url_accepts_both_forms():
    assert api_root("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000"
    assert api_root("https://api.example.com") == "https://api.example.com"


# --------------------------------------------------------------------------------------------------------------------
# Histograms and thresholds
# --------------------------------------------------------------------------------------------------------------------


def test_threshold_drops_the_requested_fraction_and_histograms_merge():
    rng = random.Random(0)
    scores = [round_score(rng.uniform(0, 10)) for _ in range(5000)]
    first, second = ScoreHistogram(), ScoreHistogram()
    for i, score in enumerate(scores):
        (first if i % 2 else second).add("Python" if i % 3 else "C", score)
    merged = ScoreHistogram().merge(first).merge(second)
    assert merged.total() == 5000 and merged.total("C") == sum(1 for i in range(5000) if i % 3 == 0)
    threshold = merged.threshold_for_drop_fraction(0.1)
    dropped = sum(is_below(s, threshold) for s in scores)
    assert abs(dropped - 500) <= 5  # within one 0.001-wide bin of the target
    assert merged.fraction_below(threshold) == pytest.approx(dropped / 5000)
    assert merged.threshold_for_drop_fraction(0.0) == 0.0
    assert ScoreHistogram.from_json(merged.to_json()).counts == merged.counts
    with pytest.raises(ValueError):
        ScoreHistogram().threshold_for_drop_fraction(0.1)


def test_ties_are_dropped_together_or_kept_together():
    histogram = ScoreHistogram()
    scores = [1.0] * 30 + [5.0] * 70
    for score in scores:
        histogram.add("Python", score)
    threshold = histogram.threshold_for_drop_fraction(0.1)
    # 10% would split the tied 1.0s: the closest bin edge keeps them all (0 dropped beats 30 dropped)
    assert sum(is_below(s, threshold) for s in scores) == 0
    threshold = histogram.threshold_for_drop_fraction(0.25)
    assert sum(is_below(s, threshold) for s in scores) == 30

"""Website categories from URL/domain rules; thresholds and sampling rates per category select as configured."""

from __future__ import annotations

import os

import pytest
from datatrove.data import Document

from datatrove_pipelines.web.categories import (
    CategoryRules,
    CategorySampleFilter,
    QualityScoreAccount,
    QualityThresholdFilter,
    default_rules,
)

RECIPE = os.path.join(os.path.dirname(__file__), "..", "recipes", "tiny", "web_categories.yaml")


def test_recipe_file_equals_builtin_rules():
    from_file, builtin = CategoryRules.from_yaml(RECIPE), default_rules()
    assert [(c.name, c.threshold, c.sampling_rate, c.domains, c.url_patterns) for c in from_file.categories] == [
        (c.name, c.threshold, c.sampling_rate, c.domains, c.url_patterns) for c in builtin.categories
    ]


@pytest.mark.parametrize(
    ("url", "category"),
    [
        ("https://stackoverflow.com/questions/1/how-to", "forum"),
        ("https://meta.stackexchange.com/a/2", "forum"),
        ("https://numpy.readthedocs.io/en/latest/", "documentation"),
        ("https://docs.python.org/3/library/os.html", "documentation"),
        ("https://docs.rs/serde", "documentation"),
        ("https://www.amazon.com/dp/B00", "ecommerce"),
        ("https://shop.example.com/products/usb-cable", "ecommerce"),
        ("https://www.color-hex.com/color/ff0000", "colour"),
        ("https://github.com/psf/requests", "other"),
        ("https://notamazon.com/x", "other"),  # a domain rule matches the host or its sub-domains only
        (None, "other"),
        ("not a url at all [", "other"),
    ],
)
def test_category_of(url, category):
    assert default_rules().category_of(url) == category


def _scored(url: str, score: int, doc_id: str) -> Document:
    return Document(text="x " * 20, id=doc_id, metadata={"url": url, "rating": score})


def test_thresholds_select_as_configured():
    rules = CategoryRules.from_dict(
        {
            "default": "other",
            "categories": {
                "forum": {"threshold": 2, "domains": ["forum.example"]},
                "shop": {"threshold": 9, "url_patterns": ["/product/"]},
                "other": {"threshold": 5},
            },
        }
    )
    docs = [
        _scored(url, score, f"{url}#{score}")
        for url in ("https://forum.example/t/1", "https://x.example/product/1", "https://blog.example/p")
        for score in range(11)
    ]
    sample, account, threshold = CategorySampleFilter(rules), QualityScoreAccount(), QualityThresholdFilter(rules)
    kept = list(threshold.run(account.run(sample.run(iter(docs)))))
    selected = {(d.metadata["category"], d.metadata["quality_score"]) for d in kept}
    assert selected == {("forum", s) for s in range(2, 11)} | {("shop", 9), ("shop", 10)} | {
        ("other", s) for s in range(5, 11)
    }
    reasons = sorted({d.metadata["filter_reason"] for d in docs if "filter_reason" in d.metadata})
    assert reasons == ["below_threshold:forum", "below_threshold:other", "below_threshold:shop"]


def test_sampling_rates_are_seeded_and_near_the_rate():
    rules = CategoryRules.from_dict(
        {"categories": {"colour": {"sampling_rate": 0.2, "url_patterns": ["colou?r"]}, "other": {}}, "seed": 3}
    )
    docs = [Document(text="t", id=f"page-{i}", metadata={"url": f"https://colour.example/{i}"}) for i in range(4000)]
    docs += [Document(text="t", id=f"other-{i}", metadata={"url": f"https://blog.example/{i}"}) for i in range(500)]
    kept = list(CategorySampleFilter(rules).run(iter(docs)))
    colour = [d for d in kept if d.metadata["category"] == "colour"]
    assert 0.17 < len(colour) / 4000 < 0.23
    assert sum(d.metadata["category"] == "other" for d in kept) == 500
    again = list(
        CategorySampleFilter(rules).run(
            iter(Document(text="t", id=d.id, metadata={"url": d.metadata["url"]}) for d in docs)
        )
    )
    assert [d.id for d in again] == [d.id for d in kept]  # the same pages on every run and task layout
    assert {d.metadata["filter_reason"] for d in docs if "filter_reason" in d.metadata} == {"sampled_out:colour"}


def test_unscored_pages_keep_the_scorer_reason():
    doc = Document(text="t", id="a", metadata={"rating": None, "filter_reason": "malformed:no_rating"})
    assert list(QualityScoreAccount().run(iter([doc]))) == []
    assert doc.metadata["filter_reason"] == "malformed:no_rating"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"categories": {"a": {"threshold": 3}}}, "default category 'other'"),
        ({"categories": {"other": {"threshold": 12}}}, "threshold must be"),
        ({"categories": {"other": {"sampling_rate": 1.5}}}, "sampling_rate must be"),
        ({"categories": {"other": {"treshold": 5}}}, "unknown keys treshold"),
        ({"categories": {"other": {"url_patterns": ["("]}}}, "bad url pattern"),
        ({"categories": {}}, "need a 'categories' mapping"),
        ({"default": "other", "categories": {"other": {}}, "typo": 1}, "unknown keys typo"),
    ],
)
def test_bad_rules_are_clear_errors(data, message):
    with pytest.raises(ValueError, match=message):
        CategoryRules.from_dict(data)


def test_tiny_recipes_parse():
    """recipes/tiny/web.yaml and web_recall.yaml: every key is a flag of its command."""
    from datatrove_pipelines.stage import parse_stage_args
    from datatrove_pipelines.web.__main__ import run_parser, train_recall_parser

    root = os.path.join(os.path.dirname(__file__), "..", "recipes", "tiny")
    run = parse_stage_args(run_parser(), ["--config", os.path.join(root, "web.yaml")])
    assert run.categories == "recipes/tiny/web_categories.yaml" and run.min_words == 10 and run.tasks == 2
    assert run.recall_model == "outputs/tiny/web_recall" and run.input == ["outputs/tiny/web_pages"]
    recall = parse_stage_args(train_recall_parser(), ["--config", os.path.join(root, "web_recall.yaml")])
    assert recall.target_recall == 0.99 and recall.validation_fraction == 0.3 and recall.dim == 100
    assert recall.output == "outputs/tiny/web_recall"

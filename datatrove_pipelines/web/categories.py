"""Website categories from URL / domain rules, with a quality threshold and a sampling rate each (paper §3).

Seed-Coder found the LLM quality score biased by site type: e-commerce, colour and documentation sites were
over-scored, forums under-scored. So each page gets a category, and each category its own threshold (the lowest
0–10 score kept) and sampling rate (the share of its pages kept). The rules are data, in YAML::

    default: other                      # the category of pages no rule matches (must be defined below)
    categories:                         # checked in this order; the first match wins
      forum:
        threshold: 3
        sampling_rate: 1.0
        domains: [stackoverflow.com, stackexchange.com]   # the host or any sub-domain of it
        url_patterns: ['/questions/', '/forum', '/thread']  # regular expressions searched in the URL
      other:
        threshold: 5

Sampling is decided before the LLM is asked (a seeded hash of the page id; independent of the score, so the kept
set is the same as sampling after scoring, and the sampled-out pages cost no request): ``category_sample``
excludes ``sampled_out:<category>``, the threshold step ``below_threshold:<category>``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

from datatrove_pipelines.funnel import REASON_KEY, FunnelFilter


@dataclass
class Category:
    name: str
    threshold: int = 5
    sampling_rate: float = 1.0
    domains: list[str] = field(default_factory=list)
    url_patterns: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= 11:
            raise ValueError(
                f"category {self.name}: threshold must be 0..10 (11 drops every page), not {self.threshold}"
            )
        if not 0.0 <= self.sampling_rate <= 1.0:
            raise ValueError(f"category {self.name}: sampling_rate must be in [0, 1], not {self.sampling_rate}")
        self.domains = [d.lower().lstrip(".") for d in self.domains]
        try:
            self._patterns = [re.compile(p, re.I) for p in self.url_patterns]
        except re.error as error:
            raise ValueError(f"category {self.name}: bad url pattern: {error}") from None

    def matches(self, host: str, url: str) -> bool:
        if any(host == d or host.endswith("." + d) for d in self.domains):
            return True
        return any(p.search(url) for p in self._patterns)


@dataclass
class CategoryRules:
    categories: list[Category]
    default: str = "other"
    seed: int = 0

    def __post_init__(self) -> None:
        names = [c.name for c in self.categories]
        if len(set(names)) != len(names):
            raise ValueError("category names must be unique")
        if self.default not in names:
            raise ValueError(f"the default category {self.default!r} is not defined under categories")
        self._by_name = {c.name: c for c in self.categories}

    @classmethod
    def from_dict(cls, data: dict) -> CategoryRules:
        if not isinstance(data, dict) or not isinstance(data.get("categories"), dict) or not data["categories"]:
            raise ValueError("category rules need a 'categories' mapping of name -> settings")
        known = {"threshold", "sampling_rate", "domains", "url_patterns"}
        categories = []
        for name, settings in data["categories"].items():
            settings = settings or {}
            unknown = sorted(set(settings) - known)
            if unknown:
                raise ValueError(f"category {name}: unknown keys {', '.join(unknown)}")
            categories.append(Category(name=str(name), **settings))
        extra = sorted(set(data) - {"categories", "default", "seed"})
        if extra:
            raise ValueError(f"category rules: unknown keys {', '.join(extra)}")
        return cls(categories, default=str(data.get("default", "other")), seed=int(data.get("seed", 0)))

    @classmethod
    def from_yaml(cls, path: str) -> CategoryRules:
        from datatrove_pipelines.yaml_files import read_yaml

        return cls.from_dict(read_yaml(path))

    def __getitem__(self, name: str) -> Category:
        return self._by_name[name]

    def category_of(self, url: str | None) -> str:
        url = url or ""
        try:
            host = (urlsplit(url).hostname or "").lower()
        except ValueError:
            host = ""
        for category in self.categories:
            if category.matches(host, url):
                return category.name
        return self.default

    def sampled(self, doc_id: str, category: str) -> bool:
        rate = self[category].sampling_rate
        if rate >= 1.0:
            return True
        digest = hashlib.blake2b(f"{self.seed}:{doc_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < rate


def default_rules() -> CategoryRules:
    """Built-in rules (recipes/tiny/web_categories.yaml is the same, as a file to edit)."""
    return CategoryRules.from_dict(
        {
            "default": "other",
            "categories": {
                "forum": {
                    "threshold": 3,
                    "domains": ["stackoverflow.com", "stackexchange.com", "discourse.org", "reddit.com"],
                    "url_patterns": [r"/questions?/", r"/forums?/", r"/threads?/", r"/t/\d"],
                },
                "documentation": {
                    "threshold": 6,
                    "domains": ["readthedocs.io", "docs.python.org", "developer.mozilla.org"],
                    "url_patterns": [r"^https?://docs?\.", r"/docs?/", r"/api/", r"/reference/", r"/manual/"],
                },
                "ecommerce": {
                    "threshold": 8,
                    "sampling_rate": 0.5,
                    "domains": ["amazon.com", "ebay.com", "aliexpress.com"],
                    "url_patterns": [r"/products?/", r"/shop/", r"/cart\b", r"/item/"],
                },
                "colour": {
                    "threshold": 8,
                    "sampling_rate": 0.2,
                    "url_patterns": [r"colou?r", r"palette", r"/hex/"],
                },
                "other": {"threshold": 5},
            },
        }
    )


class CategorySampleFilter(FunnelFilter):
    """Names each page's category (``metadata.category``) and keeps its category's sampling rate of them."""

    def __init__(self, rules: CategoryRules, exclusion_writer: DiskWriter | None = None):
        super().__init__("category_sample", exclusion_writer)
        self.rules = rules

    def check(self, doc: Document) -> str | None:
        category = self.rules.category_of(doc.metadata.get("url"))
        doc.metadata["category"] = category
        return None if self.rules.sampled(str(doc.id), category) else f"sampled_out:{category}"


class QualityScoreAccount(FunnelFilter):
    """Accounts for the LLM scoring run: pages it rated go on (``metadata.quality_score``), pages without an answer
    are excluded with the scorer's reason (``malformed:...``, ``request_rejected``)."""

    def __init__(self, exclusion_writer: DiskWriter | None = None):
        super().__init__("quality_score", exclusion_writer)

    def check(self, doc: Document) -> str | None:
        rating = doc.metadata.pop("rating", None)
        if rating is None:
            return str(doc.metadata.pop(REASON_KEY, None) or "unscored")
        doc.metadata["quality_score"] = int(rating)
        return None


class QualityThresholdFilter(FunnelFilter):
    """Keeps pages scored at or above their category's threshold; the rest: ``below_threshold:<category>``."""

    def __init__(self, rules: CategoryRules, exclusion_writer: DiskWriter | None = None):
        super().__init__("quality_threshold", exclusion_writer)
        self.rules = rules

    def check(self, doc: Document) -> str | None:
        category = doc.metadata.get("category") or self.rules.category_of(doc.metadata.get("url"))
        if int(doc.metadata["quality_score"]) >= self.rules[category].threshold:
            return None
        return f"below_threshold:{category}"

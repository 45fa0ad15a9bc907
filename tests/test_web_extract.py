"""Extraction keeps code verbatim (side by side with datatrove's plain Trafilatura), and the code-markup rule."""

from __future__ import annotations

import html
import inspect
import textwrap

import pytest
from datatrove.data import Document
from datatrove.pipeline.extractors import Trafilatura

from datatrove_pipelines.web.extract import CodeKeepingExtractor, ExtractionConfig
from datatrove_pipelines.web.sample_pages import VARIANTS, _document, readme_pages, render_markdown, stdlib_pages


def _real_code() -> str:
    """Real indented code with blank lines: a stdlib function's source (textwrap.dedent)."""
    source = inspect.getsource(textwrap.dedent)
    assert "\n    " in source and "\n\n" in source
    return source.rstrip("\n")


def _page(code: str, wrapper: str = '<pre><code class="language-python">{}</code></pre>') -> str:
    prose = (
        "<p>The standard library removes common leading whitespace from every line of a text with the function "
        "shown below; it is handy for triple-quoted strings in source code.</p>"
    )
    return (
        "<html><head><title>dedent</title></head><body><nav><a href='/'>Home</a></nav><article><h1>textwrap</h1>"
        f"{prose}\n{wrapper.format(html.escape(code))}\n<p>After the listing the explanation goes on with a few more "
        "sentences about how the regular expressions find the margin.</p></article></body></html>"
    )


def test_code_blocks_survive_verbatim_where_plain_trafilatura_loses_indentation():
    code = _real_code()
    page = _page(code)
    ours, counts = CodeKeepingExtractor().extract_page(page)
    assert code in ours  # every space, tab and blank line
    assert counts["code_blocks"] == 1
    plain = Trafilatura(favour_precision=True).extract(page)
    assert "dedent" in plain and code not in plain  # why our own extractor exists: datatrove's flattens the block
    assert "\n    " not in plain[plain.find("def dedent") :]
    for sentence in ("The standard library removes common leading whitespace", "how the regular expressions find"):
        assert sentence in ours and sentence in plain  # the prose around the block is trafilatura's


@pytest.mark.parametrize(
    "wrapper",
    [
        "<pre>\n{}</pre>",  # the line break after <pre> is not content (HTML parsing rule)
        '<div class="highlight"><pre><span></span>{}</pre></div>',
        "<code>{}</code>",  # a block <code> (it has line breaks) outside <pre>
        '<table><tr><td class="code"><pre>{}</pre></td></tr></table>',
    ],
)
def test_code_block_markups(wrapper):
    code = _real_code()
    text, counts = CodeKeepingExtractor().extract_page(_page(code, wrapper))
    assert code in text
    assert counts["code_blocks"] == 1


def test_br_and_tabs_inside_pre():
    page = _page("", "<pre>for i in range(3):<br>\tprint(i)<br><br>done()</pre>")
    text, _ = CodeKeepingExtractor().extract_page(page)
    assert "for i in range(3):\n\tprint(i)\n\ndone()" in text


def test_inline_code_counts_and_rule_threshold():
    body = "<p>Call <code>load()</code>, then <code>save()</code> and finally <code>close()</code> when done.</p>" * 3
    page = f"<html><body><article><h1>API</h1>{body}<p>{'More text about the API. ' * 10}</p></article></body></html>"
    extractor = CodeKeepingExtractor(ExtractionConfig(min_inline_code=3, sandbox=False))
    docs = list(extractor.run([Document(text=page, id="a", metadata={"format": "html"})]))
    assert docs[0].metadata["inline_code"] == 9 and docs[0].metadata["code_blocks"] == 0
    assert docs[0].metadata["code_markup"] is True
    strict = CodeKeepingExtractor(ExtractionConfig(min_inline_code=10, sandbox=False))
    docs = list(strict.run([Document(text=page, id="a", metadata={"format": "html"})]))
    assert docs[0].metadata["code_markup"] is False


def test_rule_fires_on_real_readmes_with_markup_and_not_without():
    """Installed packages' READMEs rendered with their code blocks, without markup, and without code."""
    pages = [p for p in readme_pages() if p.kind == "readme-markup" and p.code_blocks][:15]
    assert len(pages) >= 10
    extractor = CodeKeepingExtractor()
    kept_blocks = 0
    for page in pages:
        text, counts = extractor.extract_page(page.html)
        assert counts["code_blocks"] >= 1
        kept_blocks += sum(code in text for code in page.code_blocks)
    assert kept_blocks >= 0.95 * sum(len(p.code_blocks) for p in pages)
    for page in [p for p in readme_pages() if p.kind in ("readme-plain", "readme-prose")][:15]:
        _, counts = extractor.extract_page(page.html)
        assert counts["code_blocks"] == 0 and counts["inline_code"] == 0


def test_markdown_variants_of_one_readme():
    words = "Some words about the tool, why it exists and how to install it on a fresh machine. " * 3
    source = f"# Tool\n\n{words}\n\n```python\ndef main():\n    return 0\n```\n\n{words}\n"
    (markup, codes), (plain, plain_codes), (prose, prose_codes) = (
        (_document("tool", body), blocks) for body, blocks in (render_markdown(source, v) for v in VARIANTS)
    )
    extractor = CodeKeepingExtractor()
    assert codes == plain_codes == ["def main():\n    return 0"] and prose_codes == []
    assert extractor.extract_page(markup)[1]["code_blocks"] == 1
    assert extractor.extract_page(plain)[1]["code_blocks"] == 0
    assert "def main():" in extractor.extract_page(plain)[0]
    assert "def main" not in extractor.extract_page(prose)[0]


def test_stdlib_doctest_examples_kept():
    pages = [p for p in stdlib_pages() if p.code_blocks][:5]
    extractor = CodeKeepingExtractor()
    for page in pages:
        text, counts = extractor.extract_page(page.html)
        assert counts["code_blocks"] >= 1
        assert any(code in text for code in page.code_blocks)


def test_failures_are_excluded_with_reasons_not_dropped(tmp_path):
    """datatrove's BaseExtractor drops failed pages silently; the funnel step excludes them with a reason."""
    docs = [
        Document(text="<html><body>   </body></html>", id="blank", metadata={"format": "html"}),
        Document(text="plain WET text that is already extracted\nwith lines", id="wet", metadata={"format": "text"}),
        Document(text=_page(_real_code()), id="good", metadata={"format": "html"}),
    ]
    extractor = CodeKeepingExtractor(ExtractionConfig(timeout=10))
    kept = list(extractor.run(docs))
    assert [d.id for d in kept] == ["wet", "good"]
    assert docs[0].metadata["filter_reason"] == "empty_extraction"
    assert (
        kept[0].text == "plain WET text that is already extracted\nwith lines" and not kept[0].metadata["code_markup"]
    )
    assert kept[1].metadata["code_markup"] and len(kept[1].metadata["sha256"]) == 64


def test_timeout_is_a_reason():
    huge = "<html><body>" + "<div><p>word " * 20000 + "</p></div>" * 20000 + "</body></html>"
    extractor = CodeKeepingExtractor(ExtractionConfig(timeout=1e-4))
    doc = Document(text=huge, id="slow", metadata={"format": "html"})
    assert list(extractor.run([doc])) == []
    assert doc.metadata["filter_reason"] in ("extraction_timeout", "extraction_crashed")

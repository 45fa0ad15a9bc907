"""HTML to text that keeps code verbatim, and the code-markup rule (``metadata.code_markup``).

Why our own ``BaseExtractor``: datatrove's extractors do not keep code. ``Trafilatura`` (trafilatura 1.11, the one
installed with datatrove 0.10.1) collapses the whitespace of ``<pre>`` blocks: indentation and blank lines are lost
(``def f(x):\\n    return 1`` comes out as ``def f(x):\\nreturn 1``; tests/test_web_extract.py shows it side by side),
and no trafilatura option (``include_formatting``, markdown output) keeps it. ``ReadabilityInscriptis`` needs
readability-lxml, which is not installed. So :class:`CodeKeepingExtractor` wraps datatrove's ``Trafilatura``:

1. parse the page once (trafilatura's ``load_html``);
2. take every code block out verbatim: ``<pre>`` elements (outermost) and block ``<code>`` elements (with a line
   break) outside them; ``<br>`` inside them is a line break; the line break right after ``<pre>`` is dropped, as
   HTML parsers do; each block is replaced by a ``<pre>`` holding a unique placeholder word;
3. run trafilatura's main-content extraction on the same tree (no second parse), with datatrove's settings;
4. put each block back where its placeholder survived. Blocks trafilatura judged boilerplate (in a sidebar, a footer)
   stay out, as any text there would.

When trafilatura finds no main content but the page has code blocks (a bare listing), the text is the blocks
themselves. The rule: a page has explicit code markup when at least one code block survived into the text, or it has
``min_inline_code`` inline ``<code>`` elements (default 3). Counts go to ``metadata.code_blocks`` /
``metadata.inline_code``.

The step is a funnel step: a page whose extraction fails, times out or is empty is excluded with that reason
(datatrove's ``BaseExtractor.run`` drops them without a trace). WET ``conversion`` records are text already and pass
through unchanged (their markup is gone: ``code_markup`` is false, the recall classifier decides).
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.extractors.base import ExtractorSandbox
from datatrove.pipeline.extractors.trafilatura import Trafilatura
from datatrove.pipeline.writers.disk_base import DiskWriter

from datatrove_pipelines.funnel import FunnelMixin
from datatrove_pipelines.web.readers import text_sha256

PLACEHOLDER_PREFIX = "WEBCODEBLOCK"


@dataclass
class ExtractionConfig:
    """How pages are turned into text; ``favour_precision`` / ``deduplicate`` are datatrove's Trafilatura options."""

    favour_precision: bool = True
    deduplicate: bool = (
        False  # trafilatura's cross-page cache: order-dependent, drops repeated segments; dedup comes later
    )
    timeout: float = 5.0  # seconds per page, in datatrove's extraction sandbox (a separate process)
    min_inline_code: int = 3  # inline <code> elements that alone make the rule fire
    sandbox: bool = True  # False: extract in-process (no timeout; for debugging and the speed comparison)


def _code_text(element) -> str:
    """The verbatim text of a code element: all its text, ``<br>`` as a line break, no leading break."""
    for br in element.iter("br"):
        br.tail = "\n" + (br.tail or "")
    text = element.text_content()
    if text.startswith("\r\n"):
        text = text[2:]
    elif text.startswith("\n"):
        text = text[1:]
    return text.rstrip("\n\r")


def _is_block_code(element) -> bool:
    return "\n" in element.text_content().strip("\n") or element.find(".//br") is not None


def protect_code_blocks(tree, nonce: str) -> tuple[dict[str, str], int]:
    """Replace the code blocks of ``tree`` by placeholders; returns ({placeholder: code}, inline code count)."""
    blocks: dict[str, str] = {}
    candidates = [
        element
        for element in tree.iter("pre", "code")
        if not any(
            parent.tag == "pre" or (parent.tag == "code" and _is_block_code(parent))
            for parent in element.iterancestors()
        )
    ]
    inline = 0
    for element in candidates:
        if element.tag == "code" and not _is_block_code(element):
            inline += 1
            continue
        code = _code_text(element)
        if not code.strip():
            continue
        placeholder = f"{PLACEHOLDER_PREFIX}{len(blocks)}X{nonce}"
        blocks[placeholder] = code
        replacement = element.makeelement("pre", {})
        replacement.text = placeholder
        replacement.tail = element.tail
        element.getparent().replace(element, replacement)
    return blocks, inline


class CodeKeepingExtractor(FunnelMixin, Trafilatura):
    """datatrove's Trafilatura extractor with code blocks kept verbatim; see the module docstring."""

    name = "⛏ Trafilatura (code kept)"
    funnel_step = "extraction"

    def __init__(self, config: ExtractionConfig | None = None, exclusion_writer: DiskWriter | None = None):
        self.config = config or ExtractionConfig()
        super().__init__(
            favour_precision=self.config.favour_precision,
            timeout=self.config.timeout,
            deduplicate=self.config.deduplicate,
        )
        self.exclusion_writer = exclusion_writer

    def extract(self, text: str) -> str:
        """The text of an HTML page (the plain ``BaseExtractor`` contract)."""
        return self.extract_page(text)[0]

    def extract_page(self, html: str) -> tuple[str, dict]:
        """(text, markup counts) of one HTML page."""
        from trafilatura import extract
        from trafilatura.utils import load_html

        tree = load_html(html)
        if tree is None:
            return "", {"code_blocks": 0, "inline_code": 0}
        nonce = secrets.token_hex(4)
        blocks, inline = protect_code_blocks(tree, nonce)
        text = extract(
            tree,
            favor_precision=self.favour_precision,
            include_comments=False,
            deduplicate=self.deduplicate,
            **self.kwargs,
        )
        kept = 0
        if text:
            for placeholder, code in blocks.items():
                if placeholder in text:
                    text = text.replace(placeholder, code, 1)
                    kept += 1
        elif blocks:
            text = "\n\n".join(blocks.values())
            kept = len(blocks)
        return text or "", {"code_blocks": kept, "inline_code": inline}

    def _extract_or_reason(self, sandbox, html: str) -> tuple[str, dict] | str:
        try:
            if sandbox is None:
                return self.extract_page(html)
            return sandbox.process_document(html, self.extract_page)
        except TimeoutError:
            return "extraction_timeout"
        except EOFError:
            return "extraction_crashed"
        except Exception as error:
            return f"extraction_error:{type(error).__name__}"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        writer_context = self.exclusion_writer if self.exclusion_writer else contextlib.nullcontext()
        sandbox_context = (
            ExtractorSandbox(timeout=self.timeout, warmup_text="") if self.config.sandbox else contextlib.nullcontext()
        )
        with writer_context as writer, sandbox_context as sandbox:
            for doc in data or ():
                self.funnel_in(doc)
                with self.track_time():
                    if doc.metadata.get("format") == "text":  # a WET conversion: text already
                        result: tuple[str, dict] | str = (doc.text, {"code_blocks": 0, "inline_code": 0})
                    else:
                        result = self._extract_or_reason(sandbox, doc.text)
                if isinstance(result, str):
                    self.funnel_exclude(doc, result, writer, rank)
                    continue
                text, counts = result
                if not text.strip():
                    self.funnel_exclude(doc, "empty_extraction", writer, rank)
                    continue
                doc.text = text
                doc.metadata.update(counts)
                doc.metadata["code_markup"] = counts["code_blocks"] > 0 or (
                    counts["inline_code"] >= self.config.min_inline_code
                )
                doc.metadata["size"] = len(text.encode("utf-8", errors="surrogatepass"))
                doc.metadata["sha256"] = text_sha256(text)
                doc.metadata.pop("format", None)
                self.stat_update("code_markup" if doc.metadata["code_markup"] else "no_code_markup")
                self.funnel_keep(doc)
                yield doc

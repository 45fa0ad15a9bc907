"""Web pages built from real documents present in any Python environment, written as WARC files.

For tests, the benchmark and the tiny recipe (no network, no crawl needed): installed packages' READMEs (their
``METADATA`` long descriptions) rendered to HTML with markdown-it-py (reStructuredText and plain text with a minimal
renderer of our own), licence files, and standard-library docstrings. Each package README becomes one page in one
of three variants, chosen by a hash of the package name (so a package never appears twice):

* ``markup``: code blocks as ``<pre><code>`` (the code-markup rule fires);
* ``plain``: the same code as ordinary paragraphs with ``<br>`` line breaks (code-related, no markup: the recall
  classifier's job);
* ``prose``: code blocks removed (mostly not code-related).

Licences are ``<p>`` paragraphs; stdlib module pages list their functions with docstrings (``>>>`` examples in
``<pre>``). URLs mimic the sites the category rules know (``*.readthedocs.io``, ``github.com``, ``docs.python.org``,
``opensource.org``). ``python -m datatrove_pipelines.web sample-warc --output DIR`` writes them.
"""

from __future__ import annotations

import functools
import hashlib
import html
import importlib
import importlib.metadata
import inspect
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

VARIANTS = ("markup", "plain", "prose")
# documented, side-effect-free modules present in every CPython 3.10+ (a fixed list: same pages everywhere)
STDLIB_MODULES = (
    "argparse ast base64 bisect calendar colorsys configparser contextlib copy csv dataclasses datetime difflib "
    "dis doctest email.utils enum filecmp fileinput fnmatch fractions ftplib functools getopt gettext glob gzip "
    "hashlib heapq hmac html imaplib inspect ipaddress json json.decoder keyword linecache locale logging mailbox "
    "mimetypes netrc ntpath operator optparse os os.path pathlib pickle pickletools pkgutil platform plistlib "
    "poplib posixpath pprint py_compile quopri random re reprlib runpy sched secrets selectors shlex shutil smtplib "
    "socket socketserver statistics string struct subprocess sysconfig tabnanny tarfile tempfile textwrap threading "
    "timeit token tokenize trace traceback types typing unittest.mock urllib.parse urllib.request uuid warnings "
    "wave weakref webbrowser wsgiref.util xml.dom.minidom zipapp zipfile"
).split()
_FENCE = re.compile(r"^(```+|~~~+)[^\n]*\n(.*?)^\1\s*$", re.M | re.S)


@dataclass
class Page:
    url: str
    html: str
    kind: str  # readme-markup | readme-plain | readme-prose | licence | stdlib
    code_blocks: list[str] = field(default_factory=list)  # verbatim code shown in the page
    content_type: str = "text/html; charset=utf-8"
    payload: bytes | None = None  # raw bytes (default: html encoded as UTF-8)
    status: str = "200 OK"

    def body(self) -> bytes:
        return self.payload if self.payload is not None else self.html.encode("utf-8")


def _stable_fraction(name: str, seed: int) -> float:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest(), "big") / 2**64


def _document(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>\n'
        f'<body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>\n<main><article>\n{body}\n'
        f"</article></main>\n<footer>Generated from a local document.</footer></body></html>\n"
    )


def _plain_code_html(code: str) -> str:
    """Code as an ordinary paragraph: lines joined by <br>, indentation as non-breaking spaces (no markup)."""
    lines = [html.escape(line).replace("  ", "&nbsp;&nbsp;") for line in code.split("\n")]
    return "<p>" + "<br>\n".join(lines) + "</p>"


def render_markdown(text: str, variant: str) -> tuple[str, list[str]]:
    """(HTML body, verbatim code blocks) of a Markdown README in ``variant``."""
    from markdown_it import MarkdownIt

    codes = [m.group(2).rstrip("\n") for m in _FENCE.finditer(text)]
    codes = [c for c in codes if c.strip()]
    renderer = MarkdownIt("commonmark", {"html": False})
    body = renderer.render(text)
    if variant == "markup":
        return body, codes
    blocks = re.compile(r"<pre><code[^>]*>(.*?)</code></pre>", re.S)
    if variant == "plain":
        body = blocks.sub(lambda m: _plain_code_html(html.unescape(m.group(1)).rstrip("\n")), body)
    else:
        body, codes = blocks.sub("", body), []
    body = re.sub(r"</?code>", "", body)  # inline code becomes plain text
    return body, codes if variant == "plain" else []


def render_plain_text(text: str, variant: str) -> tuple[str, list[str]]:
    """A minimal renderer for reStructuredText / plain READMEs: paragraphs; an indented block after a ``::`` line
    (a literal block) is code."""
    parts, codes = [], []
    paragraphs = re.split(r"\n\s*\n", text)
    literal_next = False
    for paragraph in paragraphs:
        if not paragraph.strip():
            continue
        indented = all(line.startswith((" ", "\t")) or not line.strip() for line in paragraph.split("\n"))
        if literal_next and indented:
            import textwrap

            code = textwrap.dedent(paragraph).strip("\n")
            codes.append(code)
            if variant == "markup":
                parts.append(f"<pre>{html.escape(code)}</pre>")
            elif variant == "plain":
                parts.append(_plain_code_html(code))
            continue
        literal_next = paragraph.rstrip().endswith("::")
        parts.append(f"<p>{html.escape(paragraph.strip())}</p>")
    return "\n".join(parts), codes if variant != "prose" else []


@functools.lru_cache(maxsize=8)
def readme_pages(seed: int = 0, limit: int | None = None) -> tuple[Page, ...]:
    """One page per installed distribution with a README of more than 200 characters."""
    seen, pages = set(), []
    distributions = sorted(importlib.metadata.distributions(), key=lambda d: (d.metadata.get("Name") or "").lower())
    for distribution in distributions:
        name = (distribution.metadata.get("Name") or "").lower()
        text = distribution.metadata.get_payload() or distribution.metadata.get("Description") or ""
        if not name or name in seen or len(text) < 200:
            continue
        seen.add(name)
        fraction = _stable_fraction(name, seed)
        variant = "markup" if fraction < 0.4 else "plain" if fraction < 0.7 else "prose"
        content_type = (distribution.metadata.get("Description-Content-Type") or "").lower()
        if "markdown" in content_type:
            body, codes = render_markdown(text, variant)
        else:
            body, codes = render_plain_text(text, variant)
        slug = re.sub(r"[^a-z0-9-]", "-", name)
        url = (
            f"https://{slug}.readthedocs.io/en/latest/"
            if fraction * 10 % 1 < 0.5
            else f"https://github.com/{slug}/{slug}/blob/main/README.md"
        )
        pages.append(Page(url, _document(name, body), f"readme-{variant}", codes))
        if limit and len(pages) >= limit:
            break
    return tuple(pages)


@functools.lru_cache(maxsize=8)
def licence_pages(limit: int | None = None) -> tuple[Page, ...]:
    pages, seen = [], set()
    for distribution in sorted(
        importlib.metadata.distributions(), key=lambda d: (d.metadata.get("Name") or "").lower()
    ):
        name = (distribution.metadata.get("Name") or "").lower()
        for file in distribution.files or ():
            if "LICEN" not in file.name.upper() or name in seen:
                continue
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if len(text) < 200:
                continue
            seen.add(name)
            paragraphs = "\n".join(f"<p>{html.escape(p.strip())}</p>" for p in re.split(r"\n\s*\n", text) if p.strip())
            pages.append(
                Page(f"https://opensource.org/licenses/{name}", _document(f"{name} licence", paragraphs), "licence")
            )
            break
        if limit and len(pages) >= limit:
            break
    return tuple(pages)


@functools.lru_cache(maxsize=8)
def stdlib_pages(limit: int | None = None) -> tuple[Page, ...]:
    """A page per standard-library module: its functions' signatures and docstrings."""
    pages = []
    for name in STDLIB_MODULES:
        try:
            module = importlib.import_module(name)
        except Exception:
            continue
        sections, codes = [], []
        for attribute, value in sorted(vars(module).items()):
            if attribute.startswith("_") or not inspect.isfunction(value) or not inspect.getdoc(value):
                continue
            doc = inspect.getdoc(value)
            try:
                signature = f"{attribute}{inspect.signature(value)}"
            except (TypeError, ValueError):
                signature = attribute
            prose, examples = [], []
            for paragraph in re.split(r"\n\s*\n", doc):
                (examples if paragraph.lstrip().startswith(">>>") else prose).append(paragraph)
            section = f"<h2>{html.escape(signature)}</h2>" + "".join(f"<p>{html.escape(p)}</p>" for p in prose)
            for example in examples:
                codes.append(example)
                section += f"<pre>{html.escape(example)}</pre>"
            sections.append(section)
        if len(sections) < 2:
            continue
        body = f"<h1>{name}</h1>\n<p>{html.escape(inspect.getdoc(module) or '')}</p>\n" + "\n".join(sections)
        pages.append(Page(f"https://docs.python.org/3/library/{name}.html", _document(name, body), "stdlib", codes))
        if limit and len(pages) >= limit:
            break
    return tuple(pages)


def write_warc(path: str, pages: Iterable[Page], gzip: bool | None = None) -> int:
    """Write ``pages`` as WARC ``response`` records (gzip per record when the path ends with .gz)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    count = 0
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=path.endswith(".gz") if gzip is None else gzip)
        for page in pages:
            headers = [("Content-Type", page.content_type)] if page.content_type else []
            http_headers = StatusAndHeaders(page.status, headers, protocol="HTTP/1.1")
            record = writer.create_warc_record(
                page.url, "response", payload=io.BytesIO(page.body()), http_headers=http_headers
            )
            writer.write_record(record)
            count += 1
    return count


def bad_pages() -> list[Page]:
    """Careless and adversarial records: non-HTML payloads, wrong and bogus charsets, empty pages, an HTTP error."""
    text = "Café crème: the naïve façade of a résumé, with “quotes” and more than ten words of French-ish text here."
    cp1252 = f"<html><body><p>{text}</p></body></html>".encode("cp1252")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    return [
        Page("https://example.com/logo.png", "", "bad-png", content_type="image/png", payload=png),
        Page(
            "https://example.com/paper.pdf",
            "",
            "bad-pdf",
            content_type="application/pdf",
            payload=b"%PDF-1.4\n" + bytes(range(256)),
        ),
        Page("https://example.com/blob", "", "bad-binary", content_type=None, payload=bytes(range(256)) * 8),
        Page(
            "https://example.com/cp1252", "", "charset-wrong", content_type="text/html; charset=utf-8", payload=cp1252
        ),
        Page(
            "https://example.com/bogus",
            "",
            "charset-bogus",
            content_type="text/html; charset=klingon-8",
            payload=cp1252,
        ),
        Page("https://example.com/empty", "", "empty-payload", payload=b""),
        Page("https://example.com/blank", "<html><body>  </body></html>", "empty-page"),
        Page(
            "https://example.com/missing",
            "<html><body><p>Not found</p></body></html>",
            "http-404",
            status="404 Not Found",
        ),
    ]

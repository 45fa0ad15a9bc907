"""Web pages in: WARC / WET records through datatrove's ``WarcReader``, and plain HTML files, where nothing vanishes.

datatrove's ``WarcReader`` skips, silently, every record it cannot use (a non-HTML payload, bytes no charset decodes)
and stops the whole task on a truncated file. Here every ``response`` / ``conversion`` record becomes a document; the
ones that cannot be used carry ``metadata.page_problem`` and :class:`PageGuard` excludes them with that reason, so
they are counted in ``stats.json`` and kept under ``excluded/page_guard/`` for inspection. ``request`` / ``metadata``
/ ``warcinfo`` records are not pages and are not documents (counted as ``skipped_records`` in the reader's stats).

Decoding (``decode_payload``): strict UTF-8 first (valid UTF-8 is almost never anything else), then the charset the
HTTP header or a ``<meta charset>`` declares, then detection (cchardet, when confident), then windows-1252 (the HTML standard's default); a page nothing decodes is excluded as
``undecodable``. A declared charset that was wrong is recorded (``metadata.charset_mismatch``), not fatal.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from collections.abc import Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.pipeline.readers.warc import WarcReader
from datatrove.pipeline.writers.disk_base import DiskWriter

from datatrove_pipelines.funnel import FunnelFilter

PROBLEM_KEY = "page_problem"
HTML_TYPES = ("text/html", "application/xhtml+xml")
WARC_SUFFIXES = (".warc", ".warc.gz", ".wet", ".wet.gz", ".arc", ".arc.gz")
HTML_SUFFIXES = (".html", ".htm", ".xhtml")
MIN_DETECTION_CONFIDENCE = 0.8  # below it cchardet mistakes short Latin-1 text for IBM852 and the like
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def _charset_of(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", content_type, re.I)
    return match.group(1) if match else None


def _mime_of(content_type: str | None) -> str | None:
    return content_type.split(";", 1)[0].strip().lower() if content_type else None


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_payload(payload: bytes, declared: str | None) -> tuple[str | None, str | None, bool]:
    """(text, charset used, declared charset was wrong); text is None when nothing decodes the bytes."""
    if not declared:
        meta = _META_CHARSET.search(payload[:4096])
        declared = meta.group(1).decode("ascii", "replace") if meta else None
    declared_codec = _codec(declared)
    try:
        text = payload.decode("utf-8")
        return text, "utf-8", declared_codec not in (None, "utf-8", "ascii")
    except UnicodeDecodeError:
        pass
    if declared_codec and declared_codec != "utf-8":
        try:
            return payload.decode(declared_codec), declared_codec, False
        except (UnicodeDecodeError, LookupError):
            pass
    import cchardet

    guess = cchardet.detect(payload[:65536])
    detected = _codec(guess.get("encoding")) if (guess.get("confidence") or 0) >= MIN_DETECTION_CONFIDENCE else None
    for candidate in (detected, "cp1252"):  # windows-1252: the HTML standard's default for legacy pages
        if candidate:
            try:
                return payload.decode(candidate), candidate, declared is not None
            except (UnicodeDecodeError, LookupError):
                pass
    return None, None, declared is not None


def looks_like_html(payload: bytes) -> bool:
    head = payload[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<body" in head or b"<p" in head


def page_document(
    doc_id: str,
    payload: bytes,
    url: str | None,
    content_type: str | None,
    metadata: dict,
    is_text_conversion: bool = False,
) -> Document:
    """A document for one page; sets ``page_problem`` when the page cannot be used (see the module docstring)."""
    metadata = {**metadata, "url": url, "size": len(payload)}
    mime = _mime_of(content_type)
    if not payload.strip():
        metadata[PROBLEM_KEY] = "empty_payload"
        return Document(text="", id=doc_id, metadata=metadata)
    if mime is None or mime in ("application/octet-stream", "unknown", "application/http"):
        import magic

        mime = magic.from_buffer(payload[:4096], mime=True)
        if mime == "text/plain" and not is_text_conversion and looks_like_html(payload):
            mime = "text/html"
    metadata["mime"] = mime
    if is_text_conversion:
        if mime not in ("text/plain", *HTML_TYPES):
            metadata[PROBLEM_KEY] = f"non_html:{mime}"
    elif mime not in HTML_TYPES:
        metadata[PROBLEM_KEY] = f"non_html:{mime}"
    if PROBLEM_KEY in metadata:
        return Document(text="", id=doc_id, metadata=metadata)
    text, charset, mismatch = decode_payload(payload, _charset_of(content_type))
    if text is None:
        metadata[PROBLEM_KEY] = "undecodable"
        return Document(text="", id=doc_id, metadata=metadata)
    metadata["charset"] = charset
    if mismatch:
        metadata["charset_mismatch"] = True
    metadata["format"] = "text" if is_text_conversion and mime == "text/plain" else "html"
    return Document(text=text, id=doc_id, metadata=metadata)


def unreadable_record_reason(error: BaseException, part: str = "header") -> str:
    """The reason for a record (``part``: its header or its body) that could not be read: a compressed stream that
    ends mid-member (``EOFError``, ``zlib.error``, ``gzip.BadGzipFile``), else an unreadable part (a cut or garbled
    header: warcio raises ``ArchiveLoadFailed`` or, for some cuts, an ``AttributeError`` of its own; a broken chunked
    HTTP body)."""
    import gzip
    import zlib

    if isinstance(error, (EOFError, zlib.error, gzip.BadGzipFile)):
        return "truncated_record:cut_compressed_stream"
    return f"truncated_record:unreadable_{part}"


class WebWarcReader(WarcReader):
    """datatrove's WarcReader, reading every page record (see the module docstring) and surviving damaged files.

    A record shorter than its ``Content-Length`` (a cut file) is ``truncated_record``; bytes after the last record
    that warcio cannot parse (a cut header, a cut gzip member) become one ``truncated_record`` document, and reading
    goes on with the next file."""

    name = "🕷 Warc (web pages)"

    def read_file(self, filepath: str) -> DocumentsPipeline:
        from warcio.archiveiterator import ArchiveIterator

        with self.data_folder.open(filepath, "rb", compression=self.compression) as handle:
            iterator = ArchiveIterator(handle, check_digests=False)
            records = iter(iterator)
            index = 0
            while True:
                damaged: BaseException | None = None
                try:
                    record = next(records)
                except StopIteration:
                    break
                except Exception as error:  # cut gzip member, garbled header: the rest of the file is unreadable
                    damaged = error
                if damaged is None and not record.rec_type:  # a header cut before its WARC-Type value
                    damaged = ValueError(f"record header without a WARC-Type: {record.rec_headers.headers!r:.200}")
                if damaged is not None:
                    yield self._damaged(
                        filepath,
                        index,
                        unreadable_record_reason(damaged),
                        error=f"{type(damaged).__name__}: {damaged}",
                    )
                    return
                with self.track_time():
                    document = self._record_document(record, filepath, index)
                index += 1
                if document is None:
                    self.stat_update("skipped_records")
                    continue
                yield document
            try:
                left = handle.tell() - iterator.offset
            except Exception:
                left = 0
            if left > 0:
                yield self._damaged(filepath, index, "truncated_record:unparsed_tail", size=left)

    def _damaged(self, filepath: str, index: int, problem: str, size: int = 0, error: str | None = None) -> Document:
        self.stat_update("damaged_records")
        metadata = {"file_path": filepath, "size": size, PROBLEM_KEY: problem}
        if error is not None:
            metadata["read_error"] = error[:500]  # what the WARC library said, for whoever inspects excluded/
        return Document(text="", id=f"{filepath}#record{index}", metadata=metadata)

    def _record_document(self, record, filepath: str, index: int) -> Document | None:
        if record.rec_type not in ("response", "conversion", "resource"):
            return None
        headers = record.rec_headers
        try:
            payload = record.content_stream().read()
        except Exception as error:  # a broken chunked / compressed HTTP body
            payload, problem = b"", unreadable_record_reason(error, part="body")
            read_error = {"read_error": f"{type(error).__name__}: {error}"[:500]}
        else:
            problem, read_error = None, {}
        remaining = getattr(record.raw_stream, "limit", 0) or 0
        record_id = headers.get_header("WARC-Record-ID") or f"{filepath}#record{index}"
        url = headers.get_header("WARC-Target-URI") or headers.get_header("uri")
        metadata = {"date": headers.get_header("WARC-Date") or headers.get_header("archive-date")}
        if problem is None and remaining > 0:
            problem = "truncated_record:short_content"
        if problem is not None:
            return Document(
                text="",
                id=record_id,
                metadata={**metadata, **read_error, "url": url, "size": len(payload), PROBLEM_KEY: problem},
            )
        identified = headers.get_header("WARC-Identified-Payload-Type")
        content_type = None
        if record.http_headers is not None:
            content_type = record.http_headers.get_header("Content-Type")
        elif record.rec_type in ("conversion", "resource"):
            content_type = headers.get_header("Content-Type")
        if identified and _mime_of(content_type) != _mime_of(identified):
            charset = _charset_of(content_type)
            content_type = identified + (f"; charset={charset}" if charset else "")
        if record.http_headers is not None and not record.http_headers.get_statuscode().startswith("2"):
            metadata[PROBLEM_KEY] = f"http_status:{record.http_headers.get_statuscode()}"
            return Document(text="", id=record_id, metadata={**metadata, "url": url, "size": len(payload)})
        return page_document(record_id, payload, url, content_type, metadata, record.rec_type == "conversion")


class HtmlFileReader(BaseDiskReader):
    """Plain HTML files (``*.html``, ``*.htm``, ``*.xhtml``), one page each. A file under ``<host.tld>/...`` gets
    the URL ``https://<relative path>`` (so the category rules see its domain), any other ``file:<relative path>``."""

    name = "📄 HTML files"

    def __init__(self, data_folder, glob_pattern: str | None = None, recursive: bool = True, **kwargs):
        super().__init__(data_folder, glob_pattern=glob_pattern, recursive=recursive, **kwargs)

    def read_file(self, filepath: str) -> Iterator[Document]:
        if not filepath.lower().endswith(HTML_SUFFIXES):
            return
        with self.track_time():
            with self.data_folder.open(filepath, "rb") as handle:
                payload = handle.read()
            first = filepath.replace(os.sep, "/").split("/", 1)[0]
            url = f"https://{filepath}" if "." in first and len(filepath.split("/")) > 1 else f"file:{filepath}"
            content_type = "text/html" if payload.strip() else None
            document = page_document(
                f"file:{filepath}", payload, url, content_type, {"file_path": self.data_folder.resolve_paths(filepath)}
            )
        yield document


class PageGuard(FunnelFilter):
    """Excludes the pages the readers marked (``metadata.page_problem``): truncated records, non-HTML payloads,
    undecodable bytes, empty payloads, HTTP errors. The first step of the funnel: every page record is counted."""

    def __init__(self, exclusion_writer: DiskWriter | None = None):
        super().__init__("page_guard", exclusion_writer)

    def check(self, doc: Document) -> str | None:
        return doc.metadata.pop(PROBLEM_KEY, None)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def readers_for_inputs(inputs: list[str]) -> list[BaseDiskReader]:
    """One reader per kind of input found: WARC/WET files (a file or a folder of them) and HTML files."""
    readers: list[BaseDiskReader] = []
    for spec in inputs:
        if "://" not in spec and not os.path.exists(spec):
            raise SystemExit(f"error: input {spec} does not exist")
        if "://" not in spec and os.path.isfile(spec):
            folder, name = os.path.split(os.path.abspath(spec))
            if name.lower().endswith(WARC_SUFFIXES):
                readers.append(WebWarcReader(folder, glob_pattern=name, recursive=False))
            elif name.lower().endswith(HTML_SUFFIXES):
                readers.append(HtmlFileReader(folder, glob_pattern=name, recursive=False))
            else:
                raise SystemExit(f"error: {spec} is neither a WARC/WET file nor an HTML file")
            continue
        before = len(readers)
        if "://" in spec:  # a remote folder: WARC / WET files
            readers += [WebWarcReader(spec, glob_pattern=f"**/*{suffix}") for suffix in WARC_SUFFIXES]
            continue
        names = {name.lower() for _, _, files in os.walk(spec) for name in files}
        for suffix in WARC_SUFFIXES:
            if any(name.endswith(suffix) for name in names):
                readers.append(WebWarcReader(spec, glob_pattern=f"**/*{suffix}"))
        for suffix in HTML_SUFFIXES:
            if any(name.endswith(suffix) for name in names):
                readers.append(HtmlFileReader(spec, glob_pattern=f"**/*{suffix}"))
        if len(readers) == before:
            raise SystemExit(f"error: no WARC/WET (.warc[.gz], .wet[.gz]) or HTML files under {spec}")
    return readers

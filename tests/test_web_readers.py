"""Web page input: WARC/WET/HTML through datatrove's readers; bad records excluded with reasons, never a crash."""

from __future__ import annotations

import gzip
import io
import os

import pytest
from datatrove.pipeline.readers import WarcReader
from warcio.warcwriter import WARCWriter

from datatrove_pipelines.web.readers import HtmlFileReader, PageGuard, WebWarcReader, readers_for_inputs
from datatrove_pipelines.web.sample_pages import bad_pages, licence_pages, readme_pages, write_warc


def _guarded(reader) -> tuple[list, list]:
    """(kept, excluded) documents after the page guard."""
    docs = list(reader.run())
    guard = PageGuard()
    kept = list(guard.run(iter(docs)))
    kept_ids = {id(d) for d in kept}
    return kept, [d for d in docs if id(d) not in kept_ids]


@pytest.fixture(scope="module")
def good_pages():
    return list(readme_pages(limit=12)) + list(licence_pages(limit=4))


def test_bad_records_are_excluded_with_reasons(tmp_path, good_pages):
    path = str(tmp_path / "mixed.warc.gz")
    write_warc(path, good_pages + bad_pages())
    kept, excluded = _guarded(WebWarcReader(str(tmp_path)))
    reasons = {d.metadata["url"].rsplit("/", 1)[-1]: d.metadata["filter_reason"] for d in excluded}
    assert reasons == {
        "logo.png": "non_html:image/png",
        "paper.pdf": "non_html:application/pdf",
        "blob": reasons["blob"],  # whatever libmagic calls random bytes: not HTML
        "empty": "empty_payload",
        "missing": "http_status:404",
    }
    assert reasons["blob"].startswith("non_html:")
    assert len(kept) == len(good_pages) + 3  # the two wrong-charset pages and the blank page (empty after extraction)
    by_url = {d.metadata["url"]: d for d in kept}
    wrong = by_url["https://example.com/cp1252"]
    assert "Café crème" in wrong.text and "“quotes”" in wrong.text
    assert wrong.metadata["charset_mismatch"] is True and wrong.metadata["charset"] != "utf-8"
    assert "Café crème" in by_url["https://example.com/bogus"].text
    for page in good_pages:
        assert by_url[page.url].text == page.html


def test_same_pages_as_datatrove_warc_reader(tmp_path, good_pages):
    """Peer: datatrove's WarcReader on the same file yields the same pages (and silently skips the bad ones)."""
    write_warc(str(tmp_path / "mixed.warc"), good_pages + bad_pages())
    ours, excluded = _guarded(WebWarcReader(str(tmp_path)))
    error_pages = {d.id for d in excluded if d.metadata["filter_reason"].startswith("http_status:")}
    theirs = [d for d in WarcReader(str(tmp_path)).run() if d.id not in error_pages]  # datatrove keeps HTTP errors
    ours_by_id = {d.id: d.text for d in ours}
    assert {d.id for d in theirs} <= set(ours_by_id)
    for doc in theirs:
        assert ours_by_id[doc.id] == doc.text
    assert len(theirs) < len(good_pages) + len(bad_pages())  # what datatrove dropped without a trace


TRUNCATION_REASONS = {
    "truncated_record:short_content",
    "truncated_record:cut_compressed_stream",
    "truncated_record:unparsed_tail",
    "truncated_record:unreadable_header",
    "truncated_record:unreadable_body",
}


@pytest.mark.parametrize("header_bytes", [9, 20, 40, 120, 200])
def test_a_cut_header_is_named_as_such(tmp_path, good_pages, header_bytes):
    """A file cut inside a record's header: the pages before it are read, the cut record is one excluded document
    whose reason names what is wrong, not the WARC library's exception class. warcio either fails on the header
    (``unreadable_header``, with what it said in ``read_error``) or stops as at the end of a file, leaving the cut
    header's bytes unparsed (``unparsed_tail``, with their size)."""
    whole = tmp_path / "whole.warc"
    write_warc(str(whole), good_pages[:3])
    data = whole.read_bytes()
    third = data.index(b"WARC/1.0", data.index(b"WARC/1.0", data.index(b"WARC/1.0") + 1) + 1)
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "pages.warc").write_bytes(data[: third + header_bytes])
    kept, excluded = _guarded(WebWarcReader(str(cut)))
    assert len(kept) == 2
    assert len(excluded) == 1
    reason, metadata = excluded[0].metadata["filter_reason"], excluded[0].metadata
    if reason == "truncated_record:unparsed_tail":
        assert metadata["size"] == header_bytes
    else:
        assert reason == "truncated_record:unreadable_header" and metadata["read_error"]


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("cut_fraction", [0.35, 0.6, 0.97])
def test_truncated_warc_files(tmp_path, good_pages, compressed, cut_fraction):
    whole = tmp_path / "whole"
    whole.mkdir()
    name = "pages.warc.gz" if compressed else "pages.warc"
    write_warc(str(whole / name), good_pages)
    data = (whole / name).read_bytes()
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / name).write_bytes(data[: int(len(data) * cut_fraction)])
    (cut / "after.warc").write_bytes((whole / name).read_bytes() if not compressed else gzip.decompress(data))
    kept, excluded = _guarded(WebWarcReader(str(cut)))
    assert len(excluded) >= 1
    assert {d.metadata["filter_reason"] for d in excluded} <= TRUNCATION_REASONS
    assert len(kept) >= len(good_pages)  # the whole copy after the damaged file is read completely
    assert len(kept) < 2 * len(good_pages)


def test_wet_conversion_records_are_text(tmp_path):
    path = tmp_path / "crawl.warc.wet.gz"
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        text = b"def main():\n    return 0\n\nplain text of a page, already extracted by Common Crawl"
        record = writer.create_warc_record(
            "https://example.org/wet", "conversion", payload=io.BytesIO(text), warc_content_type="text/plain"
        )
        writer.write_record(record)
    kept, excluded = _guarded(WebWarcReader(str(tmp_path)))
    assert not excluded
    assert kept[0].metadata["format"] == "text" and kept[0].text.startswith("def main():\n    return 0")


def test_html_files(tmp_path):
    site = tmp_path / "docs.example.org" / "guide"
    site.mkdir(parents=True)
    (site / "intro.html").write_text("<html><body><p>Intro to the tool</p></body></html>")
    (site / "latin.htm").write_bytes("<html><body><p>Résumé naïf</p></body></html>".encode("latin-1"))
    (site / "empty.html").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a page")
    kept, excluded = _guarded(HtmlFileReader(str(tmp_path), glob_pattern="**/*.htm*"))
    urls = {d.metadata["url"]: d for d in kept}
    assert set(urls) == {"https://docs.example.org/guide/intro.html", "https://docs.example.org/guide/latin.htm"}
    assert "Résumé naïf" in urls["https://docs.example.org/guide/latin.htm"].text
    assert [d.metadata["filter_reason"] for d in excluded] == ["empty_payload"]


def test_input_errors_are_one_line(tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        readers_for_inputs([str(tmp_path / "nope")])
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(SystemExit, match="no WARC/WET"):
        readers_for_inputs([str(tmp_path)])
    with pytest.raises(SystemExit, match="neither"):
        readers_for_inputs([str(tmp_path / "a.txt")])
    write_warc(str(tmp_path / "x.warc"), [])
    (tmp_path / "p.html").write_text("<p>x</p>")
    kinds = [type(r).__name__ for r in readers_for_inputs([str(tmp_path)])]
    assert kinds == ["WebWarcReader", "HtmlFileReader"]
    assert os.path.exists(tmp_path / "x.warc")

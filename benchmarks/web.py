"""Web stage throughput: pages/s of our extraction + classification against datatrove's plain extractor alone.

One WARC file of pages built from local documents (datatrove_pipelines/web/sample_pages.py). Baseline: datatrove's
``WarcReader`` → ``Trafilatura`` (its defaults), the extractor alone. Ours: ``WebWarcReader`` → page guard →
``CodeKeepingExtractor`` (code blocks kept verbatim, markup counted) → ``CodeRecallFilter`` (the code-markup rule,
then fastText on the rest; the model is trained beforehand, not timed). Both run as datatrove steps in this process,
with datatrove's extraction sandbox, alternately, ``--repeats`` times; the medians and their ratio are printed
(target >= 0.7). The machine may be shared and noisy: medians of several runs, not one.

    python benchmarks/web.py [--pages 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datatrove.pipeline.extractors import Trafilatura  # noqa: E402
from datatrove.pipeline.readers import WarcReader  # noqa: E402
from datatrove.utils.logging import logger  # noqa: E402

from datatrove_pipelines.web.extract import CodeKeepingExtractor, ExtractionConfig  # noqa: E402
from datatrove_pipelines.web.readers import PageGuard, WebWarcReader  # noqa: E402
from datatrove_pipelines.web.recall import CodeRecallFilter, FastTextSettings, RecallConfig, train_fasttext  # noqa: E402
from datatrove_pipelines.web.sample_pages import licence_pages, readme_pages, stdlib_pages, write_warc  # noqa: E402
from datatrove_pipelines.web.stand_in_judge import stand_in_verdict  # noqa: E402


def drain(steps) -> int:
    data = None
    for step in steps:
        data = step.run(data) if data is not None else step.run()
    return sum(1 for _ in data)


def baseline(folder: str) -> int:
    return drain([WarcReader(folder), Trafilatura()])


def ours(folder: str, model_path: str) -> int:
    recall = RecallConfig(model_path=model_path, threshold=0.5)
    return drain(
        [WebWarcReader(folder), PageGuard(), CodeKeepingExtractor(ExtractionConfig()), CodeRecallFilter(recall)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=300, help="pages in the WARC file")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logger.remove()  # datatrove's per-file log lines would be timed too
    pages = [*readme_pages(), *stdlib_pages(), *licence_pages()]
    pages = (pages * (1 + args.pages // max(1, len(pages))))[: args.pages]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "warc"
        folder.mkdir()
        write_warc(str(folder / "pages.warc.gz"), pages)
        extractor = CodeKeepingExtractor(ExtractionConfig(sandbox=False))
        examples = []
        for page in pages[:200]:
            text, counts = extractor.extract_page(page.html)
            if text.strip():
                examples.append((text, 1 if counts["code_blocks"] else stand_in_verdict(text)))
        model_path = str(Path(tmp) / "recall.bin")
        train_fasttext(examples, FastTextSettings(), model_path)
        print(f"{len(pages)} pages in one WARC file ({(folder / 'pages.warc.gz').stat().st_size / 1e6:.1f} MB)")
        base_rates, our_rates, ratios = [], [], []
        for repeat in range(args.repeats):
            started = time.perf_counter()
            base_out = baseline(str(folder))
            base_rate = len(pages) / (time.perf_counter() - started)
            started = time.perf_counter()
            our_out = ours(str(folder), model_path)
            our_rate = len(pages) / (time.perf_counter() - started)
            base_rates.append(base_rate)
            our_rates.append(our_rate)
            ratios.append(our_rate / base_rate)
            print(
                f"run {repeat + 1}: datatrove Trafilatura {base_rate:7.1f} pages/s ({base_out} out) | "
                f"ours extraction + recall {our_rate:7.1f} pages/s ({our_out} kept) | ratio {our_rate / base_rate:.2f}"
            )
    print(
        f"median: baseline {statistics.median(base_rates):.1f} pages/s, ours {statistics.median(our_rates):.1f} "
        f"pages/s, ratio of medians {statistics.median(our_rates) / statistics.median(base_rates):.2f}, "
        f"median ratio {statistics.median(ratios):.2f} (target >= 0.7)"
    )


if __name__ == "__main__":
    main()

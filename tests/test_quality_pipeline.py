"""Quality filtering end to end, with real parts: documents written by datatrove's JsonlWriter from the stdlib,
annotation over real HTTP against a STAND-IN oracle (a heuristic that answers /v1/chat/completions like vLLM; no
LLM can run here) and with in-process transformers on the tiny local model, scorers trained with transformers and
fastText, and the score/filter pipeline run by datatrove's local executor.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers.jsonl import JsonlReader
from datatrove.pipeline.writers.jsonl import JsonlWriter

from datatrove_pipelines.code_readers import make_document
from datatrove_pipelines.quality.__main__ import main
from datatrove_pipelines.quality.annotate import language_of, rating_distribution, read_documents
from datatrove_pipelines.quality.distribution import is_below
from datatrove_pipelines.quality.rubric import EXPECTED_MODE_ANSWER_PREFIX, build_prompt, extract_file, prompt_parts
from datatrove_pipelines.quality.score_filter import quality_filter_steps
from datatrove_pipelines.quality.scorer import PromptEncoder, load_scorer
from datatrove_pipelines.quality.stand_in_oracle import stand_in_answer
from datatrove_pipelines.stats import write_stats
from datatrove_pipelines.writers import exclusion_writer, kept_writer

REPO_ROOT = Path(__file__).resolve().parents[1]
STDLIB = Path(sysconfig.get_paths()["stdlib"])
SKIP_PARTS = {"test", "tests", "idle_test", "site-packages", "__pycache__"}
OTHER_SUFFIXES = {".c", ".bat", ".ps1", ".csh", ".css", ".html"}
# Oracle and scorer see the same file head (the rubric's truncation rule), short enough for the tiny model.
CONTENT_CHARS = 400
PER_LANGUAGE = 400
MALFORMED_EVERY = 7
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _stdlib_sources() -> list[Path]:
    files = sorted(
        p
        for p in STDLIB.rglob("*")
        if p.is_file()
        and (p.suffix == ".py" or p.suffix in OTHER_SUFFIXES)
        and not SKIP_PARTS & set(p.relative_to(STDLIB).parts)
    )
    python = [p for p in files if p.suffix == ".py"]
    return python[:: max(1, len(python) // 520)] + [p for p in files if p.suffix != ".py"]


@pytest.fixture(scope="module")
def docs_dir(tmp_path_factory) -> Path:
    """Documents in the code-file pipeline's format (``<dir>/kept/``), one per real stdlib file."""
    root = tmp_path_factory.mktemp("code-files")
    with JsonlWriter(str(root / "kept")) as writer:
        for path in _stdlib_sources():
            raw = path.read_bytes()
            doc = make_document("cpython", str(path.relative_to(STDLIB)), raw, len(raw))
            if doc.metadata["language"] and doc.text.strip():
                writer.write(doc)
    return root


@pytest.fixture(scope="module")
def input_docs(docs_dir):
    return read_documents(str(docs_dir / "kept"))


def _start_stand_in(*extra: str) -> tuple[subprocess.Popen, str]:
    """The STAND-IN oracle as its own process on 127.0.0.1, like `vllm serve` would be; (process, base URL)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "datatrove_pipelines.quality.stand_in_oracle", "--port", "0"]
        + ["--malformed-every", str(MALFORMED_EVERY), *extra],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    line = process.stdout.readline()
    assert "listening on http://" in line, line
    return process, line.rsplit(" ", 1)[-1].strip() + "/v1"


def _stop(process: subprocess.Popen) -> None:
    """SIGKILL the process and its children (datatrove's executor forks helpers that would outlive their parent);
    processes are started with start_new_session=True, so their process group is theirs alone."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:  # already gone
        pass
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def stand_in_url():
    process, url = _start_stand_in()
    try:
        yield url
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def annotations(docs_dir, stand_in_url, tmp_path_factory) -> tuple[Path, dict]:
    output = tmp_path_factory.mktemp("annotations")
    stats = main(
        ["annotate", "--input", str(docs_dir), "--output", str(output), "--base-url", stand_in_url]
        + ["--model", "stand-in", "--per-language", str(PER_LANGUAGE), "--max-content-chars", str(CONTENT_CHARS)]
        + ["--concurrency", "16"]
    )
    return output, stats


def _expected_answer(doc):
    """What the stand-in answers for a document: it sees the file exactly as the prompt carries it."""
    language, content = extract_file(build_prompt(language_of(doc), doc.text, CONTENT_CHARS))
    return stand_in_answer(language, content, MALFORMED_EVERY)


# --------------------------------------------------------------------------------------------------------------------
# annotate
# --------------------------------------------------------------------------------------------------------------------


def test_annotate_over_http_rates_every_sampled_file_and_counts_malformed_answers(annotations, input_docs):
    output, stats = annotations
    rated = read_documents(str(output / "kept"))
    malformed = read_documents(str(output / "excluded" / "oracle"))

    # stratified: every language gets min(N, available) files
    available = {}
    for doc in input_docs:
        available[language_of(doc)] = available.get(language_of(doc), 0) + 1
    sampled = {}
    for doc in rated + malformed:
        sampled[language_of(doc)] = sampled.get(language_of(doc), 0) + 1
    assert sampled == {language: min(PER_LANGUAGE, n) for language, n in available.items()}
    assert len(sampled) >= 5 and available["Python"] > PER_LANGUAGE

    # every rating is the one the oracle meant (the decoy [[X]] variant proves the last one is taken)
    for doc in rated:
        assert isinstance(doc.metadata["rating"], int)
        assert doc.metadata["rating"] == _expected_answer(doc).expected_rating, doc.id
        assert doc.metadata["oracle"][0]["responses"][-1]["text"]  # raw response kept
    clamped = [d for d in rated if d.metadata["oracle"][0]["responses"][-1]["clamped"]]
    assert clamped and all("[[12]]" in d.metadata["oracle"][0]["responses"][-1]["text"] for d in clamped)

    # malformed answers: exactly the files the stand-in answers without [[X]], re-asked once, never scored
    expected_malformed = {d.id for d in rated + malformed if _expected_answer(d).expected_rating is None}
    assert {d.id for d in malformed} == expected_malformed and expected_malformed
    for doc in malformed:
        assert doc.metadata["rating"] is None
        assert doc.metadata["filter_reason"] == "malformed:no_rating"
        assert len(doc.metadata["oracle"][0]["responses"]) == 2

    assert stats["malformed"] == len(malformed)
    oracle = stats["steps"]["oracle"]
    assert (oracle["docs_in"], oracle["docs_kept"], oracle["docs_excluded"]) == (
        len(rated) + len(malformed),
        len(rated),
        len(malformed),
    )
    assert stats["total"]["docs_in"] == len(input_docs)
    # the files left out of the sample are set aside, not excluded: in = rated + malformed + not sampled
    sample = stats["steps"]["sample"]
    not_sampled = len(input_docs) - len(rated) - len(malformed) - sample["docs_excluded"]
    assert stats["total"]["docs_not_sampled"] == sample["docs_set_aside"] == not_sampled > 0
    assert "not_sampled" not in sample["reasons"] and sample["set_aside"]["not_sampled"]["docs"] == not_sampled
    assert stats["total"]["docs_excluded"] == len(malformed) + sample["docs_excluded"]
    assert json.loads((output / "stats.json").read_text())["malformed"] == len(malformed)
    assert not (output / "checkpoints" / "00000").exists()  # the finished task's checkpoint was cleaned up


def test_annotate_resumes_after_the_task_is_killed(docs_dir, tmp_path):
    """SIGKILL mid-run (the oracle stops answering), then re-run: every sampled file ends up written exactly once."""
    output = tmp_path / "annotations"
    args = ["annotate", "--input", str(docs_dir), "--output", str(output), "--model", "stand-in"]
    args += ["--per-language", "120", "--max-content-chars", str(CONTENT_CHARS), "--records-per-chunk", "20"]
    args += ["--concurrency", "4"]
    hanging, url = _start_stand_in("--hang-after", "90")
    client = subprocess.Popen(
        [sys.executable, "-m", "datatrove_pipelines.quality", *args, "--base-url", url],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    progress = output / "checkpoints" / "last_chunk" / "00000.txt"
    try:
        deadline = time.monotonic() + 120
        while not (progress.exists() and progress.read_text().strip() and int(progress.read_text()) >= 2):
            assert time.monotonic() < deadline and client.poll() is None, "no chunk finished before the hang"
            time.sleep(0.2)
    finally:
        _stop(client)
        _stop(hanging)
    finished = int(progress.read_text())
    assert 2 <= finished < 7  # killed mid-run: 7 chunks of 20 hold the ~128 sampled files

    fresh, url = _start_stand_in()
    try:
        stats = main([*args, "--base-url", url])
    finally:
        _stop(fresh)
    written = read_documents(str(output / "kept")) + read_documents(str(output / "excluded" / "oracle"))
    ids = [doc.id for doc in written]
    assert len(ids) == len(set(ids)) == stats["steps"]["sample"]["docs_kept"]
    assert all(doc.metadata["rating"] == _expected_answer(doc).expected_rating for doc in written)


def test_annotate_with_in_process_transformers_counts_unparseable_generations(docs_dir, tiny_model_dir, tmp_path):
    """A random tiny model cannot follow the rubric: its answers must be recorded and counted, not scored."""
    stats = main(
        ["annotate", "--input", str(docs_dir), "--output", str(tmp_path), "--backend", "transformers"]
        + ["--model", str(tiny_model_dir), "--per-language", "1", "--max-content-chars", "300"]
        + ["--max-tokens", "8", "--device", "cpu"]
    )
    rated = read_documents(str(tmp_path / "kept"))
    excluded = read_documents(str(tmp_path / "excluded" / "oracle"))
    assert len(rated) + len(excluded) == stats["steps"]["sample"]["docs_kept"] >= 5
    assert stats["malformed"] == len(excluded) > 0
    for doc in excluded:
        responses = doc.metadata["oracle"][0]["responses"]
        assert doc.metadata["rating"] is None and doc.metadata["filter_reason"].startswith("malformed:")
        assert all(r["rating"] is None and "text" in r for r in responses)
    for doc in rated:
        assert 0 <= doc.metadata["rating"] <= 10


def test_expected_value_mode_reads_the_rating_from_token_probabilities(docs_dir, tiny_model_dir, tmp_path):
    stats = main(
        ["annotate", "--input", str(docs_dir), "--output", str(tmp_path), "--backend", "transformers"]
        + ["--model", str(tiny_model_dir), "--rating-mode", "expected", "--per-language", "1"]
        + ["--max-content-chars", "300", "--device", "cpu"]
    )
    rated = read_documents(str(tmp_path / "kept"))
    assert len(rated) == stats["steps"]["sample"]["docs_kept"] and stats["malformed"] == 0
    for doc in rated:
        probabilities = doc.metadata["rating_probabilities"]
        expected = sum(p * r for r, p in enumerate(probabilities)) / sum(probabilities)
        assert len(probabilities) == 11 and sum(probabilities) == pytest.approx(1.0, abs=1e-4)
        assert doc.metadata["rating_expected"] == pytest.approx(expected, abs=1e-3)
        assert doc.metadata["rating"] == int(expected + 0.5)


def test_rating_distribution_with_kv_cache_matches_full_sequence_scoring(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    prompt = build_prompt("Python", (STDLIB / "colorsys.py").read_text()[:300]) + EXPECTED_MODE_ANSWER_PREFIX
    prefix = tokenizer(prompt)["input_ids"]
    fast = rating_distribution(model, tokenizer, prefix)
    scores = []
    with torch.no_grad():
        for rating in range(11):
            continuation = tokenizer(f"{rating}]]", add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prefix + continuation])
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            scores.append(sum(logprobs[len(prefix) - 1 + i, t].item() for i, t in enumerate(continuation)))
    reference = torch.softmax(torch.tensor(scores, dtype=torch.float64), dim=0).tolist()
    assert fast == pytest.approx(reference, abs=1e-4)


def test_annotate_fails_fast_naming_the_url_when_no_server_answers(docs_dir, tmp_path):
    """Nothing listening, or a real loopback HTTP server that answers 404: a one-line error naming the URL within a
    minute, instead of datatrove's retries for many minutes."""
    import socket
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for url, problem in (
            (f"http://127.0.0.1:{dead_port}/v1", "ConnectError"),
            (f"http://127.0.0.1:{server.server_port}", "HTTP 404"),
        ):
            start = time.monotonic()
            with pytest.raises(SystemExit) as raised:
                main(
                    ["annotate", "--input", str(docs_dir), "--output", str(tmp_path / "o"), "--model", "m"]
                    + ["--base-url", url]
                )
            assert time.monotonic() - start < 60
            message = str(raised.value)
            assert url.removesuffix("/v1") + "/v1/models" in message and problem in message and "\n" not in message
    finally:
        server.shutdown()


def test_annotate_usage_errors_are_explained(docs_dir, tmp_path):
    with pytest.raises(SystemExit, match="--base-url"):
        main(["annotate", "--input", str(docs_dir), "--output", str(tmp_path), "--model", "m"])
    with pytest.raises(SystemExit, match="backend transformers"):
        main(
            ["annotate", "--input", str(docs_dir), "--output", str(tmp_path), "--model", "m"]
            + ["--base-url", "http://127.0.0.1:1/v1", "--rating-mode", "expected"]
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no .jsonl"):
        main(
            [
                "annotate",
                "--input",
                str(tmp_path / "empty"),
                "--output",
                str(tmp_path),
                "--base-url",
                "x",
                "--model",
                "m",
            ]
        )
    with pytest.raises(SystemExit, match="does not exist"):
        main(
            [
                "annotate",
                "--input",
                str(tmp_path / "nope"),
                "--output",
                str(tmp_path),
                "--base-url",
                "x",
                "--model",
                "m",
            ]
        )


# --------------------------------------------------------------------------------------------------------------------
# train-scorer
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lm_scorer(annotations, tiny_model_dir, tmp_path_factory) -> tuple[Path, dict]:
    output = tmp_path_factory.mktemp("lm-scorer")
    metrics = main(
        ["train-scorer", "--annotations", str(annotations[0]), "--output", str(output), "--kind", "lm"]
        + ["--base-model", str(tiny_model_dir), "--max-length", "800", "--max-content-chars", str(CONTENT_CHARS)]
        + ["--learning-rate", "1e-3", "--batch-size", "16", "--eval-fraction", "0.2", "--device", "cpu"]
    )
    return output, metrics


@pytest.fixture(scope="module")
def fasttext_scorer(annotations, tmp_path_factory) -> tuple[Path, dict]:
    output = tmp_path_factory.mktemp("fasttext-scorer")
    metrics = main(
        ["train-scorer", "--annotations", str(annotations[0]), "--output", str(output), "--kind", "fasttext"]
        + ["--max-content-chars", str(CONTENT_CHARS), "--eval-fraction", "0.2"]
    )
    return output, metrics


def _check_scorer_outputs(scorer_dir: Path, metrics: dict, n_rated: int) -> None:
    assert metrics["n_train"] + metrics["n_eval"] == n_rated
    assert metrics["mae"] < metrics["constant_median_mae"] and metrics["mae"] < metrics["constant_mean_mae"]
    assert metrics["class_balanced_mae"] < metrics["constant_median_class_balanced_mae"]
    assert (scorer_dir / "confusion.png").read_bytes()[:8] == PNG_MAGIC
    predictions = [json.loads(line) for line in (scorer_dir / "eval_predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == metrics["n_eval"] and all(0 <= p["score"] <= 10 for p in predictions)


def test_lm_scorer_trained_one_epoch_beats_a_constant_predictor(lm_scorer, annotations):
    scorer_dir, metrics = lm_scorer
    _check_scorer_outputs(scorer_dir, metrics, annotations[1]["steps"]["oracle"]["docs_kept"])
    settings = json.loads((scorer_dir / "scorer.json").read_text())
    assert settings["kind"] == "lm" and settings["pooling"] == "mean" and settings["training"]["epochs"] == 1.0
    # the saved scorer reproduces the held-out predictions
    rated = {d.id: d for d in read_documents(str(annotations[0] / "kept"))}
    first = [json.loads(line) for line in (scorer_dir / "eval_predictions.jsonl").read_text().splitlines()][:8]
    scorer = load_scorer(str(scorer_dir), device="cpu")
    again = scorer.score([(language_of(rated[p["id"]]), rated[p["id"]].text) for p in first])
    assert again == pytest.approx([p["score"] for p in first], abs=2e-3)


def test_fasttext_scorer_is_saved_at_a_size_that_fits_its_data(fasttext_scorer):
    """Buckets sized to the training n-grams: a few MB for a few hundred examples, not fastText's 800 MB default."""
    scorer_dir, _ = fasttext_scorer
    assert (scorer_dir / "model.bin").stat().st_size < 50_000_000


def test_fasttext_scorer_beats_a_constant_predictor(fasttext_scorer, annotations):
    scorer_dir, metrics = fasttext_scorer
    _check_scorer_outputs(scorer_dir, metrics, annotations[1]["steps"]["oracle"]["docs_kept"])
    assert json.loads((scorer_dir / "scorer.json").read_text())["bins"][0] == [0]


def test_sequence_classification_head_is_transformers_regression_model(input_docs, tiny_model_dir, tmp_path):
    """``--head sequence-classification``: transformers' AutoModelForSequenceClassification (num_labels=1, regression)
    trained by the same command, saved whole, and scoring exactly as that library model predicts."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from datatrove_pipelines.quality.stand_in_oracle import stand_in_rating

    with JsonlWriter(str(tmp_path / "annotations" / "kept")) as writer:
        for doc in input_docs[:: max(1, len(input_docs) // 60)][:60]:
            doc.metadata["rating"] = stand_in_rating(doc.text[:CONTENT_CHARS])
            writer.write(doc)
    output = tmp_path / "scorer"
    metrics = main(
        ["train-scorer", "--annotations", str(tmp_path / "annotations"), "--output", str(output), "--kind", "lm"]
        + ["--base-model", str(tiny_model_dir), "--head", "sequence-classification", "--max-length", "700"]
        + ["--max-content-chars", str(CONTENT_CHARS), "--learning-rate", "1e-3", "--batch-size", "16"]
        + ["--eval-fraction", "0.2", "--device", "cpu"]
    )
    settings = json.loads((output / "scorer.json").read_text())
    assert settings["head"] == "sequence-classification" and "pooling" not in settings
    assert metrics["n_train"] + metrics["n_eval"] == 60
    predictions = [json.loads(line) for line in (output / "eval_predictions.jsonl").read_text().splitlines()]
    by_id = {doc.id: doc for doc in input_docs}
    items = [(language_of(by_id[p["id"]]), by_id[p["id"]].text) for p in predictions]
    assert load_scorer(str(output), device="cpu").score(items) == pytest.approx([p["score"] for p in predictions])
    # the library model, loaded on its own, predicts the same scores (rating / 10)
    model = AutoModelForSequenceClassification.from_pretrained(output / "model").eval()
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    encoder = PromptEncoder(AutoTokenizer.from_pretrained(output / "model"), 700, CONTENT_CHARS)
    with torch.no_grad():
        library = [model(input_ids=torch.tensor([encoder.encode(*item)[0]])).logits[0, 0].item() for item in items]
    assert [10 * value for value in library] == pytest.approx([p["score"] for p in predictions], abs=2e-3)


def test_train_scorer_from_a_yaml_recipe_equals_the_same_flags(fasttext_scorer, annotations, tmp_path):
    """``--config`` YAML (keys are the flags) with a flag on the command line winning: the same scorer as the flags."""
    recipe = tmp_path / "scorer.yaml"
    recipe.write_text(
        f"annotations: {annotations[0]}\noutput: {tmp_path / 'overridden'}\nkind: fasttext\n"
        f"max-content-chars: {CONTENT_CHARS}\neval-fraction: 0.2\n"
    )
    metrics = main(["train-scorer", "--config", str(recipe), "--output", str(tmp_path / "scorer")])
    assert not (tmp_path / "overridden").exists()
    same = ("n_train", "n_eval", "mae", "class_balanced_mae", "constant_median_mae")
    assert {key: metrics[key] for key in same} == {key: fasttext_scorer[1][key] for key in same}
    assert (tmp_path / "scorer" / "eval_predictions.jsonl").read_text() == (
        fasttext_scorer[0] / "eval_predictions.jsonl"
    ).read_text()


def test_the_scorer_reads_the_oracle_prompt_text(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    code = (STDLIB / "colorsys.py").read_text()[:CONTENT_CHARS]
    ids, (start, end) = PromptEncoder(tokenizer, 4096).encode("Python", code)
    assert tokenizer.decode(ids, skip_special_tokens=True) == build_prompt("Python", code)
    assert tokenizer.decode(ids[start:end]) == prompt_parts("Python", code).content
    # a long file: the instructions stay whole, the file is cut to the budget
    long_ids, (start, end) = PromptEncoder(tokenizer, 800).encode("Python", (STDLIB / "argparse.py").read_text())
    assert len(long_ids) == 800 and tokenizer.decode(long_ids).endswith("integer from 0 to 10.")
    with pytest.raises(ValueError, match="raise --max-length"):
        PromptEncoder(tokenizer, 100).encode("Python", code)


def test_train_scorer_usage_errors(tmp_path):
    with pytest.raises(SystemExit, match="needs --base-model"):
        main(["train-scorer", "--annotations", str(tmp_path), "--output", str(tmp_path / "s"), "--kind", "lm"])
    with pytest.raises(SystemExit, match="no annotated files"):
        main(["train-scorer", "--annotations", str(tmp_path), "--output", str(tmp_path / "s"), "--kind", "fasttext"])


# --------------------------------------------------------------------------------------------------------------------
# score + filter
# --------------------------------------------------------------------------------------------------------------------


def _scores(folder: Path) -> list[float]:
    return [d.metadata["quality_score"] for d in read_documents(str(folder))]


def test_score_drops_the_bottom_fraction_in_two_passes(fasttext_scorer, docs_dir, input_docs, tmp_path):
    result = main(
        ["score", "--input", str(docs_dir), "--scorer", str(fasttext_scorer[0]), "--output", str(tmp_path)]
        + ["--drop-fraction", "0.1", "--tasks", "2"]
    )
    kept, excluded = _scores(tmp_path / "kept"), _scores(tmp_path / "excluded" / "quality")
    n = len(input_docs)
    assert len(kept) + len(excluded) == n
    threshold = result["quality"]["threshold"]
    assert max(excluded) < threshold <= min(kept)  # one global threshold across both tasks
    assert abs(len(excluded) - 0.1 * n) <= max(2, 0.02 * n)
    assert result["quality"]["dropped_fraction"] == pytest.approx(len(excluded) / n)
    assert result["total"]["docs_in"] == n and result["total"]["docs_excluded"] == len(excluded)
    assert result["steps"]["quality"]["reasons"]["low_quality"]["docs"] == len(excluded)
    assert len(list((tmp_path / "histograms").glob("*.json"))) == 2
    assert (tmp_path / "score_histograms.png").read_bytes()[:8] == PNG_MAGIC
    assert json.loads((tmp_path / "stats.json").read_text())["total"]["docs_kept"] == len(kept)
    card = (tmp_path / "README.md").read_text()  # the dataset card: datasets loads kept/, the funnel, the threshold
    assert "path: kept/*.jsonl.gz" in card and f"| quality | {n:,} | {len(kept):,} | {len(excluded):,} |" in card
    assert f'"threshold": {threshold}' in card
    # what a Slurm user runs once the jobs are done: the same report, from the logs and outputs
    again = main(["stats", "score", "--output", str(tmp_path), "--drop-fraction", "0.1"])
    assert again["total"] == result["total"] and again["quality"]["threshold"] == threshold


def test_score_with_a_given_threshold_is_one_pass(fasttext_scorer, docs_dir, input_docs, tmp_path):
    main(
        ["score", "--input", str(docs_dir), "--scorer", str(fasttext_scorer[0]), "--output", str(tmp_path)]
        + ["--threshold", "5.0"]
    )
    kept, excluded = _scores(tmp_path / "kept"), _scores(tmp_path / "excluded" / "quality")
    assert len(kept) + len(excluded) == len(input_docs) and kept and excluded
    assert all(s < 5.0 for s in excluded) and all(s >= 5.0 for s in kept)
    assert not (tmp_path / "scored").exists()


def test_quality_filter_steps_plug_into_another_pipeline(lm_scorer, docs_dir, tmp_path):
    """As the code-file pipeline would use them: reader -> (syntax check ...) -> quality steps -> kept writer."""
    scorer_dir = str(lm_scorer[0])
    steps = quality_filter_steps(
        scorer_dir, drop_fraction=0.2, exclusion_writer=exclusion_writer(str(tmp_path), "quality"), device="cpu"
    )
    logs = str(tmp_path / "logs")
    pipeline = [JsonlReader(str(docs_dir / "kept"), limit=60), *steps, kept_writer(str(tmp_path))]
    LocalPipelineExecutor(pipeline=pipeline, tasks=1, logging_dir=logs).run()
    stats = write_stats(str(tmp_path), [logs])
    threshold = steps[1].threshold
    kept, excluded = _scores(tmp_path / "kept"), _scores(tmp_path / "excluded" / "quality")
    assert len(kept) + len(excluded) == 60 == stats["total"]["docs_in"]
    assert all(is_below(s, threshold) for s in excluded) and not any(is_below(s, threshold) for s in kept)
    with pytest.raises(ValueError, match="exactly one"):
        quality_filter_steps(scorer_dir)


def test_unscoreable_documents_are_excluded_not_lost(fasttext_scorer, tmp_path):
    """A document without a score (e.g. scoring failed) is excluded as `unscored`, with the invariant intact."""
    from datatrove.data import Document

    from datatrove_pipelines.quality.score_filter import QualityThresholdFilter

    docs = [Document(text="x = 1\n", id=f"r/{i}.py", metadata={"quality_score": float(i)}) for i in range(10)]
    docs.append(Document(text="y = 2\n", id="r/none.py", metadata={"quality_score": None}))
    step = QualityThresholdFilter(threshold=3.0, exclusion_writer=exclusion_writer(str(tmp_path), "quality"))
    kept = list(step.run(iter(docs)))
    assert [d.id for d in kept] == [f"r/{i}.py" for i in range(3, 10)]
    with gzip.open(next((tmp_path / "excluded" / "quality").glob("*.gz")), "rt") as handle:
        reasons = sorted(json.loads(line)["metadata"]["filter_reason"] for line in handle)
    assert reasons == ["low_quality"] * 3 + ["unscored"]


def test_score_usage_errors(docs_dir, tmp_path):
    with pytest.raises(SystemExit, match="not a scorer directory"):
        main(["score", "--input", str(docs_dir), "--scorer", str(tmp_path), "--output", str(tmp_path / "o")])
    assert not os.path.exists(tmp_path / "o")

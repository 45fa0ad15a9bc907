"""``train-recall``: the gold set, the 70/30 split and the rounds of the recall classifier (see recall.py).

Outputs in DIR: ``kept/`` (the extracted pages; ``excluded/<step>/`` the unusable ones), ``gold/`` (every labelled
page with ``metadata.label``, ``label_source`` rule|judge|round-N and ``split`` train|validation),
``recall_model.bin`` (the last round's model), ``recall.json`` (threshold, rounds, settings: what ``run
--recall-model DIR`` reads), ``recall_rounds.png``, and ``stats.json`` (the extraction funnel plus ``recall``:
recall / precision per round on the held-out split). Judge answers are cached per round under ``work/judge/``: a
re-run asks nothing twice.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field

from datatrove.data import Document
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers.jsonl import JsonlWriter

from datatrove_pipelines.executors import ExecutorConfig, build_executor
from datatrove_pipelines.quality.annotate import OracleConfig, read_documents, sample_priority
from datatrove_pipelines.stage import StageCard, StageOutput, StageRun, run_stage, write_amended_stats
from datatrove_pipelines.web.extract import ExtractionConfig
from datatrove_pipelines.web.llm import JUDGE_TASK, PageRater
from datatrove_pipelines.web.pipeline import page_steps
from datatrove_pipelines.web.recall import (
    FastTextSettings,
    code_probability,
    operating_threshold,
    precision_recall,
    train_fasttext,
)
from datatrove_pipelines.writers import kept_writer

MODEL_FILE = "recall_model.bin"
RECALL_FILE = "recall.json"
PLOT_FILE = "recall_rounds.png"


@dataclass
class RecallTrainConfig:
    inputs: list[str]
    output_dir: str
    judge: OracleConfig
    judge_sample: int = 2000  # pages without code markup judged for the gold set
    validation_fraction: float = 0.3
    rounds: int = 2  # rounds of adding judge-confirmed confident recalls (round 0 is the gold set alone)
    per_round: int = 500  # confident recalls sent to the judge per round, at most
    confident: float = 0.8  # classifier probability above which an unlabelled page is a confident recall
    target_recall: float = 0.99  # the operating point: the highest threshold with this held-out recall
    seed: int = 0
    fasttext: FastTextSettings = field(default_factory=FastTextSettings)
    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    push_to_hub: str | None = None
    hub_private: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation fraction must be in (0, 1), not {self.validation_fraction}")
        if not 0 <= self.confident <= 1:
            raise ValueError(f"confident must be a probability in [0, 1], not {self.confident}")
        if min(self.judge_sample, self.rounds, self.per_round) < 0:
            raise ValueError("judge sample, rounds and per-round must be >= 0")
        if not 0 < self.target_recall <= 1:
            raise ValueError(f"target recall must be in (0, 1], not {self.target_recall}")
        if self.executor.executor == "slurm":
            raise ValueError("train-recall trains in this process: use --executor local or ray (run scales on slurm)")

    @property
    def work_dir(self) -> str:
        return os.path.join(self.output_dir, "work")


def judge_pages(config: RecallTrainConfig, pages: list[Document], name: str) -> dict[str, int | None]:
    """The judge's verdict (1, 0, or None when it gave no answer) for each page id; one datatrove run per batch,
    whose checkpoints and completion marker make a re-run free."""
    if not pages:
        return {}
    folder = os.path.join(config.work_dir, "judge", name)
    input_dir = os.path.join(folder, "input")
    if not os.path.isdir(input_dir):  # written aside and renamed: a killed run never leaves half an input
        partial = input_dir + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        with JsonlWriter(partial, output_filename="${rank}.jsonl.gz") as writer:
            for page in pages:
                writer.write(Document(text=page.text, id=page.id, metadata={"url": page.metadata.get("url")}))
        os.rename(partial, input_dir)
    rater = PageRater(JUDGE_TASK, config.judge, os.path.join(folder, "output"), os.path.join(folder, "checkpoints"))
    executor = build_executor(
        [JsonlReader(os.path.join(folder, "input")), rater],
        ExecutorConfig(executor="local", skip_completed=config.executor.skip_completed),
        os.path.join(folder, "logs"),
        f"web_judge_{name}",
        tasks=1,
    )
    executor.run()
    verdicts: dict[str, int | None] = {}
    for route in ("kept", os.path.join("excluded", "oracle")):
        for doc in read_documents(os.path.join(folder, "output", route)):
            verdicts[str(doc.id)] = doc.metadata.get("rating")
    return verdicts


def _in_validation(doc_id: str, fraction: float, seed: int) -> bool:
    return sample_priority(doc_id, seed + 1) / 2**64 < fraction


def _evaluate(model, validation: list[tuple[Document, int]], target_recall: float) -> dict:
    scores = [code_probability(model, doc.text) for doc, _ in validation]
    labels = [label for _, label in validation]
    threshold = operating_threshold(scores, labels, target_recall)
    at_point = precision_recall(scores, labels, threshold)
    at_half = precision_recall(scores, labels, 0.5)
    unmarked = [
        (s, lab) for (doc, lab), s in zip(validation, scores, strict=True) if not doc.metadata.get("code_markup")
    ]
    curve = [precision_recall(scores, labels, t / 20) for t in range(1, 20)]
    return {
        "threshold": threshold,
        "recall": at_point["recall"],
        "precision": at_point["precision"],
        "recall_at_0.5": at_half["recall"],
        "precision_at_0.5": at_half["precision"],
        "recall_without_markup": precision_recall([s for s, _ in unmarked], [lab for _, lab in unmarked], threshold)[
            "recall"
        ],
        "validation_pages": len(labels),
        "validation_positives": sum(labels),
        "curve": curve,
    }


def train_recall(config: RecallTrainConfig, command: str | None = None) -> dict:
    """Extract the pages, build the gold set, run the rounds; returns the stats (also in DIR/stats.json)."""
    out = config.output_dir
    card = StageCard(
        pretty_name="Web pages for the code recall classifier",
        description="Pages extracted (code kept verbatim) to train Seed-Coder's fastText recall classifier for "
        "code-related web pages; the classifier, its threshold and per-round recall/precision are in "
        f"{MODEL_FILE}, {RECALL_FILE} and stats.json.",
        settings={k: v for k, v in asdict(config).items() if k not in ("inputs", "output_dir", "executor", "judge")},
    )
    output = StageOutput(out, card, command, config.push_to_hub, config.hub_private)
    stats = run_stage(
        [StageRun("extract", [*page_steps(config.inputs, config.extraction, out), kept_writer(out)])],
        config.executor,
        output,
        "web_train_recall",
    )
    pages = read_documents(os.path.join(out, "kept"))
    rule = [p for p in pages if p.metadata.get("code_markup")]
    others = sorted(
        (p for p in pages if not p.metadata.get("code_markup")), key=lambda p: sample_priority(str(p.id), config.seed)
    )
    to_judge, pool = others[: config.judge_sample], others[config.judge_sample :]
    verdicts = judge_pages(config, to_judge, "gold")
    gold: list[tuple[Document, int, str]] = [(p, 1, "rule") for p in rule]
    gold += [(p, int(verdicts[str(p.id)]), "judge") for p in to_judge if verdicts.get(str(p.id)) is not None]
    unanswered = sum(1 for p in to_judge if verdicts.get(str(p.id)) is None)
    train = [
        (p, label, source)
        for p, label, source in gold
        if not _in_validation(str(p.id), config.validation_fraction, config.seed)
    ]
    validation = [
        (p, label) for p, label, _ in gold if _in_validation(str(p.id), config.validation_fraction, config.seed)
    ]
    if not any(label for _, label, _ in train) or all(label for _, label, _ in train):
        raise SystemExit("error: the gold training split needs both code-related and other pages; give more pages")
    model_path = os.path.join(out, MODEL_FILE)
    rounds = []
    for round_index in range(config.rounds + 1):
        model = train_fasttext([(p.text, label) for p, label, _ in train], config.fasttext, model_path)
        result = {"round": round_index, "train_pages": len(train), "train_positives": sum(lab for _, lab, _ in train)}
        result.update(_evaluate(model, validation, config.target_recall))
        rounds.append(result)
        if round_index == config.rounds or not pool:
            break
        scored = sorted(((code_probability(model, p.text), p) for p in pool), key=lambda item: -item[0])
        confident = [p for probability, p in scored if probability >= config.confident][: config.per_round]
        answers = judge_pages(config, confident, f"round_{round_index + 1}")
        confirmed = [p for p in confident if answers.get(str(p.id)) == 1]
        rejected = [p for p in confident if answers.get(str(p.id)) == 0]
        train += [(p, 1, f"round-{round_index + 1}") for p in confirmed] + [
            (p, 0, f"round-{round_index + 1}") for p in rejected
        ]
        asked = {str(p.id) for p in confident}
        pool = [p for p in pool if str(p.id) not in asked]
        result.update(confident_recalls=len(confident), confirmed=len(confirmed), rejected=len(rejected))
        if not confirmed and not rejected:  # nothing new to learn from: another round would repeat this one
            break
    final = rounds[-1]
    summary = {
        "threshold": final["threshold"],
        "target_recall": config.target_recall,
        "model": MODEL_FILE,
        "fasttext": asdict(config.fasttext),
        "gold": {
            "rule": len(rule),
            "judged": len(to_judge),
            "judge_positive": sum(1 for _, lab, s in gold if s == "judge" and lab),
            "judge_negative": sum(1 for _, lab, s in gold if s == "judge" and not lab),
            "unanswered": unanswered,
            "train": sum(1 for _, _, s in train if s in ("rule", "judge")),
            "validation": len(validation),
        },
        "rounds": rounds,
    }
    _write_gold(out, train, validation)
    with open(os.path.join(out, RECALL_FILE), "w") as handle:
        json.dump(summary, handle, indent=2)
    plot_rounds(rounds, os.path.join(out, PLOT_FILE))
    stats = stats or {}
    stats["recall"] = summary
    write_amended_stats(out, stats)
    return stats


def _write_gold(out: str, train: list, validation: list) -> None:
    writer = JsonlWriter(os.path.join(out, "gold"), output_filename="${rank}.jsonl.gz")
    with writer:
        for split, rows in (("train", train), ("validation", [(p, lab, "gold") for p, lab in validation])):
            for page, label, source in rows:
                metadata = {**page.metadata, "label": label, "label_source": source, "split": split}
                writer.write(Document(text=page.text, id=page.id, metadata=metadata))


def plot_rounds(rounds: list[dict], path: str) -> None:
    """Recall and precision per round at the operating point, and the last round's precision-recall curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    indices = [r["round"] for r in rounds]
    left.plot(indices, [r["recall"] for r in rounds], "o-", label="recall (operating point)")
    left.plot(indices, [r["precision"] for r in rounds], "s-", label="precision (operating point)")
    left.plot(indices, [r["recall_without_markup"] for r in rounds], "^--", label="recall, pages without markup")
    left.set_xlabel("round")
    left.set_ylim(0, 1.05)
    left.set_xticks(indices)
    left.set_title("held-out split")
    left.legend(loc="lower right")
    curve = rounds[-1]["curve"]
    right.plot([c["recall"] for c in curve], [c["precision"] for c in curve], ".-")
    right.set_xlabel("recall")
    right.set_ylabel("precision")
    right.set_title(f"round {rounds[-1]['round']}: threshold sweep")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)

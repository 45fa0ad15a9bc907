"""``stats.json``: the funnel counters of every task of every stage merged, checked (in = kept + Σ excluded), printed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datatrove.io import get_datafolder

from datatrove_pipelines.funnel import FUNNEL_PREFIX


class FunnelInvariantError(RuntimeError):
    """Documents were lost or invented between steps: in != kept + Σ excluded."""


def _metric_total(value: Any) -> float:
    """The summed value of one datatrove MetricStats entry as stored in a stats json (a number or a dict)."""
    if isinstance(value, dict):
        return value.get("total", 0)
    return value or 0


def _as_int(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


# Reasons that take a document out of a step's flow without judging it (a sampler's unsampled documents): counted
# apart from the exclusions, as ``docs_set_aside`` / ``set_aside``; in = kept + excluded + set aside.
SET_ASIDE_REASONS = frozenset({"not_sampled"})


def _empty_step() -> dict[str, Any]:
    return {
        "docs_in": 0,
        "bytes_in": 0,
        "docs_kept": 0,
        "bytes_kept": 0,
        "docs_excluded": 0,
        "bytes_excluded": 0,
        "reasons": {},
        "notes": {},
    }


def separate_set_aside(steps: dict[str, dict[str, Any]]) -> None:
    """Move the SET_ASIDE_REASONS of each step out of its exclusions (in place)."""
    for step in steps.values():
        for reason in SET_ASIDE_REASONS & set(step["reasons"]):
            counts = step["reasons"].pop(reason)
            step["docs_excluded"] = _as_int(step["docs_excluded"] - counts["docs"])
            step["bytes_excluded"] = _as_int(step["bytes_excluded"] - counts["bytes"])
            step.setdefault("set_aside", {})[reason] = counts
            step["docs_set_aside"] = _as_int(step.get("docs_set_aside", 0) + counts["docs"])
            step["bytes_set_aside"] = _as_int(step.get("bytes_set_aside", 0) + counts["bytes"])


def _read_task_stats(logging_dir: str) -> list[list[dict[str, Any]]]:
    """Per-task stats of one datatrove run: ``<logging_dir>/stats/<rank>.json`` (each a list of per-step dicts)."""
    folder = get_datafolder(logging_dir)
    if not folder.isdir("stats"):
        return []
    tasks = []
    for name in sorted(folder.list_files("stats", glob_pattern="*.json")):
        with folder.open(name, "rt") as handle:
            tasks.append(json.load(handle))
    return tasks


def collect_funnel(logging_dirs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per funnel step (in pipeline order), the summed counters of every task of every run in ``logging_dirs``."""
    steps: dict[str, dict[str, Any]] = {}
    for logging_dir in logging_dirs:
        for task_stats in _read_task_stats(logging_dir):
            for step_stats in task_stats:
                for key, value in step_stats.get("stats", {}).items():
                    if not key.startswith(FUNNEL_PREFIX):
                        continue
                    step_name, _, rest = key[len(FUNNEL_PREFIX) :].partition("/")
                    entry = steps.setdefault(step_name, _empty_step())
                    total = _metric_total(value)
                    if rest.startswith("reason/") or rest.startswith("note/"):
                        kind, name_and_unit = rest.split("/", 1)
                        name, _, unit = name_and_unit.rpartition("/")
                        bucket = entry["reasons" if kind == "reason" else "notes"].setdefault(
                            name, {"docs": 0, "bytes": 0}
                        )
                        bucket[unit] = _as_int(bucket[unit] + total)
                    elif rest in entry:
                        entry[rest] = _as_int(entry[rest] + total)
    separate_set_aside(steps)
    return steps


REPORT_PREFIX = "report/"  # other numbers a step reports for stats.json: ``report/<section>/<name>``


def collect_reports(logging_dirs: Iterable[str]) -> dict[str, dict[str, float]]:
    """Per section, the summed ``report/<section>/<name>`` counters of every task of every run (e.g. the near-dedup
    candidate pairs per 10K documents)."""
    reports: dict[str, dict[str, float]] = {}
    for logging_dir in logging_dirs:
        for task_stats in _read_task_stats(logging_dir):
            for step_stats in task_stats:
                for key, value in step_stats.get("stats", {}).items():
                    if key.startswith(REPORT_PREFIX):
                        section, _, name = key[len(REPORT_PREFIX) :].partition("/")
                        entry = reports.setdefault(section, {})
                        entry[name] = _as_int(entry.get(name, 0) + _metric_total(value))
    return reports


def check_funnel(steps: dict[str, dict[str, Any]]) -> None:
    """Raise FunnelInvariantError unless every step and the whole funnel satisfy in = kept + Σ excluded."""
    problems = []
    for name, step in steps.items():
        reasons_docs = sum(r["docs"] for r in step["reasons"].values())
        aside = step.get("docs_set_aside", 0)
        if step["docs_in"] != step["docs_kept"] + step["docs_excluded"] + aside:
            problems.append(
                f"{name}: {step['docs_in']} in != {step['docs_kept']} kept + {step['docs_excluded']} excl"
                + (f" + {aside} set aside" if aside else "")
            )
        if reasons_docs != step["docs_excluded"]:
            problems.append(f"{name}: reasons add up to {reasons_docs}, excluded is {step['docs_excluded']}")
    ordered = list(steps.items())
    for (prev_name, prev), (name, step) in zip(ordered, ordered[1:], strict=False):
        if prev["docs_kept"] != step["docs_in"]:
            problems.append(f"{prev_name} kept {prev['docs_kept']} but {name} received {step['docs_in']}")
    if ordered:
        first, last = ordered[0][1], ordered[-1][1]
        excluded = sum(step["docs_excluded"] + step.get("docs_set_aside", 0) for step in steps.values())
        if first["docs_in"] != last["docs_kept"] + excluded:
            problems.append(f"total: {first['docs_in']} in != {last['docs_kept']} kept + {excluded} excluded")
    if problems:
        raise FunnelInvariantError("funnel invariant violated: " + "; ".join(problems))


def write_stats(output_dir: str, logging_dirs: list[str]) -> dict[str, Any]:
    """Merge the funnel counters of ``logging_dirs`` (in stage order) into ``<output_dir>/stats.json``.

    Raises FunnelInvariantError (after writing the file, so it can be inspected) if documents in != kept + Σ excluded.
    """
    steps = collect_funnel(logging_dirs)
    ordered = list(steps.values())
    stats: dict[str, Any] = {
        "steps": steps,
        "total": {
            "docs_in": ordered[0]["docs_in"] if ordered else 0,
            "bytes_in": ordered[0]["bytes_in"] if ordered else 0,
            "docs_kept": ordered[-1]["docs_kept"] if ordered else 0,
            "bytes_kept": ordered[-1]["bytes_kept"] if ordered else 0,
            "docs_excluded": sum(s["docs_excluded"] for s in ordered),
            "bytes_excluded": sum(s["bytes_excluded"] for s in ordered),
        },
    }
    if any("docs_set_aside" in s for s in ordered):
        stats["total"]["docs_set_aside"] = sum(s.get("docs_set_aside", 0) for s in ordered)
        stats["total"]["bytes_set_aside"] = sum(s.get("bytes_set_aside", 0) for s in ordered)
    reports = collect_reports(logging_dirs)
    if reports:
        stats["reports"] = reports
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    with open(os.path.join(output_dir, "stats.json"), "w") as handle:
        json.dump(stats, handle, indent=2)
    check_funnel(steps)
    return stats


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


FUNNEL_COLUMNS = ("step", "docs in", "kept", "excluded", "bytes in", "bytes kept", "reasons")
_COUNTS = ("docs_in", "docs_kept", "docs_excluded", "bytes_in", "bytes_kept")


def _reasons_cell(step: dict[str, Any], markdown: bool, top_reasons: int) -> str:
    """The reasons column: on the console the main reasons (``name=N``), notes and set-aside counts in brackets; in
    the card every reason (``name N``) and the set-aside counts."""
    reasons = sorted(step["reasons"].items(), key=lambda item: -item[1]["docs"])
    aside = step.get("set_aside", {})  # e.g. a sampler's unsampled documents
    if markdown:
        shown = ", ".join(f"{reason} {counts['docs']}" for reason, counts in reasons) or "—"
        return shown + "".join(
            f"; {reason.replace('_', ' ')} {counts['docs']:,} (set aside, not excluded)"
            for reason, counts in aside.items()
        )
    shown = ", ".join(f"{reason}={counts['docs']}" for reason, counts in reasons[:top_reasons])
    if len(reasons) > top_reasons:
        shown += f", … ({len(reasons) - top_reasons} more)"
    notes = ", ".join(
        [f"{r.replace('_', ' ')}={c['docs']} (not excluded)" for r, c in aside.items()]
        + [f"{note}={counts['docs']}" for note, counts in step["notes"].items()]
    )
    if notes:
        shown = f"{shown}  [{notes}]" if shown else f"[{notes}]"
    return shown


def format_funnel(stats: dict[str, Any], top_reasons: int = 4, markdown: bool = False) -> str:
    """The funnel table of a ``stats.json``: per step documents and bytes in / kept / excluded, and the reasons.

    The one rendering of the funnel: fixed-width text for the console (the ``top_reasons`` main reasons, bytes in
    KB/MB), or with ``markdown=True`` the markdown table of the dataset card (every reason, exact counts)."""
    total = stats["total"]
    kept_share = 100 * total["bytes_kept"] / total["bytes_in"] if total["bytes_in"] else 0.0
    rows = [(name, step, _reasons_cell(step, markdown, top_reasons)) for name, step in stats["steps"].items()]
    if markdown:
        lines = ["| " + " | ".join(FUNNEL_COLUMNS) + " |", "|---|---:|---:|---:|---:|---:|---|"]
        for name, counts, reasons in [*rows, ("**total**", total, "")]:
            cells = [name, *(f"{counts[key]:,}" for key in _COUNTS)]
            lines.append("| " + " | ".join(cells) + (f" | {reasons} |" if reasons else " | |"))
        return "\n".join(lines)

    def line(name: str, docs_in, kept, excluded, bytes_in, bytes_kept, reasons: str) -> str:
        return f"{name:<16} {docs_in:>9} {kept:>9} {excluded:>9} {bytes_in:>10} {bytes_kept:>10}  {reasons}"

    def text_row(name: str, counts: dict[str, Any], reasons: str) -> str:
        docs_in, kept, excluded, bytes_in, bytes_kept = (counts[key] for key in _COUNTS)
        return line(name, docs_in, kept, excluded, _human_bytes(bytes_in), _human_bytes(bytes_kept), reasons)

    header = line(*FUNNEL_COLUMNS)
    return "\n".join(
        [header, "-" * len(header)]
        + [text_row(*row) for row in rows]
        + ["-" * len(header), text_row("total", total, f"({kept_share:.1f}% of bytes kept)")]
    )

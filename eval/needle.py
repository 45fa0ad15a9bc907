"""Needle in code: a small function planted at several depths of long real code; the model must recall its value.

The haystack is the running interpreter's own standard library (found through ``sysconfig``), so every machine has
it and nothing is downloaded. For each context length and depth, a function ``needle_<key>()`` returning a random
six-digit number is inserted at a file boundary near that depth, and the prompt ends with
``assert needle_<key>() == `` for the model to complete. Lengths go up to the model's context window (the paper
reports 100% up to 32K). The stdlib differs between Python versions, so the haystack text does too; the construction
is deterministic for one interpreter.
"""

from __future__ import annotations

import random
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONTEXT_LENGTHS = (1024, 2048, 4096, 8192, 16384, 32768)
DEFAULT_DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
# Tokens kept free at the end of the window for the question and the answer.
ANSWER_RESERVE_TOKENS = 64
# Used to size the haystack when no tokenizer is given (e.g. the reference self-check).
CHARS_PER_TOKEN = 3.5


@dataclass(frozen=True)
class NeedleExample:
    task_id: str
    context_tokens: int
    depth: float
    prompt: str
    answer: str


def _stdlib_chunks() -> Iterator[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        yield f"# ---- file: {path.name} ----\n{text.rstrip()}\n\n"


def _haystack_chunks(n_chars: int) -> list[str]:
    chunks, total = [], 0
    while total < n_chars:
        added = False
        for chunk in _stdlib_chunks():
            chunks.append(chunk)
            total += len(chunk)
            added = True
            if total >= n_chars:
                break
        if not added:
            raise RuntimeError("no readable standard-library files found for the needle haystack")
    return chunks


def context_lengths_for(max_context: int, lengths: tuple[int, ...] = DEFAULT_CONTEXT_LENGTHS) -> list[int]:
    """The default lengths that fit the window, plus the full window itself."""
    usable = max_context - ANSWER_RESERVE_TOKENS
    chosen = [length for length in lengths if length <= usable]
    if usable > 0 and usable not in chosen and (not chosen or usable > chosen[-1]):
        chosen.append(usable)
    return chosen


def _build(haystack_chars: int, depth: float, needle: str, question: str) -> str:
    chunks = _haystack_chunks(haystack_chars)
    text = "".join(chunks)[:haystack_chars]
    # Cut the haystack back to the last complete line, and insert at the line boundary nearest the depth.
    text = text[: text.rfind("\n") + 1] if "\n" in text else text
    position = int(len(text) * depth)
    boundary = text.rfind("\n", 0, position) + 1 if position < len(text) else len(text)
    return text[:boundary] + needle + text[boundary:] + question


def build_examples(
    max_context: int,
    count_tokens: Callable[[str], int] | None = None,
    depths: tuple[float, ...] = DEFAULT_DEPTHS,
    lengths: tuple[int, ...] = DEFAULT_CONTEXT_LENGTHS,
    seed: int = 0,
) -> list[NeedleExample]:
    """Examples for every (length, depth); ``count_tokens`` (the model's tokenizer) makes the lengths exact-ish."""
    rng = random.Random(seed)
    examples = []
    for length in context_lengths_for(max_context, lengths):
        for depth in depths:
            key = f"{rng.getrandbits(32):08x}"
            answer = str(rng.randint(100000, 999999))
            needle = (
                f"\n\ndef needle_{key}():\n"
                f'    """The value to remember: recall it when asked about needle_{key}."""\n'
                f"    return {answer}\n\n\n"
            )
            question = f"\n\n# What does needle_{key}() return? It was defined above.\nassert needle_{key}() == "
            chars = int(length * CHARS_PER_TOKEN)
            prompt = _build(chars, depth, needle, question)
            if count_tokens is not None:
                # One proportional correction is enough: code tokenizes at a stable chars-per-token rate.
                measured = count_tokens(prompt)
                chars = max(1, int(chars * length / max(measured, 1)))
                prompt = _build(chars, depth, needle, question)
                while count_tokens(prompt) > length and chars > 1:
                    chars = int(chars * 0.97)
                    prompt = _build(chars, depth, needle, question)
            examples.append(NeedleExample(f"needle/{length}/{depth:g}", length, depth, prompt, answer))
    return examples


def recalled(generation: str, answer: str) -> bool:
    """Exact match of the first number-like token of the continuation."""
    words = generation.strip().replace(")", " ").replace(";", " ").split()
    return bool(words) and words[0].rstrip(",") == answer

"""Every place where the suite relies on lighteval internals (private attributes, private methods), in one module.

lighteval 0.13's CLI imports every built-in task and fails offline, its Registry constructor does the same, its
prompt manager decides chat-vs-plain per model (we need per document), and its models carry an on-disk sample cache
whose key ignores the data. The workarounds below touch private names; ``PRIVATE_NAMES`` lists them all and
tests/test_eval_lighteval_adapter.py fails loudly, naming the missing one, when the installed lighteval changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch


@contextmanager
def preserved_grad_mode() -> Iterator[None]:
    """Restore torch's grad mode on exit: lighteval's transformers model module runs ``torch.set_grad_enabled(False)``
    at import (and its model's ``__init__`` again), which turned autograd off for the whole process, so a training
    step run later in the same process (a test session, a notebook) silently learned nothing."""
    enabled = torch.is_grad_enabled()
    try:
        yield
    finally:
        torch.set_grad_enabled(enabled)


with preserved_grad_mode():  # lighteval.pipeline imports lighteval.models.transformers.transformers_model
    from lighteval.pipeline import Pipeline
    from lighteval.tasks.prompt_manager import PromptManager
    from lighteval.tasks.registry import Registry
    from lighteval.tasks.requests import Doc

PINNED_VERSION = "0.13"

# (object, private attribute) pairs used below; checked by the adapter test.
PRIVATE_NAMES: tuple[tuple[Any, str], ...] = (
    (Registry, "_get_full_task_list_from_input_string"),
    (Registry, "_update_task_configs"),
    (Registry, "load_tasks"),
    (Pipeline, "_init_tasks_and_requests"),
    (PromptManager, "_prepare_chat_template"),
    (PromptManager, "_prepare_plain_text"),
)
# Attributes set on instances (not checkable on the class): the registry's _load_multilingual, _custom_tasks,
# _task_registry, task_to_configs; a model's _cache, prompt_manager, use_chat_template, generation_config_dict.


class NoCache:
    """Stands where lighteval's on-disk SampleCache would: results must never be reused across data or prompts."""

    def _init_registry(self, registry: Any) -> None:
        pass


def disable_sample_cache(model: Any) -> None:
    """The Pipeline hands its registry to ``model._cache``; our NoCache ignores it, so nothing is cached on disk."""
    model._cache = NoCache()


def is_chat(doc: Doc) -> bool:
    return bool(doc.specific) and doc.specific.get("mode") == "instruct"


class ModePromptManager(PromptManager):
    """lighteval's prompt manager, but chat template or plain text is decided per document, not per model."""

    def prepare_prompt(self, doc: Doc) -> str:
        if is_chat(doc):
            if self.tokenizer is None or not getattr(self.tokenizer, "chat_template", None):
                raise ValueError("instruct mode needs a tokenizer with a chat template")
            return self._prepare_chat_template(doc)
        return self._prepare_plain_text(doc)


def per_document_prompts(model: Any, mode: str) -> Any:
    """Give a lighteval model the per-document prompt manager, and turn its sample cache off."""
    model.prompt_manager = ModePromptManager(use_chat_template=mode == "instruct", tokenizer=model.tokenizer)
    # With a chat template lighteval stops at EOS only; base prompts need their stop sequences, so plain mode
    # unless the run is instruct (raw FIM/needle answers are cut to their first line by the scorer either way).
    model.use_chat_template = mode == "instruct"
    disable_sample_cache(model)
    return model


def chat_messages(doc: Doc) -> list[dict[str, str]]:
    """The chat messages lighteval would build for a document (system prompt, few-shot turns, query)."""
    return PromptManager(use_chat_template=True)._prepare_chat_template(doc, tokenize=False)


def enable_sampling(model: Any) -> None:
    """lighteval passes temperature but not do_sample; without it transformers decodes greedily (and refuses n>1)."""
    model.generation_config_dict["do_sample"] = True


def only_these_tasks(configs: dict[str, Any], tasks: str) -> Registry:
    """A Registry holding only ``configs``, built without ``Registry.__init__`` (it imports every built-in task)."""
    registry = Registry.__new__(Registry)
    registry.tasks_list = registry._get_full_task_list_from_input_string(tasks)
    registry._load_multilingual = False
    registry._custom_tasks = None
    registry._task_registry = configs
    registry.task_to_configs = registry._update_task_configs()
    return registry


def suite_pipeline_class(
    configs: dict[str, Any], rows_of: Callable[[str], list[dict[str, Any]]], hub_tasks: tuple[str, ...] = ()
) -> type[Pipeline]:
    """A Pipeline whose registry holds only ``configs`` and whose rows come from ``rows_of(task_name)``.

    Tasks named in ``hub_tasks`` load their dataset the lighteval way (LiveCodeBench).
    """

    class SuitePipeline(Pipeline):
        def _init_tasks_and_requests(self, tasks: str) -> None:
            self.registry = only_these_tasks(configs, tasks)
            self.tasks_dict = self.registry.load_tasks()
            for task in self.tasks_dict.values():
                if task.name in hub_tasks:
                    task.dataset = task.download_dataset_worker(task)
                else:
                    task.dataset = {"test": rows_of(task.name)}
                task.num_samples = list(task.config.num_samples or [1])
            self.documents_dict = {
                task.full_name: task.get_docs(self.pipeline_parameters.max_samples)
                for task in self.tasks_dict.values()
            }
            self.sampling_docs = {}
            for docs in self.documents_dict.values():
                for doc in docs:
                    for sampling in doc.sampling_methods:
                        self.sampling_docs.setdefault(sampling, []).append(doc)
            self.evaluation_tracker.task_config_logger.log(self.tasks_dict)

    return SuitePipeline


def turn_off_cache_after_init(pipeline: Pipeline) -> None:
    """The Pipeline hands the registry to ``model._cache`` (a NoCache); None then turns lighteval's disk cache off."""
    pipeline.model._cache = None

"""The suite's reach into lighteval internals is all in eval.lighteval_adapter; this fails loudly when it breaks."""

from __future__ import annotations

import inspect

import lighteval
from lighteval.tasks.requests import Doc

from eval import lighteval_adapter as adapter
from eval.suite import TaskOptions


def test_pinned_version_and_every_private_name_exists():
    assert lighteval.__version__.startswith(adapter.PINNED_VERSION), (
        f"lighteval {lighteval.__version__} installed, eval.lighteval_adapter was written for "
        f"{adapter.PINNED_VERSION}: re-check every name in PRIVATE_NAMES"
    )
    missing = [f"{owner.__name__}.{name}" for owner, name in adapter.PRIVATE_NAMES if not hasattr(owner, name)]
    assert not missing, f"lighteval no longer has {missing}: update eval/lighteval_adapter.py"
    # the private methods we call keep the parameters we pass
    assert "tokenize" in inspect.signature(adapter.PromptManager._prepare_chat_template).parameters
    assert list(inspect.signature(adapter.Pipeline._init_tasks_and_requests).parameters) == ["self", "tasks"]


def test_registry_of_only_our_tasks_loads_and_prompts_per_document(benchmarks_dir):
    from eval.tasks import build_task_configs, task_rows

    options = TaskOptions(data_dir=str(benchmarks_dir), task_ids=frozenset({"HumanEval/0", "HumanEval/1"}))
    configs = {c.name: c for c in build_task_configs(["humaneval"], options)}
    registry = adapter.only_these_tasks(configs, "humaneval")
    tasks = registry.load_tasks()
    (task,) = tasks.values()
    task.dataset = {"test": task_rows("humaneval", options)}
    docs = task.get_docs()
    assert sorted(doc.specific["task_id"] for doc in docs) == ["HumanEval/0", "HumanEval/1"]
    manager = adapter.ModePromptManager(use_chat_template=False, tokenizer=None)
    assert manager.prepare_prompt(docs[0]) == docs[0].query  # base documents: raw text, no template
    chat = Doc(query="Write f.", choices=[""], gold_index=0, task_name="t", specific={"mode": "instruct"})
    assert adapter.chat_messages(chat)[-1] == {"role": "user", "content": "Write f."}


def test_importing_eval_backends_leaves_autograd_on():
    """lighteval's transformers model module runs ``torch.set_grad_enabled(False)`` at import; eval must not pass that
    on to a training step later in the same process. A fresh interpreter, so that nothing was imported before."""
    import subprocess
    import sys

    check = (
        "import sys, torch\n"
        "import eval.backends, eval.run\n"
        "from eval.backends import transformers_model\n"
        "import lighteval.models.transformers.transformers_model as lighteval_model\n"
        "assert 'lighteval.models.transformers.transformers_model' in sys.modules\n"
        "print(torch.is_grad_enabled())\n"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"


def test_preserved_grad_mode_restores_either_mode():
    import torch

    for before in (True, False):
        torch.set_grad_enabled(before)
        with adapter.preserved_grad_mode():
            torch.set_grad_enabled(not before)
        assert torch.is_grad_enabled() is before
    torch.set_grad_enabled(True)

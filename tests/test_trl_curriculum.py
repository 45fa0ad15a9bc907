"""The GRPO curriculum: rolling pass rates fed by the code reward, prompts dropped above 87.5%, sampler skips them."""

from __future__ import annotations

from transformers import TrainerControl, TrainerState, TrainingArguments
from trl.trainer.utils import RepeatSampler

from trl_scripts.rewards import CodeExecutionReward, CurriculumCallback, CurriculumSampler, PassRateTracker

RIGHT = "```python\ndef add(a, b):\n    return a + b\n```"
WRONG = "```python\ndef add(a, b):\n    return 0\n```"
TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]


def test_prompt_dropped_once_its_pass_rate_exceeds_the_threshold():
    tracker = PassRateTracker(threshold=0.875, window=16, min_rollouts=8)
    reward = CodeExecutionReward(timeout_s=8.0, test_timeout_s=1.0, tracker=tracker)
    callback = CurriculumCallback(tracker, num_prompts=3)
    state, control = TrainerState(), TrainerControl()
    args = TrainingArguments(output_dir="unused", use_cpu=True, report_to=[])

    # Prompt 0: 7 of 8 rollouts pass (0.875, not above the threshold); prompt 1: 8 of 8; prompt 2: none.
    completions = [RIGHT] * 7 + [WRONG] + [RIGHT] * 8 + [WRONG] * 8
    prompt_ids = [0] * 8 + [1] * 8 + [2] * 8
    rewards = reward(completions, tests=[TESTS] * 24, language=["python"] * 24, prompt_id=prompt_ids)
    assert rewards[:8] == [1.0] * 7 + [0.0] and rewards[8:16] == [1.0] * 8 and rewards[16:] == [0.0] * 8
    callback.on_step_end(args, state, control)
    assert tracker.retired == {1}
    assert tracker.pass_rate(0) == 0.875 and not control.should_training_stop

    # One more passing rollout lifts prompt 0 to 8/9 > 0.875: dropped at the next step end.
    reward([RIGHT], tests=[TESTS], language=["python"], prompt_id=[0])
    callback.on_step_end(args, state, control)
    assert tracker.retired == {0, 1}
    assert state.log_history[-1]["curriculum/retired"] == 2


def test_min_rollouts_and_rolling_window():
    tracker = PassRateTracker(threshold=0.5, window=4, min_rollouts=4)
    for passed in (True, True, True):
        tracker.record(7, passed)
    assert tracker.update() == []  # 3 rollouts: too few to judge
    for passed in (False, False, False):
        tracker.record(7, passed)
    assert tracker.pass_rate(7) == 0.25 and tracker.update() == []  # only the last 4 count


def test_sampler_never_yields_a_retired_prompt_and_keeps_groups():
    tracker = PassRateTracker()
    base = RepeatSampler(list(range(6)), mini_repeat_count=2, batch_size=3, repeat_count=2, shuffle=True, seed=0)
    sampler = CurriculumSampler(base, prompt_ids=list(range(6)), tracker=tracker)
    assert sorted(set(sampler)) == list(range(6))
    tracker.retired.update({1, 4})
    indices = list(sampler)
    assert len(indices) == len(base) and not {1, 4} & set(indices)
    groups = [indices[i : i + 2] for i in range(0, len(indices), 2)]
    assert all(a == b for a, b in groups)  # each prompt still comes as a group of num_generations


def test_callback_stops_training_when_every_prompt_is_solved():
    tracker = PassRateTracker(threshold=0.5, window=4, min_rollouts=1)
    tracker.record(0, True)
    control = TrainerControl()
    CurriculumCallback(tracker, num_prompts=1).on_step_end(None, TrainerState(), control)
    assert control.should_training_stop

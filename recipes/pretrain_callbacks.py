"""Throughput and MFU for transformers' Trainer: a TrainerCallback whose numbers reach every logger (TensorBoard).

Why a callback: the Trainer already logs loss and learning rate; tokens/s, time to first step and model FLOPs
utilisation are added to the same log records, so TensorBoard, the console and ``trainer_state.json`` all see them.
"""

from __future__ import annotations

import time

from transformers import TrainerCallback

# Dense bf16 peak TFLOP/s per device (vendor datasheets, no sparsity); matched against torch's device name.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "H800": 989.0, "A100": 312.0, "A800": 312.0, "L40S": 362.0}


def detect_peak_tflops() -> float | None:
    """Peak bf16 TFLOP/s of the current CUDA device, or None (CPU, unknown GPU: pass --peak_tflops)."""
    import torch

    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


class ThroughputCallback(TrainerCallback):
    """Adds ``tokens_per_second`` (over the logging interval, all devices), ``tokens_seen``,
    ``time_to_first_step`` and, when the peak is known, ``mfu`` to each training log record."""

    def __init__(
        self,
        tokens_per_step: int,
        flops_per_token: float,
        peak_tflops_per_device: float | None,
        num_devices: int,
        tokens_before: int = 0,
        started_at: float | None = None,
    ):
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token
        self.peak_flops = peak_tflops_per_device * 1e12 * num_devices if peak_tflops_per_device else None
        self.tokens_before = tokens_before
        self.created = time.perf_counter() if started_at is None else started_at  # time to first step counts from here
        self.time_to_first_step: float | None = None
        self.interval_start: float | None = None
        self.interval_cpu_start = 0.0
        self.interval_step = 0
        self.steady_tokens = 0
        self.steady_seconds = 0.0
        # CPU seconds of this process over the same steady intervals: on a shared machine wall time swings with the
        # load while CPU time per token mostly does not (benchmarks print both)
        self.steady_cpu_seconds = 0.0
        self.first_interval_done = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.interval_step = state.global_step

    def on_step_begin(self, args, state, control, **kwargs):
        if self.interval_start is None:
            self.interval_start, self.interval_cpu_start = time.perf_counter(), time.process_time()
            self.interval_step = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if self.time_to_first_step is None:
            self.time_to_first_step = time.perf_counter() - self.created

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs or self.interval_start is None:
            return
        now, cpu_now = time.perf_counter(), time.process_time()
        steps = state.global_step - self.interval_step
        seconds = now - self.interval_start
        extra = {"tokens_seen": self.tokens_before + state.global_step * self.tokens_per_step}
        if steps > 0 and seconds > 0:
            tokens_per_second = steps * self.tokens_per_step / seconds
            extra["tokens_per_second"] = tokens_per_second
            if self.peak_flops:
                extra["mfu"] = tokens_per_second * self.flops_per_token / self.peak_flops
            if self.first_interval_done:  # the first interval (warm-up, allocations, compile) is not steady
                self.steady_tokens += steps * self.tokens_per_step
                self.steady_seconds += seconds
                self.steady_cpu_seconds += cpu_now - self.interval_cpu_start
            self.first_interval_done = True
        if self.time_to_first_step is not None:
            extra["time_to_first_step"] = self.time_to_first_step
        logs.update(extra)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(extra)
        self.interval_start, self.interval_cpu_start, self.interval_step = now, cpu_now, state.global_step

    @property
    def steady_tokens_per_second(self) -> float | None:
        return self.steady_tokens / self.steady_seconds if self.steady_seconds else None

    @property
    def steady_tokens_per_cpu_second(self) -> float | None:
        return self.steady_tokens / self.steady_cpu_seconds if self.steady_cpu_seconds else None

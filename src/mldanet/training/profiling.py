"""``mldanet train --profile [N]``: a torch.profiler trace of N (default 5) training steps.

The first two steps are skipped (allocator and oneDNN/cuDNN warm-up would dominate them), one
is profiled as warm-up, then N are recorded. The Chrome trace goes to ``<out>/profile/trace.json``
(open it in https://ui.perfetto.dev or chrome://tracing) and the operator table, sorted by self
time, to ``<out>/profile/operators.txt``. Training continues normally afterwards.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, schedule

SKIPPED_STEPS = 2
WARMUP_STEPS = 1


class StepProfiler:
    """Call :meth:`step` after every training step; it records the configured window and then stops."""

    def __init__(self, out: str | Path, steps: int) -> None:
        if steps < 0:
            raise ValueError(f"--profile {steps}: the number of profiled steps must be ≥ 0")
        self.folder = Path(out) / "profile"
        self.steps = steps
        self.remaining = SKIPPED_STEPS + WARMUP_STEPS + steps if steps else 0
        self._profiler: profile | None = None
        if steps:
            activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
            self._profiler = profile(
                activities=activities,
                schedule=schedule(wait=SKIPPED_STEPS, warmup=WARMUP_STEPS, active=steps, repeat=1),
                on_trace_ready=self._write,
                record_shapes=True,
            )
            self._profiler.start()

    @property
    def active(self) -> bool:
        return self._profiler is not None

    def step(self) -> None:
        if self._profiler is None:
            return
        self._profiler.step()
        self.remaining -= 1
        if self.remaining <= 0:
            self.close()

    def close(self) -> None:
        """Stop profiling (also on an early end of training: a partial window is still written)."""
        if self._profiler is not None:
            profiler, self._profiler = self._profiler, None
            profiler.stop()

    def _write(self, profiler: profile) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        profiler.export_chrome_trace(str(self.folder / "trace.json"))
        sort_by = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
        table = profiler.key_averages().table(sort_by=sort_by, row_limit=40)
        (self.folder / "operators.txt").write_text(f"{self.steps} training steps\n\n{table}\n")
        print(f"profile of {self.steps} steps: {self.folder / 'trace.json'}, {self.folder / 'operators.txt'}", flush=True)

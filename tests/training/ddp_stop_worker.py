"""Run by the DDP stop test under ``torchrun``: ``ddp_stop_worker.py CONFIG.yaml OUT``.

Rank 1 alone sends itself SIGINT as its second step starts; every rank writes the step it
stopped after (or "finished") to ``OUT/stopped_rank<R>.txt``.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from mldanet.config import load_config_file
from mldanet.training import distributed
from mldanet.training.datasets import build_datasets
from mldanet.training.trainer import Trainer, TrainingInterrupted


def main(config_path: str, out: str) -> None:
    config = load_config_file(config_path)
    trainer = Trainer(config, build_datasets(config)[0], progress=False)
    real_step = trainer.train_step

    def step(batch, epoch):
        if trainer.dist.rank == 1 and trainer.state.step == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(batch, epoch)

    trainer.train_step = step
    try:
        trainer.train()
        stopped = "finished"
    except TrainingInterrupted as error:
        stopped = f"{error.step} {error.signal_name}"
    Path(out, f"stopped_rank{trainer.dist.rank}.txt").write_text(stopped)
    distributed.cleanup()


if __name__ == "__main__":
    main(*sys.argv[1:])

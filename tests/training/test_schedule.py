import math

import pytest

from mldanet.config import OptimConfig
from mldanet.training.schedule import lr_factor


def test_step_decay_matches_monodepth2_steplr():
    optim = OptimConfig(schedule="step", step_epochs=2, gamma=0.1)
    steps_per_epoch = 5
    factors = [lr_factor(s, steps_per_epoch, 50, optim) for s in range(30)]
    # epochs 0-1: 1, epochs 2-3: 0.1, epochs 4-5: 0.01
    assert factors[:10] == [1.0] * 10
    assert factors[10:20] == pytest.approx([0.1] * 10)
    assert factors[20:30] == pytest.approx([0.01] * 10)


def test_warmup_is_linear_then_cosine_reaches_the_floor():
    optim = OptimConfig(schedule="cosine", warmup_steps=4)
    assert [lr_factor(s, 10, 100, optim) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lr_factor(4, 10, 100, optim) == pytest.approx(1.0)
    mid = 4 + (100 - 4) / 2
    assert lr_factor(int(mid), 10, 100, optim) == pytest.approx(0.05 + 0.95 * 0.5, abs=1e-9)
    assert lr_factor(100, 10, 100, optim) == pytest.approx(0.05)
    values = [lr_factor(s, 10, 100, optim) for s in range(4, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert not any(math.isnan(v) for v in values)

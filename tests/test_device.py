import pytest
import torch

from mldanet.device import resolve_device


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the error is for machines without CUDA")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="--device cuda was asked for, but PyTorch sees no CUDA device"):
        resolve_device("cuda")


def test_unknown_device_names_the_value():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_usable_cores_is_the_affinity_mask_and_workers_leave_one_core(monkeypatch):
    import os

    from mldanet.device import fitted_workers, usable_cores

    if hasattr(os, "sched_getaffinity"):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
        assert usable_cores() == 3
    assert [fitted_workers(4, cores) for cores in (1, 2, 3, 8)] == [0, 1, 2, 4]
    assert fitted_workers(0, 16) == 0

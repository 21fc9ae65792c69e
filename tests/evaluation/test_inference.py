"""Batched inference: every input form gives the closed-form disparities of a known stub network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mldanet.evaluation.inference import predict_disparities
from mldanet.evaluation.protocol import post_process_disparity
from mldanet.types import Sample, collate_samples


class ColumnRampNet(nn.Module):
    """disparity = sigmoid(mean colour + column ramp): known in closed form and not mirror-symmetric."""

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(1.0))

    def forward(self, image):
        ramp = torch.linspace(0.0, 1.0, image.shape[-1])
        return {0: torch.sigmoid(self.gain * image.mean(1, keepdim=True) + ramp), 1: image[:, :1, ::2, ::2]}


def expected_scaled(images: list[torch.Tensor], mirrored: bool = False) -> np.ndarray:
    """Scaled disparity with min_depth 0.1, max_depth 100, computed in NumPy float64."""
    out = []
    for image in images:
        x = image.double().numpy().mean(0)
        ramp = np.linspace(0.0, 1.0, x.shape[-1])
        if mirrored:
            ramp = ramp[::-1]
        out.append(0.01 + (10.0 - 0.01) / (1.0 + np.exp(-(x + ramp))))
    return np.stack(out)


def make_sample(image: torch.Tensor) -> Sample:
    return Sample(images={0: image}, net_images={0: image}, K=torch.eye(4)[None], inv_K=torch.eye(4)[None])


class SampleSet(Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return make_sample(self.images[index])


@pytest.fixture
def images():
    generator = torch.Generator().manual_seed(0)
    return [torch.rand(3, 8, 12, generator=generator) for _ in range(5)]


def test_every_input_form_gives_the_closed_form(images):
    net = ColumnRampNet()
    expected = expected_scaled(images)
    forms = {
        "tensors": images,
        "samples": [make_sample(image) for image in images],
        "dataset": SampleSet(images),
        "loader": DataLoader(SampleSet(images), batch_size=2, collate_fn=collate_samples),
        "tensor loader": DataLoader(images, batch_size=3),
    }
    for name, form in forms.items():
        for batch_size in (1, 2, 5):
            out = predict_disparities(net, form, batch_size=batch_size, device="cpu", progress=False)
            assert out.dtype == np.float32 and out.shape == (5, 8, 12), name
            np.testing.assert_allclose(out, expected, rtol=1e-6, err_msg=name)


def test_depth_range_and_mode_are_respected(images):
    net = ColumnRampNet().train()
    out = predict_disparities(net, images, batch_size=2, progress=False, min_depth=1.0, max_depth=10.0)
    sigmoid = (expected_scaled(images) - 0.01) / (10.0 - 0.01)
    np.testing.assert_allclose(out, 0.1 + (1.0 - 0.1) * sigmoid, rtol=1e-6)
    assert net.training  # restored after running in eval mode


def test_post_processing_blends_the_mirrored_pass(images):
    out = predict_disparities(ColumnRampNet(), images, batch_size=2, post_process=True, progress=False)
    # The mirrored image, flipped back, sees the ramp reversed.
    expected = post_process_disparity(expected_scaled(images), expected_scaled(images, mirrored=True))
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_bad_inputs_are_named(images):
    mixed = images[:2] + [torch.rand(3, 8, 16)]
    with pytest.raises(ValueError, match=r"input 2 is \(3, 8, 16\)"):
        predict_disparities(ColumnRampNet(), mixed, batch_size=4, progress=False)
    with pytest.raises(ValueError, match=r"input 1: expected a 3×H×W image tensor or a Sample, got \(8, 12\)"):
        predict_disparities(ColumnRampNet(), [images[0], images[1][0]], progress=False)
    with pytest.raises(ValueError, match="no images"):
        predict_disparities(ColumnRampNet(), [], progress=False)
    with pytest.raises(ValueError, match="batch size 0"):
        predict_disparities(ColumnRampNet(), images, batch_size=0, progress=False)

"""``mldanet export-onnx``: the depth network as an ONNX graph, checked against PyTorch.

The graph takes ``image`` (B×3×H×W float32 in [0, 1], H×W fixed at export, batch dynamic) and
returns ``disp_0``, the network's scale-0 sigmoid disparity B×1×H×W in (0, 1) — with
``--all-scales`` also ``disp_1`` … ``disp_3`` at H/2^s×W/2^s. Consumers turn it into depth like
``disp_to_depth``: scaled = 1/max_depth + (1/min_depth − 1/max_depth)·disp, depth = 1/scaled,
× stereo_scale for metres; these numbers are stored in the model's metadata (``min_depth``,
``max_depth``, ``stereo_scale``, where ``stereo_scale`` is empty for monocular (M) models).

The export uses the TorchScript-based exporter (``dynamo=False``), which needs no extra packages
and handles the attention's bmm/softmax. After writing, onnxruntime runs the file on a fixed
random batch of two and the largest absolute difference from PyTorch is printed; above the
tolerance (1e-4) the command fails.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn


TOLERANCE = 1e-4


class ExportCheckError(RuntimeError):
    """The exported graph does not reproduce PyTorch within the tolerance."""


class DisparityOutputs(nn.Module):
    """Wraps a depth net so that it returns tensors (ONNX has no dict outputs): scale 0, or all scales."""

    def __init__(self, net: nn.Module, scales: tuple[int, ...]):
        super().__init__()
        self.net = net
        self.scales = scales

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        disps = self.net(image)
        return tuple(disps[s] for s in self.scales)


def max_onnx_difference(path: str | Path, wrapper: nn.Module, image: Tensor) -> float:
    """Largest |ONNX − PyTorch| over all outputs for ``image`` (B×3×H×W), run with onnxruntime on CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_outputs = session.run(None, {"image": image.numpy()})
    with torch.no_grad():
        torch_outputs = wrapper(image)
    return max(float(np.max(np.abs(o - t.numpy()))) for o, t in zip(onnx_outputs, torch_outputs))


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    height: int | None = None,
    width: int | None = None,
    opset: int = 17,
    all_scales: bool = False,
    tolerance: float = TOLERANCE,
) -> float:
    """Export a checkpoint's depth net to ``out`` and return the checked max |ONNX − PyTorch|.

    ``height``/``width`` default to the checkpoint's training resolution. Raises
    :class:`ExportCheckError` when the difference exceeds ``tolerance``.
    """
    import onnx

    from mldanet.models.checkpoint import load_depth_net

    net, config = load_depth_net(checkpoint, "cpu")
    height = height or config.data.height
    width = width or config.data.width
    for flag, size in (("--height", height), ("--width", width)):
        if size <= 0 or size % 32:
            raise ValueError(f"{flag} {size} must be a positive multiple of 32")
    scales = tuple(sorted(config.model.scales)) if all_scales else (0,)
    wrapper = DisparityOutputs(net, scales).eval()
    names = [f"disp_{s}" for s in scales]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # Shape checks inside forward become constants in the trace: expected, H×W are fixed.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding")  # strided slices stay as ops
        torch.onnx.export(
            wrapper, (example,), buffer, dynamo=False, opset_version=opset, input_names=["image"],
            output_names=names, dynamic_axes={name: {0: "batch"} for name in ["image", *names]},
        )
    model = onnx.load_model_from_string(buffer.getvalue())
    metadata = {
        "producer": "mldanet",
        "min_depth": str(config.model.min_depth),
        "max_depth": str(config.model.max_depth),
        "stereo_scale": str(config.depth_scale) if config.train.metric else "",
        "training_mode": config.train.mode,
        "input_size": f"{height}x{width}",
    }
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    difference = max_onnx_difference(out, wrapper, example)
    if not difference <= tolerance:
        raise ExportCheckError(
            f"{out}: onnxruntime differs from PyTorch by up to {difference:.3g} "
            f"(tolerance {tolerance:g}); the file is kept for inspection"
        )
    return difference

"""Parameter counts and FLOPs of the networks (batch 1), written to the ``model_stats`` section of RESULTS.md.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix
products; element-wise work, pooling and the guided filter's box means are not counted) on
the meta device, so nothing is computed. GMAC = GFLOP / 2.

    .venv/bin/python -m benchmarks.model_stats
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.results import write_section

from mldanet.models import build_depth_net, build_pose_net

SIZES = ((320, 96), (640, 192), (1024, 320))  # W×H; 320×96 for comparison with docs/METHOD.md §8.5
DEPTH_ROWS = (
    [
        (variant, backbone, False, size)
        for size in SIZES
        for backbone in ("resnet18", "resnet50")
        for variant in ("mlda", "baseline")
    ]
    # the specification's decoder (the default until 2026-12-07)
    + [("mlda", "resnet18", True, size) for size in SIZES[:2]]
)
COMPONENTS = (
    "encoder",
    "image_branch",
    "global_attention",
    "decoder.channel_attention",
    "decoder.structure_attention",
    "decoder",
)


def count_flops(net: nn.Module, *inputs: torch.Tensor) -> FlopCounterMode:
    with torch.no_grad(), FlopCounterMode(display=False, depth=4) as counter:
        net(*inputs)
    return counter


def module_flops(counter: FlopCounterMode, name: str) -> int:
    """FLOPs inside module ``name``; containers (ModuleList/ModuleDict) are never called, so sum their children."""
    counts = counter.get_flop_counts()
    if name in counts:
        return sum(counts[name].values())
    children = [k for k in counts if k.startswith(name + ".") and k.count(".") == name.count(".") + 1]
    return sum(sum(counts[k].values()) for k in children)


def parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def main() -> None:
    lines = [
        "| network | backbone | W×H | parameters (M) | GFLOP | GMAC |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    breakdown: dict[str, int] = {}
    for variant, backbone, decoder_attention, (width, height) in DEPTH_ROWS:
        with torch.device("meta"):
            net = build_depth_net(backbone, variant, decoder_attention=decoder_attention).eval()
            image = torch.empty(1, 3, height, width)
        counter = count_flops(net, image)
        flops = counter.get_total_flops()
        name = f"{variant}{' (with decoder CA)' if decoder_attention and variant == 'mlda' else ''}"
        lines.append(
            f"| depth: {name} | {backbone} | {width}×{height} | {parameters(net) / 1e6:.2f} "
            f"| {flops / 1e9:.2f} | {flops / 2e9:.2f} |"
        )
        print(lines[-1], flush=True)
        if (variant, backbone, decoder_attention, width) == ("mlda", "resnet18", True, 640):
            breakdown = {part: module_flops(counter, f"DepthNet.{part}") for part in COMPONENTS}
    with torch.device("meta"):
        pose = build_pose_net().eval()
        frame = torch.empty(1, 3, 192, 640)
    flops = count_flops(pose, frame, frame).get_total_flops()
    lines.append(
        f"| pose (two frames) | resnet18 | 640×192 | {parameters(pose) / 1e6:.2f} "
        f"| {flops / 1e9:.2f} | {flops / 2e9:.2f} |"
    )
    print(lines[-1])

    attention = breakdown["decoder.channel_attention"] + breakdown["decoder.structure_attention"]
    decoder_rest = breakdown["decoder"] - attention
    parts = {
        "ResNet-18 branch f_C": breakdown["encoder"],
        "image branch f_D": breakdown["image_branch"],
        "global attention (10 CA + fusion)": breakdown["global_attention"],
        "decoder channel attention (k = 1..4)": breakdown["decoder.channel_attention"],
        "structure attention (1×1 convs)": breakdown["decoder.structure_attention"],
        "decoder ConvBlocks + heads": decoder_rest,
    }
    total = sum(parts.values())
    lines += [
        "",
        "Where MLDA-Net R18 640×192 with the decoder CA (`model.decoder_attention=true`) spends its multiply-accumulates "
        "(without it, the shipped default, the decoder channel attention's row is gone):",
        "",
        "| part | GMAC | share |",
        "| --- | ---: | ---: |",
        *(f"| {part} | {value / 2e9:.3f} | {100 * value / total:.1f} % |" for part, value in parts.items()),
    ]
    path = write_section("model_stats", "\n".join(lines), title="Model statistics")
    print(f"wrote {path}")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help prints, not measures
    main()

"""torch.hub entry points: ``torch.hub.load(repo_dir, "mldanet", source="local", checkpoint=...)``.

Works from a clone without installing the package: the clone's ``src`` goes onto ``sys.path``
when ``mldanet`` is not importable.
"""

import importlib.util
import sys
from pathlib import Path

dependencies = ["torch", "torchvision", "numpy", "cv2", "yaml"]

if importlib.util.find_spec("mldanet") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))


def mldanet(checkpoint=None, backbone="resnet18", variant="mlda", pretrained=False, **kw):
    """MLDA-Net depth network in eval mode: image B×3×H×W in [0, 1] → {scale: B×1×H/2^s×W/2^s disparity}.

    checkpoint: an ``mldanet`` checkpoint file (or run folder); its config decides the architecture
                and its weights are loaded (the other arguments must then stay at their defaults).
    Without it: a new network from ``backbone`` ("resnet18" | "resnet50"), ``variant``
    ("mlda" | "baseline"), ``pretrained`` (ImageNet encoder weights through torchvision) and any
    further ``build_depth_net`` keyword (``scales``, ``decoder_attention``, ...).
    Keyword ``device`` (default "cpu") places the network.
    """
    from mldanet.models import build_depth_net
    from mldanet.models.checkpoint import load_depth_net

    device = kw.pop("device", "cpu")
    if checkpoint is not None:
        if kw or (backbone, variant, pretrained) != ("resnet18", "mlda", False):
            raise ValueError("with a checkpoint the architecture comes from its config: pass no other options")
        net, _ = load_depth_net(checkpoint, device)
        return net
    return build_depth_net(backbone, variant, pretrained=pretrained, **kw).to(device).eval()

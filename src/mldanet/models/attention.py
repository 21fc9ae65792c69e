"""MLDA-Net's attention modules (docs/METHOD.md §3–§4): channel (CA), global (GA) and structure (SA) attention."""

from __future__ import annotations

import math
import typing

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mldanet.config import Affinity, StructureAttentionForm
from mldanet.models.guided_filter import fast_guided_filter


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 conv (zero padding, no bias) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


AFFINITIES = typing.get_args(Affinity)
# Cosine affinities lie in [−1, 1]; this spreads them so that a row's weights can differ by up
# to e^(2·5) ≈ 2·10⁴ — selective, but never one-hot however large the features grow.
COSINE_TEMPERATURE = 5.0


class ChannelAttention(nn.Module):
    """CA(f) = θ·R(H(f)) + H(f), θ = softmax(M) over the last axis, M from R(Q(f)) and R(V(f)).

    H, Q, V are 3×3 convs c→c without bias (stored as one c→3c conv: the same maps, one call);
    R reshapes c×h×w to c×hw, so θ is c×c. The affinity M (``affinity``):

    - ``"raw"``: R(Q)·R(V)ᵀ, the paper's form; its softmax saturates to one-hot rows at
      realistic feature sizes.
    - ``"scaled"``: R(Q)·R(V)ᵀ / sqrt(hw), the specification's form (docs/METHOD.md §3). Still
      quadratic in the features: in training the decoder's activations grow and its rows went
      one-hot (max weight 0.97–1.0) within 30 steps of the demo, after which its gradients vanish.
    - ``"cosine"`` (default): τ·cos(Q_i, V_j), the dot product of the L2-normalised rows, τ =
      :data:`COSINE_TEMPERATURE`. Bounded and invariant to the features' scale, so CA(f) stays
      linear in the features' magnitude and cannot saturate.

    Input and output B×c×h×w; channels-last inputs stay channels-last without copies.
    """

    def __init__(self, channels: int, affinity: str = "cosine") -> None:
        super().__init__()
        if affinity not in AFFINITIES:
            raise ValueError(f"channel attention affinity {affinity!r} is not one of {', '.join(AFFINITIES)}")
        self.channels = channels
        self.affinity = affinity
        self.hqv = nn.Conv2d(channels, 3 * channels, 3, padding=1, bias=False)

    def attention(self, query: Tensor, value: Tensor) -> Tensor:
        """θ: B×c×c row-stochastic channel affinity from Q(f), V(f) (each B×c×h×w)."""
        q, v = query.flatten(2), value.flatten(2)
        if self.affinity == "cosine":
            # The eps keeps an all-zero channel (a dead ReLU map) at affinity 0 instead of NaN.
            q = F.normalize(q, dim=-1, eps=1e-6) * COSINE_TEMPERATURE
            v = F.normalize(v, dim=-1, eps=1e-6)
        affinity = torch.bmm(q, v.transpose(1, 2))
        if self.affinity == "scaled":
            affinity = affinity * (1.0 / math.sqrt(q.shape[-1]))
        return affinity.softmax(dim=-1)

    def forward(self, features: Tensor) -> Tensor:
        batch, channels, height, width = features.shape
        hidden, query, value = self.hqv(features).chunk(3, dim=1)
        theta = self.attention(query, value)
        flat = hidden.flatten(2)  # a view in both memory formats
        if features.is_contiguous(memory_format=torch.channels_last):
            # Transposed product: the result is laid out hw×c, i.e. channels-last.
            out = torch.baddbmm(flat.transpose(1, 2), flat.transpose(1, 2), theta.transpose(1, 2)).transpose(1, 2)
        else:
            out = torch.baddbmm(flat, theta, flat)
        return out.view(batch, channels, height, width)


class GlobalAttention(nn.Module):
    """f_G = ConvBNReLU3×3(concat(CA(f_C), CA(f_D))): fuses one MLFE level's two branches. B×c×h×w each."""

    def __init__(self, channels: int, affinity: str = "cosine") -> None:
        super().__init__()
        self.backbone_attention = ChannelAttention(channels, affinity)
        self.image_attention = ChannelAttention(channels, affinity)
        self.fuse = conv_bn_relu(2 * channels, channels)

    def forward(self, backbone_features: Tensor, image_features: Tensor) -> Tensor:
        return self.fuse(
            torch.cat((self.backbone_attention(backbone_features), self.image_attention(image_features)), dim=1)
        )


# "none" is the decoder's (no module at all), not a form of this one.
STRUCTURE_ATTENTION_FORMS = tuple(f for f in typing.get_args(StructureAttentionForm) if f != "none")


class StructureAttention(nn.Module):
    """Attention-weighted fast guided filter that refines upsampled decoder features.

    f'_l = f_h downsampled ×2 (2×2 mean, which is bilinear ×½ with half-pixel centres); the gate
    T = sigmoid(ψ(ReLU(θ(f'_l) + φ(f_l)))) (1×1 convs, ψ to one channel) weighs each
    low-resolution pixel in the guided filter. Three forms (``model.structure_attention``):

    - ``"guided"`` (default; the specification's form, docs/METHOD.md §4.3): weights T², the filter
      fits f_l ≈ a·f'_l + b and its output A·f_h + B replaces f_h.
    - ``"seed"`` (the source's Eq. 8 as written): weights T², the filter fits f'_l ≈ a·f_l + b and
      its output A·f_h + B replaces f_h.
    - ``"residual"`` (the default before the component study): weights ε + (1 − ε)·T²
      (ε = ``min_weight``) and the filter as in ``"guided"``, mixed into f_h as a refinement:
      out = f_h + γ ⊙ (A·f_h + B − f_h), with a learned per-channel γ that starts at
      ``initial_mix`` (small, so that f_h passes almost whole, and not 0, so that the gate's
      convolutions get gradients from the first step).

    Why the default is guided, and when the residual form is the better choice, with the
    measurements: docs/METHOD.md §4.3 and §10 (row 8).
    """

    def __init__(
        self,
        channels: int,
        radius: int = 2,
        eps: float = 1e-2,
        form: str = "guided",
        min_weight: float = 0.05,
        initial_mix: float = 0.1,
    ) -> None:
        super().__init__()
        if form not in STRUCTURE_ATTENTION_FORMS:
            raise ValueError(f"structure attention form {form!r} is not one of {', '.join(STRUCTURE_ATTENTION_FORMS)}")
        if not 0 < min_weight < 1:
            raise ValueError(f"structure attention min_weight={min_weight} must be in (0, 1)")
        self.theta = nn.Conv2d(channels, channels, 1)
        self.phi = nn.Conv2d(channels, channels, 1)
        self.psi = nn.Conv2d(channels, 1, 1)
        self.radius = radius
        self.eps = eps
        self.form = form
        self.min_weight = min_weight
        self.gamma = nn.Parameter(torch.full((1, channels, 1, 1), initial_mix)) if form == "residual" else None

    def gate(self, guide: Tensor, low: Tensor) -> Tensor:
        """T = sigmoid(ψ(ReLU(θ(f'_l) + φ(f_l)))): B×1×h×w from f'_l and f_l (each B×c×h×w)."""
        return torch.sigmoid(self.psi(F.relu(self.theta(guide) + self.phi(low))))

    def forward(self, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
        """low f_l: B×c×h×w, high f_h: B×c×2h×2w → (refined B×c×2h×2w, gate T B×1×h×w)."""
        if high.shape[-2:] != (2 * low.shape[-2], 2 * low.shape[-1]):
            raise ValueError(f"high-resolution features {tuple(high.shape)} must be twice {tuple(low.shape)}")
        guide = F.avg_pool2d(high, 2)
        gate = self.gate(guide, low)
        weight = gate * gate
        if self.form == "seed":
            return fast_guided_filter(low, guide, high, weight, self.radius, self.eps), gate
        if self.form == "guided":
            return fast_guided_filter(guide, low, high, weight, self.radius, self.eps), gate
        weight = self.min_weight + (1.0 - self.min_weight) * weight
        filtered = fast_guided_filter(guide, low, high, weight, self.radius, self.eps)
        return torch.addcmul(high, self.gamma, filtered - high), gate

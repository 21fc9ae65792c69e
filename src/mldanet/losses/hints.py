"""Depth-hint proxy loss (Watson et al., "Self-Supervised Monocular Depth Hints", ICCV 2019).

A precomputed stereo depth (the hint) is used as supervision only where it explains the target
better than the network does: the stereo partner warped with the hint must have a lower
photometric error than the prediction's minimum reprojection error *and* than the identity
(automasking) error. There the prediction is pulled towards the hint with log(1 + |depth − hint|).

The hint's error does not depend on the prediction, so it is computed once per batch.
Invalid hint pixels get +1000 so they never win (photometric errors of [0, 1] images are ≤ 1).
"""

from __future__ import annotations

from torch import Tensor

from mldanet.geometry import warp
from mldanet.losses.photometric import photometric_error
from mldanet.losses.reprojection import masked_mean

INVALID_PENALTY = 1000.0


def hint_error(
    target: Tensor,
    stereo_image: Tensor,
    hint: Tensor,
    hint_valid: Tensor,
    K: Tensor,
    inv_K: Tensor,
    stereo_T: Tensor,
    alpha: float = 0.85,
) -> Tensor:
    """Photometric error of the stereo partner warped with the hint depth, +1000 where invalid.

    target, stereo_image: B×3×H×W; hint: B×1×H×W depth (0 where invalid); hint_valid: B×1×H×W
    (1 valid, 0 invalid); K, inv_K, stereo_T: B×4×4 → B×1×H×W.
    """
    if hint.shape != hint_valid.shape or hint.shape[-2:] != target.shape[-2:]:
        raise ValueError(
            f"depth hint {tuple(hint.shape)} and hint mask {tuple(hint_valid.shape)} must both be "
            f"B×1×H×W at the image size {tuple(target.shape[-2:])}"
        )
    warped = warp(stereo_image, hint, K, inv_K, stereo_T)
    return photometric_error(warped, target, alpha) + INVALID_PENALTY * (1.0 - hint_valid.to(target.dtype))


def hint_mask(hint_err: Tensor, reprojection_min: Tensor, identity_min: Tensor | None = None) -> Tensor:
    """Where the hint wins: hint error < prediction's minimum error and < the identity error.

    All B×1×H×W (identity_min None without automasking) → bool B×1×H×W.
    """
    mask = hint_err < reprojection_min
    if identity_min is not None:
        mask &= hint_err < identity_min
    return mask


def hint_loss(depth: Tensor, hint: Tensor, mask: Tensor) -> Tensor:
    """log(1 + |depth − hint|) averaged over the masked pixels (depth-hints' normalisation:
    Σ mask·log(1 + |depth − hint|) / (Σ mask + 1e-7), so 0 when no pixel uses its hint).

    depth, hint: B×1×H×W, mask: bool B×1×H×W → scalar.
    """
    return masked_mean((depth - hint).abs().log1p(), mask)

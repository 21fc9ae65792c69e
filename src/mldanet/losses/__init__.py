"""Self-supervised losses (docs/METHOD.md §7); :func:`compute_losses` is the trainer's entry point."""

from mldanet.losses.hints import hint_error, hint_loss, hint_mask
from mldanet.losses.photometric import photometric_error, ssim
from mldanet.losses.reprojection import MinReprojection, add_tie_noise, masked_mean, min_reprojection
from mldanet.losses.smoothness import edge_aware_smoothness
from mldanet.losses.total import compute_losses
from mldanet.losses.terms import LOSS_TERMS, LossTerm, ScaleInputs, register_loss_term
from mldanet.losses.weighting import LossWeighting, build_loss_weighting, multiscale_sum, multiscale_weights

__all__ = [
    "LOSS_TERMS",
    "LossTerm",
    "ScaleInputs",
    "register_loss_term",
    "LossWeighting",
    "MinReprojection",
    "add_tie_noise",
    "build_loss_weighting",
    "compute_losses",
    "edge_aware_smoothness",
    "hint_error",
    "hint_loss",
    "hint_mask",
    "masked_mean",
    "min_reprojection",
    "multiscale_sum",
    "multiscale_weights",
    "photometric_error",
    "ssim",
]

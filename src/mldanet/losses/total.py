"""The training loss: :func:`compute_losses` is the one entry point the trainer calls.

Per scale s (docs/METHOD.md §7.5), with the scale's disparity upsampled bilinearly to the full H×W and
converted to depth in ``depth_range`` (``model.min_depth``, ``model.max_depth``), every term
registered in :mod:`mldanet.losses.terms`:

- reprojection: every source (−1, +1, "s": whatever ``transforms`` holds) is warped into the
  target at full resolution; per pixel the minimum photometric error over sources, automasked
  against the identity errors; the term is its mean over the pixels that are not masked out.
- hints: where the hint's error beats both the prediction's minimum and the identity error,
  log(1 + |depth − hint|), averaged over those pixels.
- smoothness: edge-aware smoothness of the scale's own disparity against the target resized to
  that scale (area averaging).

Masks follow depth-hints (which the published MLDA-Net code builds on): a pixel is dropped from
the reprojection term only where an identity error is the smallest of [prediction, identity,
hint], so a pixel where the hint wins keeps its reprojection loss too; the reprojection and hint
terms are means over their masked pixels (Σ mask·loss / (Σ mask + 1e-7)).

Each term is then combined over scales with Eq. 12 and the terms with the ``LossWeighting``.
Work that does not depend on the prediction (stacking the sources, the identity errors with
their tie-breaking noise, the hint's warp and error, the resized targets) is done once per
batch, and all sources are warped and compared in one call per scale. Losses are computed in
float32 whatever the networks ran in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mldanet.config import LossConfig, ModelConfig
from mldanet.geometry import disp_to_depth, warp
from mldanet.losses.hints import hint_error, hint_mask
from mldanet.losses.photometric import photometric_error
from mldanet.losses.reprojection import add_tie_noise, min_reprojection
from mldanet.losses.terms import LOSS_TERMS, ScaleInputs
from mldanet.losses.weighting import LossWeighting, multiscale_sum
from mldanet.types import STEREO, Batch, FrameId, LossResult

DEPTH_RANGE = (ModelConfig.min_depth, ModelConfig.max_depth)  # monodepth2's range in training units


def compute_losses(
    disps: dict[int, Tensor],
    batch: Batch,
    transforms: dict[FrameId, Tensor],
    config: LossConfig,
    weighting: LossWeighting,
    noise_seed: Tensor | None = None,
    depth_range: tuple[float, float] = DEPTH_RANGE,
) -> LossResult:
    """The total training loss and its logged terms.

    disps: scale s → B×1×(H/2^s)×(W/2^s) sigmoid disparity. batch: ``images[f]`` B×3×H×W for the
    target 0 and every source, ``K``/``inv_K`` B×S×4×4 (scale 0 is used: all warps run at full
    resolution), optional ``depth_hint``/``hint_mask`` B×1×H×W. transforms: source frame id →
    B×4×4 frame-0 → source transform (pose network for ±1, ``batch.stereo_T`` for "s").
    noise_seed: B integer seeds for the automasking tie noise (one generator per sample), or
    None for the global RNG. depth_range: (min, max) depth the sigmoid output maps to (the
    model's ``min_depth``, ``max_depth``).

    Hints are used when ``config.use_hints`` and ``batch.depth_hint`` is given; they need the
    stereo partner, so a hint without ``transforms["s"]`` is an error (set ``loss.use_hints``
    false or drop the hints for mono training).

    ``terms`` (detached): ``reprojection/<s>``, ``hints/<s>``, ``smoothness/<s>`` and
    ``total/<s>`` (the scale's terms weighted with the current effective weights) per scale;
    ``reprojection``, ``hints``, ``smoothness`` after Eq. 12; ``weight/<term>``; and
    ``log_var/<term>`` for the uncertainty weighting.
    """
    sources = list(transforms)
    _check_inputs(disps, batch, transforms, sources)
    target = batch.images[0]
    height, width = target.shape[-2:]
    K, inv_K = batch.K[:, 0], batch.inv_K[:, 0]
    source_images = torch.stack([batch.images[f] for f in sources])
    source_T = torch.stack([transforms[f] for f in sources])
    alpha = config.ssim_alpha

    identity = None
    if config.automask:
        identity = add_tie_noise(_by_sample(photometric_error(source_images, target, alpha)), noise_seed)

    hint_err = None
    if config.use_hints and batch.depth_hint is not None:
        if STEREO not in transforms:
            raise ValueError(
                "depth hints need the stereo partner: pass transforms['s'] (batch.stereo_T), "
                "or set loss.use_hints=false / drop the hints for mono training"
            )
        if batch.hint_mask is None:
            raise ValueError("batch.depth_hint is given without batch.hint_mask")
        hint_err = hint_error(
            target, batch.images[STEREO], batch.depth_hint, batch.hint_mask, K, inv_K, transforms[STEREO], alpha
        )

    per_scale: dict[str, list[Tensor]] = {name: [] for name in LOSS_TERMS}
    terms: dict[str, Tensor] = {}
    scales = sorted(disps)
    for scale in scales:
        disp = disps[scale].float()
        full = disp if disp.shape[-2:] == (height, width) else F.interpolate(
            disp, size=(height, width), mode="bilinear", align_corners=False
        )
        _, depth = disp_to_depth(full, *depth_range)
        warped = warp(source_images, depth, K, inv_K, source_T)
        best = min_reprojection(_by_sample(photometric_error(warped, target, alpha)), identity)

        keep = best.automask
        hints_here = None
        if hint_err is not None:
            hints_here = hint_mask(hint_err, best.loss, best.identity)
            keep = keep | hints_here
        inputs = ScaleInputs(disp, depth, target, best, keep, hints_here, batch)
        scale_terms = {name: value for name, term in LOSS_TERMS.items() if (value := term.compute(inputs)) is not None}

        for name, value in scale_terms.items():
            per_scale[name].append(value)
            terms[f"{name}/{scale}"] = value.detach()

    combined = {name: multiscale_sum(values) for name, values in per_scale.items() if values}
    total = weighting(combined)

    weights = weighting.weight_tensors()
    for scale in scales:
        terms[f"total/{scale}"] = sum(w * terms[f"{name}/{scale}"] for name, w in weights.items() if name in combined)
    terms.update({name: value.detach() for name, value in combined.items()})
    terms.update({f"weight/{name}": w for name, w in weights.items() if name in combined})
    terms.update({f"log_var/{name}": s for name, s in weighting.log_variances().items() if name in combined})
    return LossResult(total=total, terms=terms)


def _by_sample(errors: Tensor) -> Tensor:
    """S×B×1×H×W per-source errors → the B×S×H×W layout of the reprojection functions (a view)."""
    return errors.squeeze(2).transpose(0, 1)


def _check_inputs(
    disps: dict[int, Tensor], batch: Batch, transforms: dict[FrameId, Tensor], sources: list[FrameId]
) -> None:
    if not disps:
        raise ValueError("compute_losses needs at least one disparity scale")
    if not sources:
        raise ValueError("compute_losses needs at least one source transform (frame -1, 1 or 's')")
    if 0 not in batch.images:
        raise ValueError(f"batch.images has no target frame 0 (frames: {list(batch.images)})")
    target = batch.images[0]
    size = target.shape[0]
    for frame in sources:
        if frame == 0:
            raise ValueError("transforms must not contain the target frame 0")
        if frame not in batch.images:
            raise ValueError(f"no image for source frame {frame!r} in batch.images (frames: {list(batch.images)})")
        if batch.images[frame].shape != target.shape:
            raise ValueError(
                f"image of frame {frame!r} has shape {tuple(batch.images[frame].shape)}, target {tuple(target.shape)}"
            )
        if transforms[frame].shape != (size, 4, 4):
            raise ValueError(
                f"transform for frame {frame!r} has shape {tuple(transforms[frame].shape)}, expected ({size}, 4, 4)"
            )
    if batch.K.dim() != 4 or batch.K.shape[0] != size or batch.K.shape[-2:] != (4, 4):
        raise ValueError(f"batch.K must be B×S×4×4 (one K per scale), got {tuple(batch.K.shape)}")
    for scale, disp in disps.items():
        if disp.dim() != 4 or disp.shape[:2] != (size, 1):
            raise ValueError(f"disparity of scale {scale} must be B×1×h×w with B={size}, got {tuple(disp.shape)}")

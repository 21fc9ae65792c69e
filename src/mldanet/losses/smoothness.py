"""Edge-aware smoothness of the disparity (Godard et al. 2017), on mean-normalised disparity.

Dividing by the per-image mean disparity makes the term scale-invariant, so it cannot be reduced
by shrinking all disparities (monodepth2). Gradients are down-weighted by exp(−|∂I|) so that
disparity may jump where the image has an edge.
"""

from __future__ import annotations

from torch import Tensor


def edge_aware_smoothness(disp: Tensor, image: Tensor) -> Tensor:
    """mean |∂x d̂|·exp(−mean_c |∂x I|) + mean |∂y d̂|·exp(−mean_c |∂y I|), d̂ = d / mean_hw(d).

    disp: B×1×h×w, image: B×3×h×w (the target resized to the disparity's size) → scalar.
    """
    if disp.shape[-2:] != image.shape[-2:] or disp.shape[0] != image.shape[0]:
        raise ValueError(
            f"smoothness needs the image at the disparity's size: disp {tuple(disp.shape)}, image {tuple(image.shape)}"
        )
    norm = disp / (disp.mean(dim=(2, 3), keepdim=True) + 1e-7)
    grad_x = (norm[..., :, :-1] - norm[..., :, 1:]).abs()
    grad_y = (norm[..., :-1, :] - norm[..., 1:, :]).abs()
    edge_x = (image[..., :, :-1] - image[..., :, 1:]).abs().mean(dim=1, keepdim=True)
    edge_y = (image[..., :-1, :] - image[..., 1:, :]).abs().mean(dim=1, keepdim=True)
    return (grad_x * (-edge_x).exp()).mean() + (grad_y * (-edge_y).exp()).mean()

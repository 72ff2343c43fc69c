"""Differentiable fusion of fixed-view predictions and the pseudo-renderer (Lin et al. 2018).

Both are pure tensor functions without parameters. Conventions: orthographic cameras as in
`recon_core.geometry`; a camera-frame point (x, y, depth) means (x, y, -depth) in the
camera's coordinates (it looks down -Z).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "pixel_grid",
    "fuse",
    "RenderedViews",
    "pseudo_render",
    "consistent_points",
    "EMPTY_LOGIT",
]

EMPTY_LOGIT = -20.0
"""Mask logit reported for pixels no point lands in (a probability of about 2e-9)."""


def pixel_grid(size: int, intrinsic: np.ndarray) -> torch.Tensor:
    """Camera-frame (x, y) of every pixel centre of an orthographic view: (2, size, size),
    rows top to bottom (v), columns left to right (u)."""
    centres = torch.arange(size, dtype=torch.float64) + 0.5
    x = (centres - float(intrinsic[0, 2])) / float(intrinsic[0, 0])
    y = -(centres - float(intrinsic[1, 2])) / float(intrinsic[1, 1])
    grid = torch.stack([x[None, :].expand(size, size), y[:, None].expand(size, size)])
    return grid.float()


def fuse(xyz: torch.Tensor, extrinsics: torch.Tensor) -> torch.Tensor:
    """Fixed-view predictions -> one point cloud in the object frame.

    xyz: (B, N, 3, S, S) camera-frame (x, y, depth) per view; extrinsics: (N, 4, 4)
    world-to-camera of the fixed views. Returns (B, N*S*S, 3), view-major then row-major."""
    batch, views, _, rows, cols = xyz.shape
    rotation = extrinsics[:, :3, :3].to(xyz.dtype)
    translation = extrinsics[:, :3, 3:].to(xyz.dtype)
    # world = R^T (c - t) with c = (x, y, -depth): one (3, 3) x (3, S*S) product per view
    # on the contiguous coordinate planes, then a single transpose to point rows
    flip = torch.tensor([1.0, 1.0, -1.0], dtype=xyz.dtype, device=xyz.device)
    linear = rotation.transpose(1, 2) * flip
    offset = -(rotation.transpose(1, 2) @ translation)
    world = torch.matmul(linear, xyz.reshape(batch, views, 3, rows * cols)) + offset
    return world.transpose(2, 3).reshape(batch, views * rows * cols, 3)


class RenderedViews(NamedTuple):
    """Pseudo-rendered novel views, each (B, K, S, S)."""

    depth: torch.Tensor
    """Depth of the nearest point per pixel (0 where none): differentiable in the points."""
    mask_logit: torch.Tensor
    """Mask logit of that nearest point (EMPTY_LOGIT where none): differentiable."""
    hit: torch.Tensor
    """True where at least one point landed in the pixel."""
    collision: torch.Tensor
    """True where the winning sub-pixel received more than one point."""


_NO_POINT = torch.iinfo(torch.int64).max
_CHUNK = 1 << 20
"""Point-view pairs projected at a time: a few MB per temporary, so the dozen passes over
them run in cache instead of streaming the whole batch through memory each time."""


def pseudo_render(
    points: torch.Tensor,
    mask_logit: torch.Tensor,
    extrinsics: torch.Tensor,
    intrinsic: np.ndarray | torch.Tensor,
    size: int,
    upsample: int = 5,
) -> RenderedViews:
    """Project ``points`` (B, P, 3) with ``mask_logit`` (B, P) into K orthographic views
    (``extrinsics`` (B, K, 4, 4)) as Lin et al.'s pseudo-renderer does: a z-buffer
    ``upsample`` times finer than the ``size`` x ``size`` output keeps the nearest point per
    fine pixel, and each output pixel takes the nearest of its fine pixels.

    The nearest of the nearest per fine pixel is the nearest point of the whole output
    pixel, so no fine buffer is built: one scatter-min over (depth, point index) packed into
    an int64 finds every output pixel's winner deterministically (ties go to the lowest
    point index), and a second pass counts the points sharing the winner's fine pixel (a
    collision when more than one). Time and memory grow with the number of points, not with
    upsample^2 x pixels. Gradients reach the winning points and their mask logits only.
    """
    batch, count, _ = points.shape
    views = extrinsics.shape[1]
    device = points.device
    shape = (batch, views, size, size)
    pixels = size * size
    if count == 0:  # an empty cloud renders nothing
        empty = torch.zeros(shape, dtype=torch.bool, device=device)
        return RenderedViews(
            torch.zeros(shape, dtype=points.dtype, device=device),
            torch.full(shape, EMPTY_LOGIT, dtype=mask_logit.dtype, device=device),
            empty,
            empty,
        )
    intrinsic = torch.as_tensor(np.asarray(intrinsic), dtype=points.dtype, device=device)
    rotation = extrinsics[..., :3, :3].to(points.dtype)
    translation = extrinsics[..., :3, 3].to(points.dtype)
    with torch.no_grad():
        matrix = _fine_projection(rotation, translation, intrinsic, upsample)
        step = max(1, _CHUNK // (views * count))
        parts = [
            _winners(points[i : i + step].detach(), matrix[i : i + step], size, upsample)
            for i in range(0, batch, step)
        ]
        winner, hit, collision = (torch.cat(part) for part in zip(*parts, strict=True))
        first = torch.arange(batch, device=device).repeat_interleave(views * pixels) * count
        winner += first  # row of the winner in points.reshape(-1, 3)
    hit = hit.view(batch, views, pixels)
    chosen = points.reshape(-1, 3).index_select(0, winner).view(batch, views, pixels, 3)
    axis = rotation[:, :, None, 2, :]  # depth = -(R_z . p + t_z)
    depth = -((chosen * axis).sum(-1) + translation[..., 2:3])
    out_depth = torch.where(hit, depth, torch.zeros((), dtype=depth.dtype, device=device))
    logits = mask_logit.reshape(-1).index_select(0, winner).view(batch, views, pixels)
    empty_logit = torch.full((), EMPTY_LOGIT, dtype=logits.dtype, device=device)
    out_logit = torch.where(hit, logits, empty_logit)
    return RenderedViews(
        out_depth.view(shape), out_logit.view(shape), hit.view(shape), collision.view(shape)
    )


def _fine_projection(rotation, translation, intrinsic, upsample: int) -> torch.Tensor:
    """(B, K, 3, 4) matrices taking an object-frame point to (fine u, fine v, depth)."""
    batch, views = rotation.shape[:2]
    scale_u, scale_v = intrinsic[0, 0] * upsample, -intrinsic[1, 1] * upsample
    matrix = torch.empty(batch, views, 3, 4, dtype=rotation.dtype, device=rotation.device)
    matrix[:, :, 0, :3] = scale_u * rotation[:, :, 0]
    matrix[:, :, 0, 3] = scale_u * translation[:, :, 0] + intrinsic[0, 2] * upsample
    matrix[:, :, 1, :3] = scale_v * rotation[:, :, 1]
    matrix[:, :, 1, 3] = scale_v * translation[:, :, 1] + intrinsic[1, 2] * upsample
    matrix[:, :, 2, :3] = -rotation[:, :, 2]
    matrix[:, :, 2, 3] = -translation[:, :, 2]
    return matrix


def _winners(points: torch.Tensor, matrix: torch.Tensor, size: int, upsample: int):
    """The z-buffer of `pseudo_render` for a few shapes: ``points`` (C, P, 3) (detached),
    ``matrix`` (C, K, 3, 4) from `_fine_projection`. Returns, per output pixel (C*K*size^2),
    the winning point's index in its shape (0 where none), hit and collision."""
    chunk, count, _ = points.shape
    views = matrix.shape[1]
    device = points.device
    fine, pixels = size * upsample, size * size
    projected = torch.baddbmm(
        matrix[..., 3].reshape(chunk, views * 3, 1),
        matrix[..., :3].reshape(chunk, views * 3, 3),
        points.transpose(1, 2),
    ).view(chunk, views, 3, count)
    fu, fv, depth = projected.unbind(2)
    fu, fv = fu.floor(), fv.floor()
    valid = (fu >= 0) & (fu < fine) & (fv >= 0) & (fv < fine) & (depth > 0)
    # fine pixel and output pixel of every point: integers, exact in floating point
    fine_id = fv * fine + fu
    coarse = torch.floor(fv / upsample) * size + torch.floor(fu / upsample)
    total = chunk * views * pixels  # invalid points go to the spare bin ``total``
    first = torch.arange(chunk * views, device=device).view(chunk, views, 1) * pixels
    index = torch.where(valid, coarse.to(torch.int64) + first, total).view(-1)
    del coarse, valid, projected
    # float32 depth bits order like the depths themselves (all positive here)
    key = depth.to(torch.float32).view(torch.int32).to(torch.int64)
    key <<= 32
    key |= torch.arange(count, device=device)
    best = torch.full((total + 1,), _NO_POINT, dtype=torch.int64, device=device)
    best.scatter_reduce_(0, index, key.view(-1), reduce="amin")
    del key
    best = best[:total]
    hit = best != _NO_POINT
    winner = torch.where(hit, best & 0xFFFFFFFF, 0)
    # points in the winner's fine pixel: a collision when more than one
    winner_fine = fine_id.view(chunk * views, count).gather(1, winner.view(-1, pixels))
    winner_fine = torch.cat([winner_fine.view(-1), winner_fine.new_full((1,), -1.0)])
    same = (fine_id.view(-1) == winner_fine.index_select(0, index)).to(torch.int32)
    landed = torch.zeros(total + 1, dtype=torch.int32, device=device)
    landed.scatter_add_(0, index, same)
    return winner, hit, (landed[:total] > 1) & hit


def consistent_points(
    points: torch.Tensor,
    mask_logit: torch.Tensor,
    extrinsics: torch.Tensor,
    intrinsic: np.ndarray | torch.Tensor,
    max_violations: int = 0,
) -> torch.Tensor:
    """Which fused points of one shape the fixed views' silhouettes agree on (inference).

    points: (N*S*S, 3), one shape's fused cloud in `fuse`'s order; mask_logit: (N, S, S),
    its fixed-view mask logits; extrinsics: (N, 4, 4). Returns (N*S*S,) bool: the point's
    own mask logit is positive and it projects outside the silhouette (the predicted mask
    dilated by one pixel) of at most ``max_violations`` fixed views. Every point of a surface lies
    inside every view's silhouette, so this is the visual-hull test: it drops the points a
    view's smoothed depth puts between a foreground edge and the background."""
    views, size, _ = mask_logit.shape
    on = mask_logit > 0
    dtype, device = points.dtype, points.device
    with torch.no_grad():
        dilated = torch.nn.functional.max_pool2d(on[:, None].to(dtype), 3, 1, 1)
        silhouette = dilated.reshape(views, -1) > 0
        intrinsic = torch.as_tensor(np.asarray(intrinsic), dtype=dtype, device=device)
        rotation = extrinsics[:, :3, :3].to(dtype)
        translation = extrinsics[:, :3, 3].to(dtype)
        cam = torch.einsum("vij,pj->vpi", rotation, points) + translation[:, None]
        col = torch.floor(intrinsic[0, 0] * cam[..., 0] + intrinsic[0, 2])
        row = torch.floor(-intrinsic[1, 1] * cam[..., 1] + intrinsic[1, 2])
        inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
        pixel = (row.clamp(0, size - 1) * size + col.clamp(0, size - 1)).to(torch.int64)
        violations = (~(inside & silhouette.gather(1, pixel))).sum(0)
    return on.reshape(-1) & (violations <= max_violations)

"""Slow references of `recon_core.fusion`'s fast ops, one point at a time: the tests compare
the two on random inputs, and benchmarks/bench_pointcloud.py times them."""

from __future__ import annotations

import numpy as np
import torch

from recon_core.fusion import EMPTY_LOGIT, RenderedViews

__all__ = ["fuse_naive", "pseudo_render_naive", "consistent_points_naive"]


def fuse_naive(xyz: torch.Tensor, extrinsics: torch.Tensor) -> torch.Tensor:
    """`fuse`, one point at a time."""
    batch, views, _, size, _ = xyz.shape
    out = []
    for b in range(batch):
        points = []
        for n in range(views):
            rotation, translation = extrinsics[n, :3, :3], extrinsics[n, :3, 3]
            for row in range(size):
                for col in range(size):
                    x, y, depth = xyz[b, n, :, row, col]
                    cam = torch.stack([x, y, -depth]).to(rotation.dtype)
                    points.append(rotation.T @ (cam - translation))
        out.append(torch.stack(points))
    return torch.stack(out)


def pseudo_render_naive(
    points, mask_logit, extrinsics, intrinsic, size, upsample=5
) -> RenderedViews:
    """`pseudo_render` with a per-point z-buffer loop (ties to the lowest point index, then
    the first fine pixel of a block in row-major order)."""
    batch, count, _ = points.shape
    views = extrinsics.shape[1]
    intrinsic = torch.as_tensor(np.asarray(intrinsic), dtype=points.dtype)
    fine = size * upsample
    depth_out = torch.zeros(batch, views, size, size, dtype=points.dtype)
    logit_out = torch.full((batch, views, size, size), EMPTY_LOGIT, dtype=mask_logit.dtype)
    hit = torch.zeros(batch, views, size, size, dtype=torch.bool)
    collision = torch.zeros_like(hit)
    for b in range(batch):
        for k in range(views):
            rotation = extrinsics[b, k, :3, :3].to(points.dtype)
            translation = extrinsics[b, k, :3, 3].to(points.dtype)
            zbuffer = [[None] * fine for _ in range(fine)]  # (depth, point, depth tensor)
            landed = [[0] * fine for _ in range(fine)]
            for p in range(count):
                cam = rotation @ points[b, p] + translation
                depth = -cam[2]
                u = float((intrinsic[0, 0] * cam[0] + intrinsic[0, 2]) * upsample)
                v = float((-intrinsic[1, 1] * cam[1] + intrinsic[1, 2]) * upsample)
                iu, iv = int(np.floor(u)), int(np.floor(v))
                if not (0 <= iu < fine and 0 <= iv < fine and float(depth) > 0):
                    continue
                landed[iv][iu] += 1
                best = zbuffer[iv][iu]
                if best is None or float(depth) < best[0]:
                    zbuffer[iv][iu] = (float(depth), p, depth)
            for row in range(size):
                for col in range(size):
                    best = None
                    for dv in range(upsample):
                        for du in range(upsample):
                            cell = zbuffer[row * upsample + dv][col * upsample + du]
                            if cell is not None and (best is None or cell[0] < best[0][0]):
                                best = (cell, row * upsample + dv, col * upsample + du)
                    if best is None:
                        continue
                    (_, p, depth), fr, fc = best
                    depth_out[b, k, row, col] = depth
                    logit_out[b, k, row, col] = mask_logit[b, p]
                    hit[b, k, row, col] = True
                    collision[b, k, row, col] = landed[fr][fc] > 1
    return RenderedViews(depth_out, logit_out, hit, collision)


def consistent_points_naive(points, mask_logit, extrinsics, intrinsic, max_violations=0):
    """`consistent_points`, one point and one view at a time."""
    views, size, _ = mask_logit.shape
    on = mask_logit > 0
    keep = torch.zeros(len(points), dtype=torch.bool)
    for p, point in enumerate(points):
        if not on.reshape(-1)[p]:
            continue
        violations = 0
        for n in range(views):
            cam = extrinsics[n, :3, :3].to(points.dtype) @ point + extrinsics[n, :3, 3]
            col = int(np.floor(float(intrinsic[0, 0] * cam[0] + intrinsic[0, 2])))
            row = int(np.floor(float(-intrinsic[1, 1] * cam[1] + intrinsic[1, 2])))
            seen = 0 <= row < size and 0 <= col < size
            seen = seen and bool(on[n, max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2].any())
            violations += not seen
        keep[p] = violations <= max_violations
    return keep

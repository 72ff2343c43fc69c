"""Fusion and the pseudo-renderer against slow references, gradients, and a round trip."""

import numpy as np
import pytest
import torch
from fusion_reference import consistent_points_naive, fuse_naive, pseudo_render_naive

from recon_core import fusion
from recon_core.data import read_index, read_record
from recon_core.geometry import fixed_views, orthographic_intrinsics, sample_novel_views


def _views(count, size, seed=0):
    cameras = sample_novel_views(count, np.random.default_rng(seed), size)
    return torch.tensor(np.stack([c.extrinsic for c in cameras]))


def test_pixel_grid_x_is_columns_and_y_is_rows():
    intrinsic = orthographic_intrinsics(4)
    grid = fusion.pixel_grid(4, intrinsic)
    assert torch.all(grid[0, :, 1] > grid[0, :, 0])  # x grows left to right
    assert torch.all(grid[1, 1, :] < grid[1, 0, :])  # y shrinks top to bottom
    assert torch.allclose(grid[0, 0], grid[0, 3])  # x constant down a column


def test_fusion_matches_per_point_loop():
    rng = torch.Generator().manual_seed(0)
    xyz = torch.rand(2, 3, 3, 5, 5, generator=rng, dtype=torch.float64)
    extrinsics = torch.tensor(np.stack([c.extrinsic for c in fixed_views(8, 5)][:3]))
    fast = fusion.fuse(xyz, extrinsics)
    slow = fuse_naive(xyz, extrinsics)
    assert torch.allclose(fast, slow, atol=1e-12)


@pytest.mark.parametrize("upsample", [1, 3])
@pytest.mark.parametrize("chunk", [1, 1 << 20], ids=["chunked", "whole"])
def test_pseudo_render_matches_naive_zbuffer(upsample, chunk, monkeypatch):
    monkeypatch.setattr(fusion, "_CHUNK", chunk)  # one shape at a time, or all at once
    gen = torch.Generator().manual_seed(upsample)
    points = (torch.rand(2, 300, 3, generator=gen, dtype=torch.float64) - 0.5) * 0.9
    points[:, 250:] = points[:, :50]  # exact duplicates: ties must go to the lower index
    logits = torch.randn(2, 300, generator=gen, dtype=torch.float64)
    extrinsics = torch.stack([_views(3, 8, seed=1), _views(3, 8, seed=2)])
    intrinsic = orthographic_intrinsics(8)
    fast = fusion.pseudo_render(points, logits, extrinsics, intrinsic, 8, upsample)
    slow = pseudo_render_naive(points, logits, extrinsics, intrinsic, 8, upsample)
    assert torch.equal(fast.hit, slow.hit)
    assert torch.equal(fast.collision, slow.collision)
    assert torch.allclose(fast.depth, slow.depth, atol=1e-12)
    assert torch.allclose(fast.mask_logit, slow.mask_logit, atol=1e-12)
    assert fast.collision.any() and fast.hit.any() and not fast.hit.all()


def test_gradients_flow_to_winning_points_and_their_mask_logits():
    gen = torch.Generator().manual_seed(5)
    points = (torch.rand(1, 60, 3, generator=gen, dtype=torch.float64) - 0.5) * 0.8
    logits = torch.randn(1, 60, generator=gen, dtype=torch.float64)
    extrinsics = _views(2, 6, seed=3)[None]
    intrinsic = orthographic_intrinsics(6)
    points.requires_grad_(True)
    logits.requires_grad_(True)

    def depth_and_mask(p, m):
        out = fusion.pseudo_render(p, m, extrinsics, intrinsic, 6, 2)
        return out.depth, out.mask_logit

    assert torch.autograd.gradcheck(depth_and_mask, (points, logits), eps=1e-7, atol=1e-6)
    out = fusion.pseudo_render(points, logits, extrinsics, intrinsic, 6, 2)
    (out.depth.sum() + out.mask_logit[out.hit].sum()).backward()
    winners = points.grad.abs().sum(-1) > 0
    assert winners.any() and not winners.all()  # only the winners receive gradient
    assert torch.equal(winners, logits.grad != 0)

    xyz = torch.rand(1, 2, 3, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    fixed = torch.tensor(np.stack([c.extrinsic for c in fixed_views(8, 3)][:2]))
    assert torch.autograd.gradcheck(lambda x: fusion.fuse(x, fixed), (xyz,))


def test_round_trip_from_fixed_views_reproduces_novel_depth(tiny_dataset):
    index = read_index(tiny_dataset)
    arrays, _ = read_record(tiny_dataset / index["records"][0]["file"])
    fixed_depth = torch.from_numpy(arrays["fixed_depth"]).double()
    views, size = fixed_depth.shape[:2][0], fixed_depth.shape[-1]
    grid = fusion.pixel_grid(size, arrays["fixed_intrinsics"]).double()
    xyz = torch.cat([grid[None].expand(views, -1, -1, -1), fixed_depth[:, None]], 1)[None]
    cloud = fusion.fuse(xyz, torch.from_numpy(arrays["fixed_extrinsics"]).double())
    cloud = cloud[(fixed_depth > 0).reshape(1, -1)][None]
    novel = torch.from_numpy(arrays["novel_extrinsics"])[None]
    rendered = fusion.pseudo_render(
        cloud,
        torch.zeros(cloud.shape[:2], dtype=torch.float64),
        novel,
        arrays["novel_intrinsics"],
        size,
        5,
    )
    truth = torch.from_numpy(arrays["novel_depth"]).double()
    both = (truth > 0) & rendered.hit[0]
    pixel = 1.0 / arrays["novel_intrinsics"][0, 0]
    error = (rendered.depth[0] - truth).abs()[both]
    assert error.median() < 0.5 * pixel

    # silhouettes agree to within a pixel (the cloud is sparse: single pixels stay empty)
    def near(mask):
        return torch.nn.functional.max_pool2d(mask[None].float(), 3, 1, 1)[0] > 0

    hit, gt = rendered.hit[0], truth > 0
    assert (hit & near(gt)).sum() / hit.sum() > 0.99
    assert (gt & near(hit)).sum() / gt.sum() > 0.97


def test_upsample_conv_equals_conv_of_upsampled_input_with_same_gradients():
    from recon_core.models.pointcloud import _UpsampleConv2d

    torch.manual_seed(0)
    layer = _UpsampleConv2d(5, 4).double()
    x = torch.randn(2, 5, 6, 7, dtype=torch.float64, requires_grad=True)

    def reference(x, weight):
        upsampled = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        return torch.nn.functional.conv2d(upsampled, weight, padding=1)

    fast, slow = layer(x), reference(x, layer.weight)
    assert fast.shape == (2, 4, 12, 14)
    assert torch.allclose(fast, slow, atol=1e-12)
    grad_fast = torch.autograd.grad(layer(x).square().sum(), (x, layer.weight))
    grad_slow = torch.autograd.grad(reference(x, layer.weight).square().sum(), (x, layer.weight))
    for a, b in zip(grad_fast, grad_slow, strict=True):
        assert torch.allclose(a, b, atol=1e-10)
    small = _UpsampleConv2d(2, 2).double()
    probe = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(small, (probe,))


@pytest.mark.parametrize("max_violations", [0, 1])
def test_consistency_filter_matches_per_point_loop(max_violations):
    size = 6
    cameras = fixed_views(8, size)
    extrinsics = torch.tensor(np.stack([c.extrinsic for c in cameras]))
    rng = torch.Generator().manual_seed(1)
    grid = fusion.pixel_grid(size, cameras[0].intrinsic).double()
    depth = 1.0 + 0.3 * (torch.rand(8, 1, size, size, generator=rng, dtype=torch.float64) - 0.5)
    xyz = torch.cat([grid[None].expand(8, -1, -1, -1), depth], 1)
    mask_logit = torch.randn(8, size, size, generator=rng, dtype=torch.float64) + 1.0
    points = fusion.fuse(xyz[None], extrinsics)[0]
    args = (points, mask_logit, extrinsics, cameras[0].intrinsic, max_violations)
    fast = fusion.consistent_points(*args)
    slow = consistent_points_naive(*args)
    assert fast.any() and not fast.all()  # random views disagree somewhere
    assert torch.equal(fast, slow)


def test_consistency_filter_keeps_true_surfaces_and_drops_flying_points(tiny_dataset):
    """Ground-truth fixed views agree with one another; points pulled off a foreground edge
    and away from the camera, as a smoothed depth prediction puts them, mostly do not (the
    rest lie inside the other views' visual hull, where silhouettes cannot tell)."""
    index = read_index(tiny_dataset)
    arrays, _ = read_record(tiny_dataset / index["records"][0]["file"])
    fixed_depth = torch.from_numpy(arrays["fixed_depth"]).double()
    views, size = fixed_depth.shape[0], fixed_depth.shape[-1]
    grid = fusion.pixel_grid(size, arrays["fixed_intrinsics"]).double()
    xyz = torch.cat([grid[None].expand(views, -1, -1, -1), fixed_depth[:, None]], 1)
    extrinsics = torch.from_numpy(arrays["fixed_extrinsics"]).double()
    on = fixed_depth > 0
    mask_logit = torch.where(on, 5.0, -5.0).double()
    intrinsic = arrays["fixed_intrinsics"]
    keep = fusion.consistent_points(
        fusion.fuse(xyz[None], extrinsics)[0], mask_logit, extrinsics, intrinsic
    )
    assert keep.sum() / on.sum() > 0.99

    # flying points: background pixels beside the silhouette of view 0, switched on with
    # the depth of their foreground neighbour pushed 0.25 further away
    ring = (torch.nn.functional.max_pool2d(on[:1, None].float(), 3, 1, 1)[0, 0] > 0) & ~on[0]
    neighbour = -torch.nn.functional.max_pool2d(-torch.where(on[:1], fixed_depth[:1], 9.0), 3, 1, 1)
    flying = xyz.clone()
    flying[0, 2] = torch.where(ring, neighbour[0] + 0.25, xyz[0, 2])
    flying_logit = mask_logit.clone()
    flying_logit[0][ring] = 5.0
    flying = fusion.fuse(flying[None], extrinsics)[0]
    keep = fusion.consistent_points(flying, flying_logit, extrinsics, intrinsic)
    assert ring.sum() > 20
    assert keep[: size * size].view(size, size)[ring].float().mean() < 0.25
    assert keep.view(views, size, size)[on].float().mean() > 0.99

"""Coarse-to-fine extraction is exact, meshes are closed, bad settings are refused."""

import math

import numpy as np
import pytest
import torch
import trimesh

from recon_core.extraction import (
    ExtractionError,
    coarse_resolution,
    evaluate_grid,
    extract_mesh,
    marching_cubes,
)


def sphere(p):
    return (0.35 - p.norm(dim=-1)) * 40


def torus(p):
    q = torch.stack([torch.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2) - 0.3, p[:, 2]], -1)
    return (0.1 - q.norm(dim=-1)) * 40


def thin_plate(p):  # 2.5 voxels thick at 128^3
    return (0.011 - p[:, 2].abs()).minimum(0.4 - p[:, :2].abs().max(dim=1).values) * 40


def spindle(p):  # a rod 0.016 across: half a cell of the 32^3 start, off the grid's vertices
    q = p - torch.tensor([0.013, 0.021, 0.0])
    rod = 0.008 - torch.sqrt(q[:, 0] ** 2 + q[:, 1] ** 2)
    return rod.minimum(0.4 - q[:, 2].abs()) * 40


def _chamfer(a, b):
    from scipy.spatial import cKDTree

    return 0.5 * (cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean())


def _check_closed(mesh):
    edges = np.sort(
        np.concatenate([mesh.faces[:, [0, 1]], mesh.faces[:, [1, 2]], mesh.faces[:, [2, 0]]]),
        axis=1,
    )
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all(), "every edge must be in exactly two faces"
    tri = mesh.vertices[mesh.faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    assert area.min() > 0, "no degenerate faces"


@pytest.mark.parametrize("field", [sphere, torus, thin_plate, spindle])
def test_coarse_to_fine_equals_dense_at_128(field):
    # the same defaults as for trained decoders (tests/test_overfit.py checks those on one)
    mesh, stats = extract_mesh(field, 128)
    dense_values, dense_stats = evaluate_grid(field, 128, start=128)
    dense = marching_cubes(dense_values.numpy())
    assert stats.points_evaluated < 0.3 * dense_stats.points_evaluated
    assert abs(len(mesh.faces) - len(dense.faces)) <= 0.01 * len(dense.faces)
    assert _chamfer(mesh.vertices, dense.vertices) < 1e-4
    _check_closed(mesh)


def test_meshes_are_closed_with_outward_normals_and_right_volume():
    mesh, _ = extract_mesh(sphere, 96)
    _check_closed(mesh)
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    assert tm.volume == pytest.approx(4 / 3 * np.pi * 0.35**3, rel=0.01)  # positive: outward
    mesh, _ = extract_mesh(torus, 64)
    assert trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).volume > 0


def test_resolution_range_and_coarse_start():
    assert coarse_resolution(256) == 32 and coarse_resolution(200) == 50
    assert coarse_resolution(256, start=64) == 64 and coarse_resolution(33) == 33
    mesh, stats = extract_mesh(sphere, 100, start=25)  # not a power of two: 25 -> 50 -> 100
    assert stats.resolution == 100
    with pytest.raises(ExtractionError, match="between 16 and 512"):
        extract_mesh(sphere, 8)
    with pytest.raises(ExtractionError, match="between 16 and 512"):
        extract_mesh(sphere, 1024)


def test_iso_level_and_empty_fields_give_clear_errors():
    with pytest.raises(ExtractionError, match="iso level"):
        extract_mesh(sphere, 32, iso=1.5)
    with pytest.raises(ExtractionError, match="no point of the field is inside"):
        marching_cubes(-np.ones((33, 33, 33)))
    # Below the level everywhere: the highest probability found, so the user can lower it.
    with pytest.raises(ExtractionError, match=r"below the iso level 0\.5 .* \(highest 0\.26\)"):
        extract_mesh(lambda p: torch.full((len(p),), math.log(0.265 / 0.735)), 32)
    with pytest.raises(ExtractionError, match=r"\(highest 0\.00\)"):
        extract_mesh(lambda p: torch.full((len(p),), -1e4), 32)
    mesh, _ = extract_mesh(lambda p: math.log(0.3 / 0.7) - p.norm(dim=-1), 32, iso=0.25)
    assert len(mesh.faces) > 0
    with pytest.raises(ExtractionError, match="whole box is inside"):
        extract_mesh(lambda p: torch.ones(len(p)), 32)
    with pytest.raises(ExtractionError, match="non-finite"):
        marching_cubes(np.where(np.arange(27).reshape(3, 3, 3) == 13, np.nan, 1.0))
    small, _ = extract_mesh(sphere, 64, iso=0.9)
    large, _ = extract_mesh(sphere, 64, iso=0.1)
    assert np.abs(small.vertices).max() < np.abs(large.vertices).max()


@pytest.mark.parametrize("conditioning", ["film", "concat"])
def test_specialized_decoder_matches_the_conditioned_forward(conditioning):
    from recon_core.models.implicit import ResidualDecoder

    torch.manual_seed(0)
    decoder = ResidualDecoder(latent_dim=16, hidden=32, blocks=2, conditioning=conditioning)
    for layer in decoder.cond:  # a real modulation, not the identity it starts as
        torch.nn.init.normal_(layer.weight, std=0.3)
        torch.nn.init.normal_(layer.bias, std=0.3)
    z = torch.randn(2, 16)
    points = torch.rand(2, 500, 3) - 0.5
    with torch.no_grad():
        reference = decoder(z, points)
    for b in range(2):
        fast = decoder.specialize(z[b])(points[b])
        torch.testing.assert_close(fast, reference[b], rtol=1e-5, atol=1e-5)


def test_decimation_keeps_a_closed_surface_within_the_budget_near_the_original():
    from recon_core.extraction import decimate, is_closed

    n = 97
    axis = np.linspace(-0.55, 0.55, n)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    torus = 0.12 - np.sqrt((np.sqrt(x**2 + y**2) - 0.3) ** 2 + z**2)
    mesh = marching_cubes(torus * 50, 0.0)
    assert is_closed(mesh.faces)
    for budget in (8000, 1000):
        small = decimate(mesh, budget)
        assert 0.9 * budget <= len(small.faces) <= budget and is_closed(small.faces)
        # every vertex stays near the torus surface (radii 0.3 and 0.12)
        ring = np.sqrt(small.vertices[:, 0] ** 2 + small.vertices[:, 1] ** 2) - 0.3
        distance = np.abs(np.sqrt(ring**2 + small.vertices[:, 2] ** 2) - 0.12)
        assert distance.max() < (0.01 if budget == 8000 else 0.03)
    assert decimate(mesh, 10**7) is mesh  # under the budget already
    with pytest.raises(ExtractionError, match="at least 4"):
        decimate(mesh, 3)


def _two_blobs(p):
    """Asymmetric: a large ball on the right (+x), a small thin-ish one on the left."""
    big = 0.2 - (p - torch.tensor([0.18, 0.0, 0.05])).norm(dim=-1)
    small = 0.06 - (p - torch.tensor([-0.25, 0.1, -0.1])).norm(dim=-1)
    return big.maximum(small) * 40


def _mirrored_mean(field):
    def averaged(p):
        q = p * torch.tensor([-1.0, 1.0, 1.0])
        return 0.5 * (field(p) + field(q))

    return averaged


def test_symmetric_extraction_is_the_mirror_averaged_field_at_the_same_cost():
    from scipy.spatial import cKDTree

    calls = []

    def counted(p):
        calls.append(len(p))
        return _two_blobs(p)

    mesh, stats = extract_mesh(counted, 128, symmetric=True)
    assert sum(calls) == stats.points_evaluated
    # the same field, symmetrised analytically, extracted as it is
    reference, reference_stats = extract_mesh(_mirrored_mean(_two_blobs), 128)
    assert abs(stats.points_evaluated - reference_stats.points_evaluated) <= (
        0.002 * reference_stats.points_evaluated
    )
    assert abs(len(mesh.faces) - len(reference.faces)) <= 0.002 * len(reference.faces)
    assert _chamfer(mesh.vertices, reference.vertices) < 1e-5
    dense_values, _ = evaluate_grid(_mirrored_mean(_two_blobs), 128, start=128)
    assert _chamfer(mesh.vertices, marching_cubes(dense_values.numpy()).vertices) < 1e-4
    _check_closed(mesh)
    # symmetric to the vertex: each vertex's mirror image is a vertex
    mirrored = mesh.vertices * np.array([-1, 1, 1], np.float32)
    assert cKDTree(mesh.vertices).query(mirrored)[0].max() < 1e-5
    # both blobs on both sides; the field as it is keeps them where they are
    plain, _ = extract_mesh(_two_blobs, 128)
    assert mirrored[:, 0].min() < -0.3 and plain.vertices[:, 0].min() > -0.32
    assert cKDTree(plain.vertices).query(mirrored)[0].max() > 0.1
    # a field that is symmetric already: the same points evaluated, the same mesh
    same, same_stats = extract_mesh(torus, 128, symmetric=True)
    plain_torus, plain_torus_stats = extract_mesh(torus, 128)
    assert same_stats.points_evaluated == plain_torus_stats.points_evaluated
    assert _chamfer(same.vertices, plain_torus.vertices) < 1e-6

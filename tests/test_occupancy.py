"""Inside/outside labels, voxel grids and outer-surface samples on shapes with known answers."""

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from training.data.sampling import (
    OccupancySettings,
    downsample_voxels,
    label_points,
    occupancy_samples,
    outer_surface_samples,
    sample_surface_grid,
    sample_surface_random,
    solid_grid,
)

SETTINGS = OccupancySettings(resolution=128, uniform_points=20_000, near_points=20_000)


def _mesh_arrays(mesh):
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def _panel_box(half=0.4, thickness=0.012):
    """A closed box made of six separate, overlapping thin panels (like a wardrobe)."""
    parts = []
    for axis in range(3):
        for sign in (-1, 1):
            size = [2 * half + thickness] * 3
            size[axis] = thickness
            panel = trimesh.creation.box(size)
            panel.apply_translation(np.eye(3)[axis] * sign * half)
            parts.append(panel)
    return trimesh.util.concatenate(parts)


def test_sphere_labels_are_exact_off_the_surface():
    mesh = trimesh.creation.icosphere(4, radius=0.4)
    v, f = _mesh_arrays(mesh)
    grid = solid_grid(v, f, SETTINGS)
    points, labels = occupancy_samples(grid, v, f, SETTINGS, np.random.default_rng(0))
    truth = mesh.contains(points.astype(np.float64))
    wrong = truth != labels
    assert wrong.mean() < 1e-3
    distance = np.abs(np.linalg.norm(points[wrong].astype(np.float64), axis=1) - 0.4)
    assert distance.max(initial=0) < 2e-3  # errors only right at the surface
    # about half the samples are near the surface, the rest uniform in the padded box
    near = points[SETTINGS.uniform_points :].astype(np.float64)
    assert np.median(np.abs(np.linalg.norm(near, axis=1) - 0.4)) < 0.02


def test_mesh_with_a_hole_is_still_solid():
    mesh = trimesh.creation.icosphere(4, radius=0.4)
    centers = mesh.triangles_center
    top = np.argsort(-centers[:, 2])[:2]  # two adjacent triangles at the pole: a small hole
    holed = trimesh.Trimesh(mesh.vertices, np.delete(mesh.faces, top, axis=0), process=False)
    assert not holed.is_watertight
    v, f = _mesh_arrays(holed)
    settings = OccupancySettings(resolution=256)
    grid = solid_grid(v, f, settings)
    rng = np.random.default_rng(1)
    points = rng.uniform(-0.55, 0.55, (40_000, 3))
    labels = label_points(grid, points)
    truth = np.linalg.norm(points, axis=1) < 0.4
    assert labels[np.linalg.norm(points, axis=1) < 0.3].all()  # the core is solid
    assert (labels != truth).mean() < 0.005


def test_box_of_six_thin_panels_is_solid_inside():
    v, f = _mesh_arrays(_panel_box())
    grid = solid_grid(v, f, SETTINGS)
    rng = np.random.default_rng(2)
    points = rng.uniform(-0.55, 0.55, (30_000, 3))
    labels = label_points(grid, points)
    truth = np.all(np.abs(points) < 0.406, axis=1)
    assert labels[np.all(np.abs(points) < 0.38, axis=1)].all()
    assert (labels != truth).mean() < 0.005
    # winding numbers / ray parity would leave it hollow: check the deep interior explicitly
    assert label_points(grid, np.zeros((1, 3)))[0]


def test_open_sheet_has_no_inside():
    sheet = trimesh.Trimesh(
        [[-0.4, -0.4, 0], [0.4, -0.4, 0], [0.4, 0.4, 0], [-0.4, 0.4, 0]], [[0, 1, 2], [0, 2, 3]]
    )
    v, f = _mesh_arrays(sheet)
    grid = solid_grid(v, f, SETTINGS)
    points, labels = occupancy_samples(grid, v, f, SETTINGS, np.random.default_rng(3))
    assert labels.mean() < 0.002


def test_outer_surface_skips_hidden_interior_faces_and_points_outwards():
    outer = trimesh.creation.box([0.8, 0.8, 0.8])
    inner = trimesh.creation.box([0.3, 0.3, 0.3])  # fully enclosed: no picture can show it
    v, f = _mesh_arrays(trimesh.util.concatenate([outer, inner]))
    grid = solid_grid(v, f, SETTINGS)
    points, normals = outer_surface_samples(grid, v, f, 20_000, np.random.default_rng(4))
    assert len(points) == 20_000
    assert np.abs(points).max(axis=1).min() > 0.39  # all on the outer box
    # normals point away from the centre (outer box faces)
    assert (np.einsum("ij,ij->i", points, normals.astype(np.float64)) > 0).all()
    np.testing.assert_allclose(np.linalg.norm(normals.astype(np.float64), axis=1), 1, atol=2e-3)


def test_inward_facing_triangles_get_outward_normals():
    mesh = trimesh.creation.icosphere(3, radius=0.4)
    mesh.invert()  # every triangle wound the wrong way
    v, f = _mesh_arrays(mesh)
    grid = solid_grid(v, f, SETTINGS)
    points, normals = outer_surface_samples(grid, v, f, 5_000, np.random.default_rng(5))
    assert (np.einsum("ij,ij->i", points, normals.astype(np.float64)) > 0).all()
    labels = label_points(grid, np.array([[0, 0, 0], [0, 0, 0.395], [0, 0, 0.41]]))
    assert labels.tolist() == [True, True, False]


def test_voxel_grid_is_conservative_and_keeps_thin_panels():
    v, f = _mesh_arrays(_panel_box(thickness=0.004))
    grid = solid_grid(v, f, SETTINGS)
    voxels = downsample_voxels(grid.state, 32)
    assert voxels.shape == (32, 32, 32)
    assert voxels[16, 16, 16]  # solid interior
    assert not voxels[0, 0, 0] and not voxels[16, 16, 0]  # padding stays empty
    sheet = trimesh.Trimesh([[-0.4, -0.4, 0], [0.4, -0.4, 0], [0.4, 0.4, 0]], [[0, 1, 2]])
    sheet_grid = solid_grid(*_mesh_arrays(sheet), SETTINGS)
    assert downsample_voxels(sheet_grid.state, 32).sum() > 0  # a sheet still shows


def test_systematic_surface_samples_cover_every_triangle():
    rng = np.random.default_rng(6)
    v = rng.uniform(-0.5, 0.5, (30, 3))
    f = rng.integers(0, 30, (40, 3))
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    spacing = 0.02
    samples, face = sample_surface_grid(v, f, spacing)
    probes, probe_face = sample_surface_random(v, f, 20_000, rng)
    tree = cKDTree(samples)
    distance, nearest = tree.query(probes)
    assert distance.max() < spacing  # no gap wider than the spacing
    # sliver triangles stay cheap: the count follows area and edges, not edge^2
    sliver = np.array([[0, 0, 0], [1, 0, 0], [0.5, 1e-4, 0]])
    points, _ = sample_surface_grid(sliver, np.array([[0, 1, 2]]), 0.01)
    assert len(points) < 300


def test_bad_resolution_for_voxels_is_refused():
    state = np.zeros((48, 48, 48), dtype=np.uint8)
    with pytest.raises(ValueError, match="multiple"):
        downsample_voxels(state, 32)

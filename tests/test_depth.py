"""Ray-cast depth maps against closed forms."""

import math

import numpy as np
import pytest
import trimesh

from recon_core import geometry as g
from training.data.raycast import RayCaster

RADIUS = 0.4


@pytest.fixture(scope="module")
def sphere():
    mesh = trimesh.creation.icosphere(subdivisions=6, radius=RADIUS)  # sagitta < 2e-5
    return RayCaster(np.asarray(mesh.vertices), np.asarray(mesh.faces))


@pytest.fixture(scope="module")
def cube():
    mesh = trimesh.creation.box(extents=[0.6, 0.6, 0.6])
    return RayCaster(np.asarray(mesh.vertices), np.asarray(mesh.faces))


def _pixel_grid(camera):
    v, u = np.meshgrid(np.arange(camera.height) + 0.5, np.arange(camera.width) + 0.5, indexing="ij")
    return u, v


def test_orthographic_sphere_depth_matches_closed_form(sphere):
    camera = g.fixed_views(8, 64)[3]
    depth = sphere.depth_map(camera)
    u, v = _pixel_grid(camera)
    x = (u - camera.intrinsic[0, 2]) / camera.intrinsic[0, 0]
    y = -(v - camera.intrinsic[1, 2]) / camera.intrinsic[1, 1]
    r2 = x**2 + y**2
    inner = r2 < (0.95 * RADIUS) ** 2
    expected = g.FIXED_VIEW_DISTANCE - np.sqrt(np.clip(RADIUS**2 - r2, 0, None))
    pixel = 2 * g.ORTHO_HALF_EXTENT / 64
    assert np.abs(depth[inner] - expected[inner]).max() < 2e-4  # far below a pixel (0.0135)
    # the silhouette is right to the pixel: mask equals the analytic disc away from the rim
    rim = np.abs(np.sqrt(r2) - RADIUS) < pixel
    assert np.array_equal((depth > 0)[~rim], (r2 < RADIUS**2)[~rim])


def test_perspective_sphere_depth_matches_closed_form(sphere):
    distance = 2.0
    camera = g.Camera(
        g.look_at(g.view_direction(0.7, 0.3) * distance),
        g.perspective_intrinsics(math.radians(40), 64),
        "perspective",
        64,
        64,
    )
    depth = sphere.depth_map(camera)
    origins, directions = g.pixel_rays(camera)
    # ray-sphere intersection: |o + t d| = R
    b = np.einsum("ij,ij->i", origins, directions)
    c = np.einsum("ij,ij->i", origins, origins) - RADIUS**2
    disc = b**2 - c
    hit = disc > 1e-4
    t = -b - np.sqrt(np.where(hit, disc, 0))
    forward = -camera.extrinsic[2, :3]
    expected = (t * (directions @ forward)).reshape(64, 64)
    hit = hit.reshape(64, 64)
    assert np.abs(depth[hit] - expected[hit]).max() < 1e-3
    assert np.all(depth[~hit & (disc.reshape(64, 64) < -1e-3)] == 0)


def test_cube_face_on_depth_is_flat_and_exact(cube):
    camera = g.Camera(
        g.look_at([0, -1.0, 0]), g.orthographic_intrinsics(32), "orthographic", 32, 32
    )
    depth = cube.depth_map(camera)
    u, v = _pixel_grid(camera)
    x = (u - 16) / camera.intrinsic[0, 0]
    y = -(v - 16) / camera.intrinsic[1, 1]
    inside = (np.abs(x) < 0.3) & (np.abs(y) < 0.3)
    np.testing.assert_allclose(depth[inside], 0.7, atol=1e-6)
    assert np.all(depth[~inside] == 0)


def test_cube_corner_view_depth_matches_plane_equations(cube):
    camera = g.fixed_views(8, 48)[0]
    depth = cube.depth_map(camera)
    origins, directions = g.pixel_rays(camera)
    # slab intersection with the box [-0.3, 0.3]^3
    with np.errstate(divide="ignore"):
        t0 = (-0.3 - origins) / directions
        t1 = (0.3 - origins) / directions
    near = np.minimum(t0, t1).max(1)
    far = np.maximum(t0, t1).min(1)
    hit = (near < far - 1e-6).reshape(48, 48)
    expected = near.reshape(48, 48)
    assert np.abs(depth[hit] - expected[hit]).max() < 1e-5
    edge = np.abs((near - far).reshape(48, 48)) < 0.02
    assert np.array_equal((depth > 0)[~edge], hit[~edge])


def test_batched_depth_maps_equal_single_views(sphere):
    views = g.sample_novel_views(3, np.random.default_rng(0), size=24)
    batch = sphere.depth_maps(views)
    for k, view in enumerate(views):
        np.testing.assert_array_equal(batch[k], sphere.depth_map(view))

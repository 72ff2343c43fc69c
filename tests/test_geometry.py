import math

import numpy as np
import pytest

from recon_core import geometry as g


def test_sweet_home_axis_conversion_is_y_up_to_z_up():
    rotation = g.axis_conversion("+y", "+z")
    # up (+Y) -> +Z, front (+Z) -> -Y, x stays
    np.testing.assert_allclose(rotation @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(rotation @ [0, 0, 1], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(rotation @ [1, 0, 0], [1, 0, 0], atol=1e-12)
    assert np.isclose(np.linalg.det(rotation), 1.0)


def test_angle_gap_goes_the_short_way_round():
    assert g.angle_gap(350.0, 10.0) == 20.0 and g.angle_gap(10.0, 350.0) == 20.0
    assert g.angle_gap(0.0, 180.0) == 180.0 and g.angle_gap(-90.0, 270.0) == 0.0
    np.testing.assert_allclose(g.angle_gap(np.array([0.0, 90.0, 725.0]), 45.0), [45, 45, 40])


@pytest.mark.parametrize("up,front", [("+z", "-y"), ("+y", "-z"), ("-x", "+y"), ("z", "x")])
def test_axis_conversion_is_a_rotation_mapping_up_and_front(up, front):
    rotation = g.axis_conversion(up, front)
    np.testing.assert_allclose(rotation @ g.parse_axis(up), [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(rotation @ g.parse_axis(front), [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(rotation), 1.0)


def test_axis_conversion_rejects_parallel_axes_and_garbage():
    with pytest.raises(ValueError, match="perpendicular"):
        g.axis_conversion("+y", "-y")
    with pytest.raises(ValueError, match="axis must be"):
        g.parse_axis("up")


def test_normalization_centres_bbox_and_scales_longest_side_to_one():
    rng = np.random.default_rng(0)
    points = rng.uniform([-3, 5, 10], [1, 6, 12], size=(500, 3))
    out = g.apply_transform(g.normalization_transform(points), points)
    lo, hi = out.min(0), out.max(0)
    np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-12)
    assert np.isclose((hi - lo).max(), 1.0)
    with pytest.raises(ValueError):
        g.normalization_transform(np.ones((4, 3)))
    with pytest.raises(ValueError):
        g.normalization_transform(np.zeros((0, 3)))


def test_look_at_is_orthonormal_and_looks_at_target():
    eye = np.array([1.0, -2.0, 0.5])
    ext = g.look_at(eye, target=(0.1, 0.2, 0.3))
    rotation = ext[:3, :3]
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(rotation), 1.0)
    # the target lies on the camera's -Z axis
    target_cam = g.apply_transform(ext, np.array([[0.1, 0.2, 0.3]]))[0]
    np.testing.assert_allclose(target_cam[:2], 0, atol=1e-12)
    assert target_cam[2] < 0
    # world up projects to image up (camera +Y has positive world Z)
    assert rotation[1, 2] > 0
    # camera centre round-trips
    cam = g.Camera(ext, np.eye(3), "perspective", 1, 1)
    np.testing.assert_allclose(cam.position, eye, atol=1e-12)


def test_look_at_straight_down_and_roll():
    ext = g.look_at([0, 0, 2.0])
    np.testing.assert_allclose(ext[2, :3], [0, 0, 1], atol=1e-12)
    rolled = g.look_at([0, -2.0, 0], roll=math.pi / 2)
    # a quarter roll counter-clockwise: image up becomes the old image left (-right)
    plain = g.look_at([0, -2.0, 0])
    np.testing.assert_allclose(rolled[1, :3], -plain[0, :3], atol=1e-12)


def test_front_camera_sees_the_front():
    direction = g.view_direction(0.0, 0.0)
    np.testing.assert_allclose(direction, [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(g.view_direction(math.pi / 2, 0.0), [1, 0, 0], atol=1e-12)


@pytest.mark.parametrize("projection", ["perspective", "orthographic"])
def test_project_unproject_round_trip(projection):
    rng = np.random.default_rng(1)
    ext = g.look_at([0.3, -2.0, 0.8], roll=0.4)
    intr = (
        g.perspective_intrinsics(0.8, 64, 48)
        if projection == "perspective"
        else g.orthographic_intrinsics(64)
    )
    points = rng.uniform(-0.5, 0.5, (100, 3))
    pixels, depth = g.project(points, ext, intr, projection)
    back = g.unproject(pixels, depth, ext, intr, projection)
    np.testing.assert_allclose(back, points, atol=1e-10)


def test_image_axes_follow_the_convention():
    """+X right and +Z up in a front view; pixel v grows downwards."""
    ext = g.look_at(g.view_direction(0.0, 0.0) * 2.0)
    intr = g.orthographic_intrinsics(128)
    pixels, depth = g.project(
        np.array([[0.2, 0, 0], [0, 0, 0.2], [0, 0, 0]]), ext, intr, "orthographic"
    )
    centre = pixels[2]
    np.testing.assert_allclose(centre, [64, 64])
    assert pixels[0, 0] > centre[0] and np.isclose(pixels[0, 1], centre[1])
    assert pixels[1, 1] < centre[1] and np.isclose(pixels[1, 0], centre[0])
    np.testing.assert_allclose(depth, 2.0)


def test_default_fixed_views_are_the_cube_corners():
    dirs = g.fixed_view_directions(8)
    np.testing.assert_allclose(np.abs(dirs), 1 / math.sqrt(3), atol=1e-12)
    assert len({tuple(np.sign(d).astype(int)) for d in dirs}) == 8
    elevations = np.degrees(np.arcsin(dirs[:, 2]))
    np.testing.assert_allclose(sorted(np.abs(elevations)), [35.26438968] * 8, atol=1e-6)
    azimuths = np.degrees(np.arctan2(dirs[:, 0], -dirs[:, 1])) % 360
    np.testing.assert_allclose(sorted(azimuths[:4]), [45, 135, 225, 315], atol=1e-9)
    views = g.fixed_views()
    assert len(views) == 8 and all(v.projection == "orthographic" for v in views)
    for v, d in zip(views, dirs, strict=False):
        np.testing.assert_allclose(v.position, g.FIXED_VIEW_DISTANCE * d, atol=1e-12)


@pytest.mark.parametrize("count", [4, 6, 12, 20])
def test_other_fixed_view_sets_are_distinct_unit_and_balanced(count):
    dirs = g.fixed_view_directions(count)
    assert dirs.shape == (count, 3)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0)
    np.testing.assert_allclose(dirs.mean(0), 0, atol=1e-12)  # platonic: centred
    gram = dirs @ dirs.T - 2 * np.eye(count)
    assert gram.max() < 0.99
    assert len(g.fixed_views(count)) == count


def test_unknown_fixed_view_count_is_refused():
    with pytest.raises(ValueError, match="fixed view count"):
        g.fixed_view_directions(7)


def test_novel_views_are_uniform_on_the_sphere_with_random_roll():
    rng = np.random.default_rng(0)
    views = g.sample_novel_views(4000, rng, size=16)
    dirs = np.stack([v.position for v in views]) / g.FIXED_VIEW_DISTANCE
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0)
    assert np.abs(dirs.mean(0)).max() < 0.05
    np.testing.assert_allclose(np.cov(dirs.T), np.eye(3) / 3, atol=0.03)
    # roll: the image-up vector's angle about the axis is spread over the whole circle
    ups = np.stack([v.extrinsic[1, :3] for v in views])
    assert np.abs(ups[:, 2].mean()) < 0.05


def test_pixel_rays_hit_pixel_centres():
    cam = g.Camera(
        g.look_at([0, -3.0, 0]), g.perspective_intrinsics(0.9, 8, 6), "perspective", 8, 6
    )
    origins, directions = g.pixel_rays(cam)
    points = origins + 2.0 * directions
    pixels, _ = g.project(points, cam.extrinsic, cam.intrinsic, "perspective")
    v, u = np.meshgrid(np.arange(6) + 0.5, np.arange(8) + 0.5, indexing="ij")
    np.testing.assert_allclose(pixels, np.stack([u.ravel(), v.ravel()], 1), atol=1e-9)

"""The viewer-centred frame against the cameras that made the pictures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recon_core.geometry import look_at, project, view_direction
from recon_core.viewframe import (
    VIEW_FOCAL,
    VIEW_SCALE,
    camera_elevation,
    image_coordinates,
    upright_rotation,
    upright_transform,
    view_transform,
)

SIZE = 128


def _camera(azimuth: float, elevation: float, distance: float, focal: float, centre=(64, 64)):
    extrinsic = look_at(distance * view_direction(azimuth, elevation))
    intrinsic = np.array([[focal, 0, centre[0]], [0, focal, centre[1]], [0, 0, 1.0]])
    return extrinsic, intrinsic


def _normalised_projection(points, extrinsic, intrinsic):
    uv, _ = project(points, extrinsic, intrinsic, "perspective")
    half = SIZE / 2
    return np.stack([(uv[:, 0] - half) / half, (uv[:, 1] - half) / half], axis=1)


def _to_view(points, extrinsic, intrinsic):
    transform = view_transform(torch.tensor(extrinsic)[None], torch.tensor(intrinsic)[None], SIZE)[
        0
    ].numpy()
    return points @ transform[:3, :3].T + transform[:3, 3]


def test_the_canonical_camera_sees_points_where_a_camera_of_its_focal_length_does():
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.5, 0.5, size=(500, 3))
    for azimuth, elevation, distance in ((0.3, 0.2, 1.8), (2.5, -0.1, 2.6), (4.0, 0.8, 2.2)):
        extrinsic, intrinsic = _camera(azimuth, elevation, distance, VIEW_FOCAL * SIZE / 2)
        q = _to_view(points, extrinsic, intrinsic)
        seen = image_coordinates(torch.tensor(q)).numpy()
        np.testing.assert_allclose(
            seen, _normalised_projection(points, extrinsic, intrinsic), atol=1e-9
        )


def test_the_frame_turns_and_scales_the_shape_without_distorting_it():
    rng = np.random.default_rng(1)
    points = rng.uniform(-0.5, 0.5, size=(200, 3))
    # another focal length and an off-centre principal point (a framed crop)
    extrinsic, intrinsic = _camera(1.1, 0.4, 2.0, 150.0, centre=(70.0, 55.0))
    q = _to_view(points, extrinsic, intrinsic)
    gaps = np.linalg.norm(points[:, None] - points[None], axis=-1)
    view_gaps = np.linalg.norm(q[:, None] - q[None], axis=-1)
    ratio = view_gaps[gaps > 0] / gaps[gaps > 0]
    expected = VIEW_SCALE * 150.0 / (SIZE / 2 * 2.0)
    np.testing.assert_allclose(ratio, expected, rtol=1e-9)
    # the object's centre lands where the camera sees it
    centre = _to_view(np.zeros((1, 3)), extrinsic, intrinsic)[0]
    np.testing.assert_allclose(centre[:2] / VIEW_SCALE, [(70 - 64) / 64, -(55 - 64) / 64])


def test_elevation_and_upright_rotation_undo_the_cameras_tilt():
    points = np.random.default_rng(2).uniform(-0.5, 0.5, size=(50, 3))
    for azimuth, elevation in ((0.0, 0.5), (2.0, -0.15), (5.0, 0.85)):
        extrinsic, intrinsic = _camera(azimuth, elevation, 2.2, 200.0)
        got = camera_elevation(torch.tensor(extrinsic)[None])[0].item()
        assert math.isclose(got, elevation, abs_tol=1e-9)
        upright = upright_rotation(got) @ extrinsic[:3, :3]
        turned = points @ upright.T
        np.testing.assert_allclose(turned[:, 2], points[:, 2], atol=1e-9)  # heights kept
        # a turn about +Z by the azimuth: the picture's facing is kept
        c, s = math.cos(azimuth), math.sin(azimuth)
        np.testing.assert_allclose(upright, [[c, s, 0], [-s, c, 0], [0, 0, 1]], atol=1e-9)


def test_the_viewer_camera_sees_the_upright_shape_where_the_picture_shows_it():
    from recon_core.viewframe import viewer_camera

    rng = np.random.default_rng(3)
    q = rng.uniform(-0.35, 0.35, size=(300, 3))
    transform = upright_transform(q, 0.4)
    upright = q @ transform[:3, :3].T + transform[:3, 3]
    extent = upright.max(axis=0) - upright.min(axis=0)
    assert math.isclose(extent.max(), 1.0)
    np.testing.assert_allclose((upright.max(axis=0) + upright.min(axis=0)) / 2, 0, atol=1e-12)
    camera = viewer_camera(transform, 256)
    uv, depth = project(upright, camera.extrinsic, camera.intrinsic, "perspective")
    grid = image_coordinates(torch.tensor(q)).numpy()
    np.testing.assert_allclose(uv, (grid + 1.0) * 128.0, atol=1e-9)
    assert (depth > 0).all()


def test_a_pixel_aligned_model_meshes_upright_with_colours_and_re_extracts(tmp_path):
    from helpers import aligned_octahedron_model
    from PIL import Image

    from recon_core import worker

    model = aligned_octahedron_model(tmp_path / "aligned.safetensors", elevation=0.3)
    rgba = np.zeros((120, 160, 4), np.uint8)
    rgba[30:90, 50:110] = (200, 40, 30, 255)
    picture = tmp_path / "red.png"
    Image.fromarray(rgba).save(picture)
    job = {
        "model": str(model),
        "image": str(picture),
        "output": "mesh",
        "resolution": 64,
        "result": str(tmp_path / "a.npz"),
        "save_encoding": str(tmp_path / "encoding.npz"),
    }
    first = worker.run_job(job)
    assert str(first["view_text"]) == "front (azimuth 0, elevation 17)"
    vertices = first["vertices"]
    extent = vertices.max(axis=0) - vertices.min(axis=0)
    assert abs(extent.max() - 1.0) < 1e-5  # normalised as every result is
    # the viewer-frame octahedron turned upright by the elevation and normalised
    corners = 0.35 * np.concatenate([np.eye(3), -np.eye(3)])
    transform = upright_transform(corners, 0.3)
    expected = corners @ transform[:3, :3].T + transform[:3, 3]
    np.testing.assert_allclose(vertices.min(axis=0), expected.min(axis=0), atol=0.03)
    np.testing.assert_allclose(vertices.max(axis=0), expected.max(axis=0), atol=0.03)
    top = vertices[vertices[:, 2].argmax()]
    assert top[1] > 0.1  # its top leans away from the viewer, as the camera looked down
    # colours come from the picture through the viewer's own camera: the red box
    seen = first["colours"][np.abs(first["colours"].astype(int) - (200, 40, 30)).max(1) < 30]
    assert len(seen) > 0.3 * len(first["colours"])
    again = worker.run_job(
        {
            "encoding": str(tmp_path / "encoding.npz"),
            "output": "mesh",
            "resolution": 64,
            "result": str(tmp_path / "b.npz"),
        }
    )
    np.testing.assert_array_equal(again["vertices"], vertices)
    assert str(again["view_text"]) == str(first["view_text"])


def test_the_user_placement_finds_the_true_shape_from_an_upright_result(tiny_dataset):
    """A perfect viewer-frame result, turned upright and normalised as the user gets it,
    comes back onto the truth with the render's azimuth alone."""
    from recon_core.data import read_index, read_record
    from recon_core.extraction import Mesh
    from recon_core.viewframe import camera_elevation
    from training.reports.evaluate import _turned_by_the_azimuth

    entry = read_index(tiny_dataset)["records"][0]
    arrays, _ = read_record(tiny_dataset / entry["file"])
    truth = arrays["surface_points"].astype(np.float64)
    for view in range(len(arrays["renders"])):
        extrinsic = torch.tensor(arrays["render_extrinsics"][view : view + 1], dtype=torch.float64)
        intrinsic = torch.tensor(arrays["render_intrinsics"][view : view + 1], dtype=torch.float64)
        to_view = view_transform(extrinsic, intrinsic, arrays["renders"].shape[1])[0].numpy()
        q = truth @ to_view[:3, :3].T + to_view[:3, 3]
        upright = upright_transform(q, camera_elevation(extrinsic)[0].item())
        user = q @ upright[:3, :3].T + upright[:3, 3]
        placed = _turned_by_the_azimuth(Mesh(user, np.zeros((0, 3), np.int64)), arrays, view)
        np.testing.assert_allclose(placed.vertices, truth, atol=2e-3)


def test_the_evaluation_reports_how_far_the_estimated_elevation_is(tiny_dataset, tmp_path):
    """A model that always estimates 0.3 rad is off by |0.3 - the render's elevation|."""
    import json

    from helpers import aligned_octahedron_model

    from recon_core.data import read_index, read_record
    from recon_core.viewframe import camera_elevation
    from training.reports.evaluate import evaluate

    model = aligned_octahedron_model(tmp_path / "aligned.safetensors", elevation=0.3)
    expected = {}
    for entry in read_index(tiny_dataset)["records"]:
        arrays, _ = read_record(tiny_dataset / entry["file"])
        extrinsic = torch.tensor(arrays["render_extrinsics"][:1], dtype=torch.float64)
        expected[entry["id"]] = math.degrees(abs(0.3 - camera_elevation(extrinsic)[0].item()))
    assert max(expected.values()) > 1.0  # the renders' cameras are not all at 0.3 rad
    for placement in ("camera", "user"):
        report = tmp_path / placement
        evaluate(model, tiny_dataset, "all", report, 32, progress=False, placement=placement)
        metrics = json.loads((report / "metrics.json").read_text())
        got = {r["id"]: r["elevation_error"] for r in metrics["per_shape"]}
        assert got == {k: pytest.approx(v, abs=1e-3) for k, v in expected.items()}
        assert metrics["mean_over_categories"]["elevation_error"] > 0.0


def test_a_bundled_viewer_frame_model_is_scored_as_users_get_it(tiny_dataset, tmp_path):
    """Bundling scores a pixel-aligned model upright by its own elevation estimate, and
    MODELS.md says so with the estimate's mean error."""
    import json

    from helpers import aligned_octahedron_model

    from recon_core.checkpoint import read_metadata
    from training import bundle

    run = tmp_path / "run"
    run.mkdir()
    aligned_octahedron_model(run / "model.safetensors", elevation=0.3)
    out = tmp_path / "models"
    args = ["--run", str(run), "--name", "aligned", "--data", str(tiny_dataset), "--out", str(out)]
    assert bundle.main([*args, "--train-data", str(tiny_dataset), "--resolution", "32"]) == 0
    metrics = read_metadata(out / "aligned.safetensors")["metrics"]
    assert metrics["placement"] == "user"
    error = metrics["mean_over_categories"]["elevation_error"]
    report = json.loads((run / "test-report" / "metrics.json").read_text())
    assert report["placement"] == "user"
    assert error == report["mean_over_categories"]["elevation_error"]
    text = (out / "MODELS.md").read_text()
    assert f"turned upright by the elevation the network estimated ({error:.1f} degrees" in text

"""User pictures: modes, orientation, masks; colours from the estimated viewpoint; GLB; meshes
from point clouds."""

import io
import math
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from recon_core import imaging
from recon_core.cloudmesh import mesh_from_points
from recon_core.colour import (
    VIEW_NAMES,
    ViewHint,
    _framed_camera,
    close_cross,
    estimate_view,
    fit_framing,
    parse_view,
    point_colours,
    vertex_normals,
    view_name,
)
from recon_core.geometry import look_at, project, view_direction
from recon_core.meshio import write_result
from recon_core.picture import Picture, PictureError, estimate_mask, read_picture


def _square(size=(80, 60)):
    rgb = np.full((size[1], size[0], 3), 255, np.uint8)
    rgb[10:40, 20:50] = (30, 90, 200)
    return rgb


@pytest.mark.parametrize("mode", ["RGB", "P", "L", "CMYK", "I;16", "RGBA", "LA"])
def test_every_common_mode_reads_with_a_mask(tmp_path, mode):
    image = Image.fromarray(_square())
    if mode == "I;16":
        grey = np.asarray(image.convert("L")).astype(np.uint16) * 257
        image = Image.fromarray(grey)
        assert image.mode == "I;16"
    elif mode in ("RGBA", "LA"):
        alpha = np.zeros((60, 80), np.uint8)
        alpha[10:40, 20:50] = 255
        image = image.convert(mode[:-1])
        image.putalpha(Image.fromarray(alpha))
    else:
        image = image.convert(mode)
    path = tmp_path / ("p.jpg" if mode == "CMYK" else "p.png")
    image.save(path)
    picture = read_picture(path, background="auto" if mode in ("RGBA", "LA") else "plain")
    assert picture.rgb.shape == (60, 80, 3) and picture.rgb.dtype == np.uint8
    truth = np.zeros((60, 80), bool)
    truth[10:40, 20:50] = True
    assert (picture.mask & truth).sum() / (picture.mask | truth).sum() > 0.9
    assert picture.mask_source == ("alpha" if mode in ("RGBA", "LA") else "plain")
    framed = picture.framed(64)
    assert framed.shape == (64, 64, 4)
    rows = np.flatnonzero((framed[..., 3] > 127).any(axis=1))
    assert abs((rows[-1] - rows[0] + 1) - 0.8 * 64) <= 2  # longer side fills 80%


@pytest.mark.parametrize("size", [64, 128])
def test_framing_a_large_photo_averages_blocks_first_and_stays_close_to_the_exact_filter(
    monkeypatch, size
):
    """A 2000 x 2400 picture framed to the networks' sizes: blocks of pixels are averaged
    first (the path is taken), and the result is the exact area filter's within a couple of
    levels of alpha, and of colour within the contrast of the edges inside a pixel times
    the blocks' share of it."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:2000, :2400]
    rgba = np.empty((2000, 2400, 4), np.uint8)
    rgba[..., 0] = xx * 255 // 2400  # smooth
    rgba[..., 1] = rng.integers(0, 256, (2000, 2400))  # noise
    checker = (xx // 37 + yy // 23) % 2 == 0
    rgba[..., 2] = np.where(checker, 40, 220)  # sharp edges of contrast 180
    rgba[..., 3] = np.where((xx - 1100) ** 2 / 1.3 + (yy - 1050) ** 2 < 800**2, 255, 0)
    rgba[..., :3][rgba[..., 3] == 0] = (255, 0, 255)  # must not bleed into the outline
    box = imaging.square_crop_box(rgba[..., 3] > 0)
    factors = []
    shrunk = imaging._shrunk
    monkeypatch.setattr(imaging, "_shrunk", lambda *a: factors.append(a[1]) or shrunk(*a))
    fast = imaging.crop_resize(rgba, box, size)
    assert factors == [int(box[2] / size) // imaging.BLOCKS_PER_PIXEL] and factors[0] >= 2
    monkeypatch.setattr(imaging, "BLOCKS_PER_PIXEL", 10**9)
    exact = imaging.crop_resize(rgba, box, size)
    assert len(factors) == 1  # the exact filter alone
    diff = np.abs(fast.astype(int) - exact)
    assert diff[..., 3].max() <= 2 and diff[..., 3].mean() < 0.05
    inner = exact[..., 3] == 255
    share = factors[0] * size / box[2]  # a block's share of an output pixel's side
    assert diff[inner][:, 0].max() <= 1
    assert diff[inner][:, 1].max() <= 255 * share and diff[inner][:, 1].mean() < 1
    assert diff[inner][:, 2].max() <= 180 * share + 1 and diff[inner][:, 2].mean() < 1
    outline = (exact[..., 3] >= 64) & ~inner
    assert diff[outline][:, 0].max() <= 2 and diff[outline][:, :3].mean() < 2


@pytest.mark.parametrize("shape", [(300, 200), (3000, 2000)])
def test_a_picture_frames_its_window_as_the_whole_picture_would(shape):
    """`Picture.framed` copies only the framed window, also when the window runs off the
    picture's edge, and gives what framing the whole picture gives, for small and large
    pictures alike."""
    rng = np.random.default_rng(1)
    height, width = shape
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros(shape, bool)
    mask[height // 10 : height // 2, : width // 3] = True  # touches the left edge
    picture = Picture(Path("p.png"), rgb, mask, "file")
    for size in (64, 128, 256):
        whole = imaging.crop_resize(picture.rgba(), imaging.square_crop_box(mask), size)
        assert np.array_equal(picture.framed(size), whole)


def test_exif_orientation_is_applied(tmp_path):
    rgb = _square()  # 80 wide, 60 high
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    Image.fromarray(rgb).save(path, exif=exif.tobytes(), quality=95)
    picture = read_picture(path)
    assert picture.rgb.shape == (80, 60, 3)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_large_photo_is_worked_on_at_the_capped_size_and_its_full_size_mask_fits(
    tmp_path, suffix, caplog
):
    from recon_core.picture import MAX_SIDE

    height, width = 3000, 4400
    rgb = np.full((height, width, 3), 250, np.uint8)
    rgb[1000:2200, 1500:3100] = (40, 110, 190)
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(rgb).save(path, quality=95)
    mask_path = tmp_path / "mask.png"
    Image.fromarray(((rgb[..., 0] < 128) * 255).astype(np.uint8)).save(mask_path)
    with caplog.at_level("WARNING", logger="recon3d"):
        picture = read_picture(path, mask_path)
    assert max(picture.rgb.shape[:2]) <= MAX_SIDE
    assert max(picture.rgb.shape[:2]) >= MAX_SIDE // 2
    aspect = picture.rgb.shape[1] / picture.rgb.shape[0]
    assert aspect == pytest.approx(width / height, rel=0.01)
    assert not [r for r in caplog.records if "rescaled" in r.getMessage()]
    scale = picture.rgb.shape[0] / height
    box = np.argwhere(picture.mask)
    assert box.min(axis=0) == pytest.approx([1000 * scale, 1500 * scale], abs=2)
    assert box.max(axis=0) == pytest.approx([2200 * scale, 3100 * scale], abs=2)
    inner = picture.mask.copy()
    for axis in (0, 1):  # away from the edge, where resampling mixes the two colours
        inner &= np.roll(picture.mask, 3, axis) & np.roll(picture.mask, -3, axis)
    assert np.abs(picture.rgb[inner].astype(int) - (40, 110, 190)).max() < 12
    half = tmp_path / "half.png"
    Image.open(mask_path).resize((width // 2, height // 2)).save(half)
    with caplog.at_level("WARNING", logger="recon3d"):
        read_picture(path, half)
    assert [r for r in caplog.records if "rescaled" in r.getMessage()]


def test_background_estimate_follows_a_studio_gradient():
    h, w = 200, 240
    ys, xs = np.mgrid[0:h, 0:w]
    background = 230 - 90 * ys / h  # light top, darker bottom, as a cyclorama
    rgb = np.repeat(background[..., None], 3, axis=2)
    inside = (xs - 120) ** 2 / 60**2 + (ys - 110) ** 2 / 70**2 < 1
    rgb[inside] = (150, 110, 80)
    rng = np.random.default_rng(0)
    rgb = np.clip(rgb + rng.normal(0, 2, rgb.shape), 0, 255).astype(np.uint8)
    mask = estimate_mask(rgb)
    assert (mask & inside).sum() / (mask | inside).sum() > 0.97
    assert not estimate_mask(np.full((50, 50, 3), 128, np.uint8)).any()


def test_mask_file_errors_name_the_file(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(_square()).save(path)
    Image.new("L", (80, 60), 0).save(tmp_path / "black.png")
    with pytest.raises(PictureError, match="black.png: the mask is empty"):
        read_picture(path, tmp_path / "black.png")
    mask = Image.new("L", (40, 30), 0)
    mask.paste(255, (5, 5, 15, 15))
    mask.save(tmp_path / "half.png")  # another size: scaled to the picture's
    picture = read_picture(path, tmp_path / "half.png")
    assert picture.mask_source == "file" and picture.mask[10:30, 10:30].all()


def _l_shape(n=6000, seed=0):
    """Points on an asymmetric L-shaped pair of boxes (no mirror or rotational symmetry)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform([-0.4, -0.1, -0.3], [0.4, 0.1, -0.1], (n // 2, 3))
    b = rng.uniform([0.2, -0.1, -0.1], [0.4, 0.1, 0.45], (n // 2, 3))
    return np.concatenate([a, b])


def _silhouette(points, azimuth, elevation, framed_on=None, size=128):
    """The pixels (size, size) that ``points`` project to from a camera at ``azimuth``,
    ``elevation`` (degrees), framed on ``framed_on`` (default: the points themselves)."""
    eye = 2.2 * view_direction(math.radians(azimuth), math.radians(elevation))
    camera = _framed_camera(points if framed_on is None else framed_on, look_at(eye), size)
    uv, _ = project(points, camera.extrinsic, camera.intrinsic, "perspective")
    mask = np.zeros((size, size), bool)
    ij = np.clip(uv.astype(int), 0, size - 1)
    mask[ij[:, 1], ij[:, 0]] = True
    return mask


def test_viewpoint_is_recovered_from_a_silhouette():
    points = _l_shape()
    for azimuth, elevation in [(40.0, 20.0), (250.0, 10.0)]:
        mask = _silhouette(points, azimuth, elevation)
        estimate = estimate_view(points, mask)
        assert abs((estimate.azimuth - azimuth + 180) % 360 - 180) <= 10
        assert abs(estimate.elevation - elevation) <= 10 and estimate.iou > 0.6


def test_a_view_hint_settles_front_against_back():
    # a box whose front and back have the same outline: the silhouette cannot tell 30
    # degrees from 210, a hint can
    rng = np.random.default_rng(3)
    half = rng.uniform(-1, 1, (20000, 3)) * (0.4, 0.25, 0.3)
    dense = np.concatenate([half, half * (-1, -1, 1)])  # the same from the front and back
    points = np.concatenate([half[:2000], half[:2000] * (-1, -1, 1)])
    azimuth, elevation = 210.0, 20.0
    mask = _silhouette(dense, azimuth, elevation, framed_on=points)
    plain = estimate_view(points, mask)
    assert abs((plain.azimuth - 30.0 + 180) % 360 - 180) <= 10  # the first of the twins
    for hint in (parse_view("back-left"), ViewHint(200.0, 25.0)):
        hinted = estimate_view(points, mask, hint=hint)
        assert abs((hinted.azimuth - azimuth + 180) % 360 - 180) <= 10, (hint, hinted)
        assert abs(hinted.elevation - elevation) <= 10 and hinted.iou > 0.6
        azimuths, elevations = hint.angles()
        assert hinted.azimuth in azimuths and hinted.elevation in elevations
    assert ViewHint(350.0).angles()[0] == (330.0, 335.0, 340.0, 345.0, 350.0, 355.0, 0.0, 5.0, 10.0)
    assert ViewHint(0.0, 30.0).angles()[1] == (20.0, 25.0, 30.0, 35.0, 40.0)


def test_view_hints_parse_names_and_angles_and_refuse_the_rest():
    assert parse_view("front") == ViewHint(0.0)
    # and the other way: the nearest named direction, for saying where colours came from
    assert [view_name(a) for a in (0.0, 22.0, 23.0, 359.6, -40.0, 180.0, 91.0, 250.0)] == [
        "front",
        "front",
        "front-right",
        "front",
        "front-left",
        "back",
        "right",
        "left",
    ]
    for name, azimuth in VIEW_NAMES.items():
        assert view_name(azimuth) == name
        assert parse_view(view_name(azimuth + 20.0)) == ViewHint(azimuth)
    assert parse_view("Back-Left, 30") == ViewHint(225.0, 30.0)
    assert parse_view("right") == ViewHint(90.0)  # from +X, as Blender's Right view
    assert parse_view("-90") == ViewHint(270.0)
    assert parse_view("400,-5") == ViewHint(40.0, -5.0)
    for text, problem in [
        ("sideways", "neither a number nor one of front"),
        ("front,high", "elevation 'high' is not a number"),
        ("front,95", "within -90 to 90"),
        ("1,2,3", "expected NAME or AZIMUTH"),
        ("", "expected NAME"),
        ("nan", "not finite"),
    ]:
        with pytest.raises(ValueError, match=problem):
            parse_view(text)


def test_batched_viewpoint_search_scores_like_a_per_candidate_loop():
    from scipy import ndimage

    points = _l_shape(3000, seed=1)
    mask = np.zeros((96, 96), bool)
    mask[20:80, 30:70] = True  # a box silhouette: several candidates score close together
    mask[20:40, 30:50] = False
    pick = ((np.arange(64) + 0.5) * 1.5).astype(int)  # the 96-pixel mask sampled at 64
    target = mask[pick][:, pick]
    scores = {}
    for elevation in (-10, 0, 10, 20, 30, 40, 50, 60):
        for azimuth in np.arange(0.0, 360.0, 10.0):
            eye = 2.2 * view_direction(math.radians(azimuth), math.radians(elevation))
            camera = _framed_camera(points, look_at(eye), 64)
            uv, _ = project(points, camera.extrinsic, camera.intrinsic, "perspective")
            ij = np.clip(np.floor(uv).astype(int), 0, 63)
            image = np.zeros((64, 64), bool)
            image[ij[:, 1], ij[:, 0]] = True
            image = ndimage.binary_closing(image)
            score = (image & target).sum() / (image | target).sum()
            scores[float(azimuth), float(elevation)] = score
    estimate = estimate_view(points, mask, refine_framing=False)
    assert estimate.iou == pytest.approx(max(scores.values()), abs=2e-3)
    assert scores[estimate.azimuth, estimate.elevation] == pytest.approx(estimate.iou, abs=2e-3)


def test_fast_closing_equals_scipy_binary_closing():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    cross = ndimage.generate_binary_structure(2, 1)[None]
    for density in (0.05, 0.3, 0.6, 0.95):
        images = rng.random((7, 33, 40)) < density
        images[0, 0, :] = True  # a full border row
        np.testing.assert_array_equal(close_cross(images), ndimage.binary_closing(images, cross))


def _chair(n=24000, seed=0):
    """Points of a chair (seat, back, four thin legs) and which of them are legs."""
    rng = np.random.default_rng(seed)
    seat = rng.uniform([-0.3, -0.3, -0.05], [0.3, 0.3, 0.05], (n // 2, 3))
    back = rng.uniform([-0.3, 0.2, 0.05], [0.3, 0.3, 0.5], (n // 4, 3))
    legs = rng.uniform([-0.03, -0.03, -0.5], [0.03, 0.03, -0.05], (n // 4, 3))
    legs[:, :2] += np.array([[-0.26, -0.26], [0.26, -0.26], [-0.26, 0.26], [0.26, 0.26]])[
        np.arange(len(legs)) % 4
    ]
    points = np.concatenate([seat, back, legs])
    return points, np.arange(len(points)) >= len(seat) + len(back)


def _pixel_error(points, camera, truth):
    """Mean distance (fraction of the side) between where ``camera`` and ``truth`` put
    ``points``."""
    uv, _ = project(points, camera.extrinsic, camera.intrinsic, "perspective")
    uv_true, _ = project(points, truth.extrinsic, truth.intrinsic, "perspective")
    return float(np.linalg.norm(uv - uv_true, axis=1).mean()) / truth.width


def test_framing_fit_puts_a_prediction_that_lost_its_legs_where_the_picture_shows_it():
    points, legs = _chair()
    extrinsic = look_at(2.2 * view_direction(math.radians(30.0), math.radians(20.0)))
    truth = _framed_camera(points, extrinsic, 128)
    mask = _silhouette(points, 30.0, 20.0)
    legless = points[~legs][::4]
    boxed = _framed_camera(legless, extrinsic, 128)  # the seat framed onto the picture's feet
    fitted, iou = fit_framing(legless, extrinsic, mask)
    assert _pixel_error(legless, boxed, truth) > 0.08
    assert _pixel_error(legless, fitted, truth) < 0.02
    assert iou > 0.7
    # estimate_view frames its winner the same way
    estimate = estimate_view(legless, mask, hint=ViewHint(30.0, 20.0))
    assert _pixel_error(legless, estimate.camera, truth) < 0.03
    unrefined = estimate_view(legless, mask, hint=ViewHint(30.0, 20.0), refine_framing=False)
    assert _pixel_error(legless, unrefined.camera, truth) > 0.08
    # a complete prediction keeps the framing pictures are framed with
    whole = points[::4]
    fitted, _ = fit_framing(whole, extrinsic, mask)
    assert _pixel_error(whole, fitted, truth) < 0.01


def test_framing_fit_aligns_a_prediction_that_grew_a_part():
    # the prediction grew a shelf the object does not have: its bounding box frames the
    # body too small and off centre; the fit matches the body to the picture, the shelf
    # partly out of it
    points, legs = _chair()
    body = points[~legs]
    extrinsic = look_at(2.2 * view_direction(0.0, 10.0))
    truth = _framed_camera(body, extrinsic, 128)
    uv, _ = project(body, truth.extrinsic, truth.intrinsic, "perspective")
    mask = np.zeros((128, 128), bool)
    ij = np.clip(uv.astype(int), 0, 127)
    mask[ij[:, 1], ij[:, 0]] = True
    rng = np.random.default_rng(1)
    shelf = rng.uniform([0.3, -0.3, -0.05], [0.55, 0.3, 0.05], (2000, 3))
    grown = np.concatenate([body[::3], shelf])
    before = _pixel_error(body[::3], _framed_camera(grown, extrinsic, 128), truth)
    assert before > 0.1
    # by the overlap alone the body lands where the picture has it; at the default cost of
    # leaving the bounding-box framing, most of the way there
    fitted, _ = fit_framing(grown, extrinsic, mask, stay=0.0)
    assert _pixel_error(body[::3], fitted, truth) < 0.04
    fitted, _ = fit_framing(grown, extrinsic, mask)
    assert _pixel_error(body[::3], fitted, truth) < 0.7 * before


def test_seen_vertices_take_the_picture_colour_and_hidden_ones_their_mirror():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.4)
    vertices = np.asarray(sphere.vertices)
    camera = _framed_camera(vertices, look_at(2.2 * view_direction(0.0, 0.0)), 128)
    uv, _ = project(vertices, camera.extrinsic, camera.intrinsic, "perspective")
    rgba = np.zeros((128, 128, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:, :64, :3] = (255, 0, 0)  # the picture's left half red (the object's -x side)
    rgba[:, 64:, :3] = (0, 0, 255)
    colours, seen = point_colours(vertices, rgba, camera, vertex_normals(vertices, sphere.faces))
    front = vertices[:, 1] < -0.15  # camera at azimuth 0 stands at -Y
    assert seen[front].all() and not seen[vertices[:, 1] > 0.1].any()
    left, right = vertices[:, 0] < -0.05, vertices[:, 0] > 0.05
    assert (colours[left] == (255, 0, 0)).all() and (colours[right] == (0, 0, 255)).all()


def test_glb_round_trip_keeps_geometry_upright(tmp_path):
    box = trimesh.creation.box((0.2, 0.4, 0.8))  # tall along +Z in the object frame
    path = write_result(
        tmp_path / "box.glb",
        box.vertices,
        box.faces,
        np.full((len(box.vertices), 3), 200, np.uint8),
    )
    loaded = trimesh.load(path, force="mesh", process=False)
    extent = loaded.vertices.max(axis=0) - loaded.vertices.min(axis=0)
    assert np.allclose(extent, [0.2, 0.8, 0.4])  # glTF: +Y up
    assert loaded.is_watertight and np.isclose(loaded.volume, 0.2 * 0.4 * 0.8)


def test_mesh_from_points_is_closed_and_close_to_the_surface():
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(40000, 3))
    points = 0.35 * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    mesh = mesh_from_points(points, resolution=96)
    tri = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    assert tri.is_watertight and tri.is_winding_consistent and tri.volume > 0
    radius = np.linalg.norm(mesh.vertices, axis=1)
    assert abs(np.median(radius) - 0.35) < 0.02
    with pytest.raises(ValueError, match="too few"):
        mesh_from_points(np.zeros((2, 3)))


def test_truncated_and_odd_files_are_one_line_errors(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(_square()).save(buffer, format="PNG")
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[:-40])
    (tmp_path / "folder.png").mkdir()
    for name in ("cut.png", "folder.png"):
        with pytest.raises(PictureError) as info:
            read_picture(tmp_path / name)
        assert name in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("seed", range(4))
def test_small_holes_are_filled_as_a_flood_fill_finds_them(seed):
    """The one-pass hole filling against the reference: scipy's flood of the background
    from the picture's edge, its enclosed parts labelled and the small ones filled."""
    from scipy import ndimage

    from recon_core.picture import _fill_small_holes

    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.normal(size=(120, 90)), 2.0)
    mask = noise > np.quantile(noise, rng.uniform(0.3, 0.7))
    mask[40:80, 30:60] = True
    mask[50:52, 40:43] = False  # a small enclosed hole
    mask[55:75, 35:55] &= ~(np.add.outer(np.arange(20), np.arange(20)) % 7 == 0)
    for share in (0.0005, 0.005, 0.05):
        holes = ndimage.binary_fill_holes(mask) & ~mask
        labels, count = ndimage.label(holes)
        sizes = ndimage.sum(holes, labels, index=np.arange(1, count + 1))
        reference = mask | np.isin(labels, 1 + np.flatnonzero(sizes < share * mask.size))
        filled = _fill_small_holes(mask, share)
        assert np.array_equal(filled, reference)
        assert filled[50:52, 40:43].all() == (6 < share * mask.size)
    assert np.array_equal(_fill_small_holes(np.ones((5, 5), bool)), np.ones((5, 5), bool))
    assert not _fill_small_holes(np.zeros((5, 5), bool)).any()

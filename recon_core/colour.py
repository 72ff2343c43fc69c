"""Colours from the input picture: find the viewpoint the picture was taken from, then
project.

The networks predict shapes in the object frame; the picture's camera is unknown. It is
recovered by silhouette matching: the predicted surface is projected from a grid of
viewpoints (the azimuths and elevations the training renders cover), each projection framed
the way pictures are framed (`recon_core.imaging.square_crop_box`), and the viewpoint whose
silhouette best overlaps the picture's mask wins. Points that this camera sees take the
picture's colour there; hidden points take the colour of their mirror image across the
object's left-right plane (x = 0) when the shape is mirror-symmetric and the mirror image is
seen, and otherwise the colour of the nearest seen point.

A silhouette cannot tell an object's front from its back, and the viewpoint estimator often
cannot either; a `ViewHint` (the side the picture was taken from, as the user knows it)
narrows the search to the viewpoints near it.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from recon_core.geometry import (
    Camera,
    angle_gap,
    look_at,
    perspective_intrinsics,
    project,
    view_direction,
)
from recon_core.imaging import OBJECT_FILL, crop_intrinsics

__all__ = [
    "ViewEstimate",
    "ViewHint",
    "VIEW_NAMES",
    "parse_view",
    "view_name",
    "estimate_view",
    "fit_framing",
    "close_cross",
    "splat_depth",
    "point_colours",
    "vertex_normals",
]

CAMERA_DISTANCE = 2.2
"""Distance of the candidate cameras (the middle of the training renders' range)."""
PRIOR_WEIGHT = 1.0
"""Weight of the viewpoint estimator's log probability beside the silhouette overlap (0 to
1): with the predicted shapes' silhouettes as unreliable as today's, the estimator decides
and the overlap breaks near ties (0.3 and 1.0 measured the same on the val split, 0.05
worse)."""
HINT_AZIMUTH_WINDOW = 20.0
"""A view hint's azimuth is searched within this many degrees either side (5-degree steps):
a user who names one of eight directions is within 22.5 degrees of the truth."""
HINT_ELEVATION_WINDOW = 10.0
"""... and its elevation, when given, within this many (5-degree steps)."""
DEFAULT_ELEVATIONS = (-10.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0)
VIEW_NAMES = {
    "front": 0.0,
    "front-right": 45.0,
    "right": 90.0,
    "back-right": 135.0,
    "back": 180.0,
    "back-left": 225.0,
    "left": 270.0,
    "front-left": 315.0,
}
"""Azimuths (degrees) of the directions a picture can be taken from, named as Blender's views
name them: front looks at the object's front from -Y, right from +X (numpad 3)."""
_FOV = 2.0 * math.asin(math.sqrt(3.0) / 2.0 / CAMERA_DISTANCE) * 1.05


class ViewEstimate(NamedTuple):
    camera: Camera
    """Perspective camera of the framed picture (its size is the framed image's)."""
    azimuth: float
    elevation: float
    """Degrees."""
    iou: float
    """Overlap of the predicted silhouette with the picture's mask from this viewpoint."""

    def describe(self) -> str:
        """``front-left (azimuth 320, elevation 20)``: the named direction nearest to the
        azimuth (`view_name`), and the angles rounded to degrees."""
        return (
            f"{view_name(self.azimuth)} (azimuth {round(self.azimuth) % 360},"
            f" elevation {round(self.elevation)})"
        )


def view_name(azimuth: float) -> str:
    """The named direction (`VIEW_NAMES`) nearest to ``azimuth`` (degrees)."""
    return min(VIEW_NAMES, key=lambda n: float(angle_gap(VIEW_NAMES[n], azimuth)))


class ViewHint(NamedTuple):
    """Where the picture was taken from, roughly: the azimuth in degrees (0 = front, from -Y;
    90 = right, from +X) and optionally the elevation in degrees above the object's horizon."""

    azimuth: float
    elevation: float | None = None

    def angles(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The candidate azimuths and elevations (degrees) the search tries."""
        offsets = np.arange(-HINT_AZIMUTH_WINDOW, HINT_AZIMUTH_WINDOW + 1e-9, 5.0)
        azimuths = tuple(float(a) for a in np.remainder(self.azimuth + offsets, 360.0))
        if self.elevation is None:
            return azimuths, DEFAULT_ELEVATIONS
        offsets = np.arange(-HINT_ELEVATION_WINDOW, HINT_ELEVATION_WINDOW + 1e-9, 5.0)
        return azimuths, tuple(float(self.elevation + e) for e in offsets)


def parse_view(text: str) -> ViewHint:
    """A view hint from ``NAME``, ``AZIMUTH`` or either followed by ``,ELEVATION`` (degrees):
    ``front``, ``back-left,30``, ``200``, ``90,15``. ValueError names what is wrong."""
    parts = [part.strip().lower() for part in str(text).split(",")]
    if len(parts) > 2 or not parts[0]:
        raise ValueError(f"view {text!r}: expected NAME or AZIMUTH, optionally ,ELEVATION")
    if parts[0] in VIEW_NAMES:
        azimuth = VIEW_NAMES[parts[0]]
    else:
        try:
            azimuth = float(parts[0])
        except ValueError:
            names = ", ".join(VIEW_NAMES)
            raise ValueError(
                f"view {text!r}: {parts[0]!r} is neither a number nor one of {names}"
            ) from None
    elevation = None
    if len(parts) == 2:
        try:
            elevation = float(parts[1])
        except ValueError:
            raise ValueError(f"view {text!r}: elevation {parts[1]!r} is not a number") from None
        if not -90.0 <= elevation <= 90.0:
            raise ValueError(f"view {text!r}: elevation must be within -90 to 90 degrees")
    if not math.isfinite(azimuth):
        raise ValueError(f"view {text!r}: azimuth is not finite")
    return ViewHint(float(azimuth) % 360.0, elevation)


def _framed_camera(points: np.ndarray, extrinsic: np.ndarray, size: int) -> Camera:
    """The camera at ``extrinsic`` with its image framed around ``points``' projection."""
    base = 512
    intrinsic = perspective_intrinsics(_FOV, base)
    uv, _ = project(points, extrinsic, intrinsic, "perspective")
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    side = max(float((hi - lo).max()), 1e-6) / OBJECT_FILL
    centre = (lo + hi) / 2.0
    box = (centre[0] - side / 2.0, centre[1] - side / 2.0, side)
    return Camera(extrinsic, crop_intrinsics(intrinsic, box, size), "perspective", size, size)


def estimate_view(
    points: np.ndarray,
    mask: np.ndarray,
    azimuth_step: float = 10.0,
    elevations: tuple[float, ...] = DEFAULT_ELEVATIONS,
    size: int = 64,
    prior=None,
    prior_weight: float = PRIOR_WEIGHT,
    hint: ViewHint | None = None,
    refine_framing: bool = True,
) -> ViewEstimate:
    """Viewpoint of a framed picture whose object mask (S, S) is ``mask``, given points
    (N, 3) on the predicted surface (a few thousand suffice). Every candidate is scored at
    once: one batched projection, framing and silhouette stack. ``prior``: the viewpoint
    estimator's bin probabilities for the picture (`recon_core.viewpoint`); a candidate then
    scores its silhouette overlap plus ``prior_weight`` times its log probability. ``hint``:
    only the viewpoints near it are candidates (in place of ``azimuth_step`` and
    ``elevations``). ``refine_framing``: the winner's framing is then searched for the best
    overlap (`fit_framing`) instead of taken from the points' bounding box."""

    points = np.asarray(points, dtype=np.float64)
    if len(points) == 0:
        raise ValueError("no points to estimate the viewpoint from")
    points = points[:: max(1, len(points) // 6000)]
    target = _downsample_mask(np.asarray(mask, bool), size)
    if hint is None:
        azimuths = tuple(float(a) for a in np.arange(0.0, 360.0, float(azimuth_step)))
        elevations = tuple(float(e) for e in elevations)
    else:
        azimuths, elevations = hint.angles()
    candidates, extrinsics = _candidate_views(azimuths, elevations)
    # pixel coordinates in a 512-pixel image, then framed as `_framed_camera` frames them;
    # (N, K) arrays in float32 from one matrix product: a few passes over N x K values
    count = len(candidates)
    linear = extrinsics[:, :3, :3].reshape(count * 3, 3).T.astype(np.float32)
    cam = points.astype(np.float32) @ linear + extrinsics[:, :3, 3].reshape(-1).astype(np.float32)
    cam = cam.reshape(len(points), count, 3)
    depth = -cam[..., 2]
    depth[np.abs(depth) < 1e-12] = 1e-12
    intrinsic = perspective_intrinsics(_FOV, 512)
    u = cam[..., 0] / depth * np.float32(intrinsic[0, 0]) + np.float32(intrinsic[0, 2])
    v = cam[..., 1] / depth * np.float32(-intrinsic[1, 1]) + np.float32(intrinsic[1, 2])
    lo_u, lo_v, hi_u, hi_v = u.min(axis=0), v.min(axis=0), u.max(axis=0), v.max(axis=0)
    side = np.maximum(np.maximum(hi_u - lo_u, hi_v - lo_v), 1e-6) / OBJECT_FILL
    scale = size / side
    i = np.clip(np.floor((u - ((lo_u + hi_u) / 2 - side / 2)) * scale), 0, size - 1)
    j = np.clip(np.floor((v - ((lo_v + hi_v) / 2 - side / 2)) * scale), 0, size - 1)
    overlap = _overlaps(i.astype(np.int64), j.astype(np.int64), target)
    scores = overlap
    if prior is not None:
        log_prob = prior.log_prob(*np.asarray(candidates).T)  # azimuths, elevations
        scores = overlap + prior_weight * np.maximum(log_prob, -30.0)
    best = int(np.argmax(scores))  # the first of equal scores, as the grid is listed
    azimuth, elevation = candidates[best]
    if refine_framing:
        camera, iou = fit_framing(points, extrinsics[best], mask, size)
        return ViewEstimate(camera, azimuth, elevation, iou)
    camera = _framed_camera(points, extrinsics[best], mask.shape[0])
    return ViewEstimate(camera, azimuth, elevation, float(overlap[best]))


FRAMING_SCALES = tuple(float(s) for s in np.geomspace(0.5, 1.4, 9))
"""Scales of the predicted shape's framed projection that `fit_framing` tries against the
picture's mask (then 6% either side of the best): 0.5 undoes the framing of a shape that
came out half as tall as the object in the picture (a chair without its legs)."""
FRAMING_SHIFTS = tuple(float(s) for s in np.arange(-12.0, 12.1, 4.0))
"""... and shifts, in pixels of the 64-pixel mask (then 2 pixels either side of the best)."""
FRAMING_STAY = 0.3
"""What leaving the bounding-box framing costs, in overlap, per unit of ``|log scale| +
(|du| + |dv|) / 64``. A prediction's outline never matches the picture's, and the bare
overlap's best often fits a wrong outline by a wrong framing; the value was chosen by the
colours' sampling error on the val split (docs/experiments.md, "Defaults chosen by
measurement")."""


def fit_framing(
    points: np.ndarray,
    extrinsic: np.ndarray,
    mask: np.ndarray,
    size: int = 64,
    stay: float = FRAMING_STAY,
) -> tuple[Camera, float]:
    """The camera at ``extrinsic`` framed so that the projection of ``points`` (N, 3) best
    overlaps ``mask`` (S, S) (compared at ``size`` pixels), and that overlap. Framing the
    prediction by its own bounding box, as pictures are framed, puts a prediction that lost
    a part (the legs) or grew one too large or off centre, and every colour then comes from
    the wrong place. A search over the window's scale and shift around that framing
    (coarse, then fine), each step away costing ``stay`` (`FRAMING_STAY`), matches the
    silhouette to the mask instead."""
    points = np.asarray(points, dtype=np.float64)
    points = points[:: max(1, len(points) // 6000)]
    intrinsic = perspective_intrinsics(_FOV, 512)
    uv, _ = project(points, extrinsic, intrinsic, "perspective")
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    side = max(float((hi - lo).max()), 1e-6) / OBJECT_FILL  # as `_framed_camera` frames
    centre = (lo + hi) / 2.0
    # under scale s and shift (du, dv) a point lands at rel * s + size / 2 + (du, dv)
    # (pixels of the size-pixel mask); the bounding-box framing is s = 1 without a shift
    rel = ((uv - centre) * (size / side)).astype(np.float32)

    # silhouettes on a canvas a quarter wider each side than the picture, the mask empty
    # there and points beyond it on its border: a framing that pushes part of the shape
    # out of the picture pays for it instead of cropping it away
    pad = size // 4
    canvas = size + 2 * pad
    target = np.zeros((canvas, canvas), dtype=bool)
    target[pad : pad + size, pad : pad + size] = _downsample_mask(np.asarray(mask, bool), size)

    def scores(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Overlaps and scores of framings (K, 3): scale, du, dv."""
        i = rel[:, :1] * grid[:, 0] + (size / 2.0 + pad + grid[:, 1])
        j = rel[:, 1:] * grid[:, 0] + (size / 2.0 + pad + grid[:, 2])
        i = np.clip(np.floor(i), 0, canvas - 1).astype(np.int64)
        j = np.clip(np.floor(j), 0, canvas - 1).astype(np.int64)
        overlap = _overlaps(i, j, target)
        away = np.abs(np.log(grid[:, 0])) + (np.abs(grid[:, 1]) + np.abs(grid[:, 2])) / size
        return overlap, overlap - stay * away

    def around(start, scales, shifts) -> np.ndarray:
        """``start`` (3,) first (it wins ties), then the grid of scales and shifts."""
        axes = np.meshgrid(scales, start[1] + shifts, start[2] + shifts, indexing="ij")
        grid = np.stack([axis.reshape(-1) for axis in axes], axis=1)
        return np.concatenate([np.asarray(start)[None], grid]).astype(np.float32)

    coarse = around((1.0, 0.0, 0.0), FRAMING_SCALES, np.asarray(FRAMING_SHIFTS))
    start = coarse[int(np.argmax(scores(coarse)[1]))]
    fine = around(start, start[0] * np.array([0.94, 0.97, 1.0, 1.03, 1.06]), np.arange(-2.0, 2.1))
    overlap, score = scores(fine)
    best = int(np.argmax(score))
    s, du, dv = (float(x) for x in fine[best])
    window = side / s
    box = (
        float(centre[0] - window / 2.0 - du * window / size),
        float(centre[1] - window / 2.0 - dv * window / size),
        float(window),
    )
    width = mask.shape[0]
    camera = Camera(extrinsic, crop_intrinsics(intrinsic, box, width), "perspective", width, width)
    return camera, float(overlap[best])


def _overlaps(i: np.ndarray, j: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Overlap (K,) with ``target`` (S, S) of K silhouettes, each the pixels (column ``i``,
    row ``j``: (N, K) int, within the image) of N points, closed by `close_cross`."""
    size = target.shape[0]
    count = i.shape[1]
    flat = j * size + i + np.arange(count) * size * size
    silhouettes = np.zeros(count * size * size, dtype=bool)
    silhouettes[flat.reshape(-1)] = True
    silhouettes = close_cross(silhouettes.reshape(count, size, size))
    inter = np.logical_and(silhouettes, target).sum(axis=(1, 2))
    union = np.logical_or(silhouettes, target).sum(axis=(1, 2))
    return inter / np.maximum(union, 1)


def close_cross(images: np.ndarray) -> np.ndarray:
    """Binary closing of a stack of images (..., H, W) bool by the 3 x 3 cross, beyond the
    border empty: `scipy.ndimage.binary_closing` with that structure, ten times faster on
    the stacks of candidate silhouettes (shifted slices instead of a generic filter)."""
    grown = images.copy()
    grown[..., 1:, :] |= images[..., :-1, :]
    grown[..., :-1, :] |= images[..., 1:, :]
    grown[..., :, 1:] |= images[..., :, :-1]
    grown[..., :, :-1] |= images[..., :, 1:]
    closed = grown.copy()
    closed[..., 1:, :] &= grown[..., :-1, :]
    closed[..., :-1, :] &= grown[..., 1:, :]
    closed[..., :, 1:] &= grown[..., :, :-1]
    closed[..., :, :-1] &= grown[..., :, 1:]
    closed[..., (0, -1), :] = False  # the empty outside erodes the border
    closed[..., :, (0, -1)] = False
    return closed


@functools.cache
def _candidate_views(azimuths: tuple[float, ...], elevations: tuple[float, ...]):
    """The candidate (azimuth, elevation) list and their world-to-camera matrices (K, 4, 4)."""
    candidates = [(azimuth, elevation) for elevation in elevations for azimuth in azimuths]
    extrinsics = np.stack(
        [
            look_at(CAMERA_DISTANCE * view_direction(math.radians(a), math.radians(e)))
            for a, e in candidates
        ]
    )
    extrinsics.flags.writeable = False
    return candidates, extrinsics


def _downsample_mask(mask: np.ndarray, size: int) -> np.ndarray:
    h, w = mask.shape
    rows = (np.arange(size) + 0.5) * h / size
    cols = (np.arange(size) + 0.5) * w / size
    return mask[rows.astype(int)][:, cols.astype(int)]


def splat_depth(points: np.ndarray, camera: Camera, radius: int = 1) -> np.ndarray:
    """Nearest depth per pixel (H, W) of points splatted as (2r+1)^2 squares; inf where
    empty."""
    uv, depth = project(points, camera.extrinsic, camera.intrinsic, camera.projection)
    ij = np.floor(uv).astype(np.int64)
    zbuffer = np.full(camera.height * camera.width, np.inf)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            x, y = ij[:, 0] + dx, ij[:, 1] + dy
            ok = (x >= 0) & (x < camera.width) & (y >= 0) & (y < camera.height) & (depth > 0)
            np.minimum.at(zbuffer, y[ok] * camera.width + x[ok], depth[ok])
    return zbuffer.reshape(camera.height, camera.width)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3)."""
    tri = vertices[faces]
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices, dtype=np.float64)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def _seen(points, normals, camera, zbuffer, mask, tolerance):
    """Which points the camera sees (in front of the z-buffer within ``tolerance``, widened
    on surfaces seen at a grazing angle by the splats' footprint) and their pixels."""
    uv, depth = project(points, camera.extrinsic, camera.intrinsic, camera.projection)
    ij = np.floor(uv).astype(np.int64)
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < camera.width) & (ij[:, 1] >= 0)
    inside &= ij[:, 1] < camera.height
    ij = np.clip(ij, 0, [camera.width - 1, camera.height - 1])
    slack = np.full(len(points), tolerance)
    facing = np.ones(len(points), dtype=bool)
    if normals is not None:
        towards = camera.position[None, :] - points
        towards /= np.maximum(np.linalg.norm(towards, axis=1, keepdims=True), 1e-12)
        cosine = np.einsum("ij,ij->i", normals, towards)
        facing = cosine > 0
        pixel = np.abs(depth) / camera.intrinsic[0, 0]  # a pixel's size at that depth
        slack += 3.0 * pixel / np.clip(cosine, 0.1, 1.0)
    seen = inside & facing & mask[ij[:, 1], ij[:, 0]]
    seen &= depth <= zbuffer[ij[:, 1], ij[:, 0]] + slack
    return seen, ij


def point_colours(
    points: np.ndarray,
    rgba: np.ndarray,
    camera: Camera,
    normals: np.ndarray | None = None,
    symmetry_tolerance: float = 0.02,
) -> tuple[np.ndarray, np.ndarray]:
    """RGB colours (N, 3) uint8 of ``points`` (N, 3) from the framed picture ``rgba``
    (S, S, 4) seen by ``camera``, and which points were seen (N,) bool. ``normals`` (mesh
    vertices) keep back-facing points out; without them visibility is the z-buffer alone."""
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    mask = rgba[..., 3] > 127
    zbuffer = splat_depth(points, camera, radius=1 if normals is not None else 2)
    tolerance = 0.01
    seen, ij = _seen(points, normals, camera, zbuffer, mask, tolerance)
    colours = np.zeros((len(points), 3), dtype=np.uint8)
    colours[seen] = rgba[ij[seen, 1], ij[seen, 0], :3]
    if not seen.any():
        colours[:] = _mean_colour(rgba, mask)
        return colours, seen
    hidden = ~seen
    mirror = points * np.array([-1.0, 1.0, 1.0])
    tree = cKDTree(points)
    gap, _ = tree.query(mirror[:: max(1, len(points) // 5000)])
    if hidden.any() and np.median(gap) < symmetry_tolerance:  # a mirror-symmetric shape
        mirror_normals = None if normals is None else normals * np.array([-1.0, 1.0, 1.0])
        m_seen, m_ij = _seen(
            mirror[hidden],
            None if mirror_normals is None else mirror_normals[hidden],
            camera,
            zbuffer,
            mask,
            tolerance,
        )
        index = np.flatnonzero(hidden)[m_seen]
        colours[index] = rgba[m_ij[m_seen, 1], m_ij[m_seen, 0], :3]
        hidden[index] = False
    if hidden.any():
        _, nearest = cKDTree(points[~hidden]).query(points[hidden])
        colours[hidden] = colours[~hidden][nearest]
    return colours, seen


def _mean_colour(rgba: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if not mask.any():
        return np.array([180, 180, 180], dtype=np.uint8)
    return rgba[mask][:, :3].mean(axis=0).astype(np.uint8)

"""Geometry conventions shared by every module: object frame, normalisation, cameras, views.

Object frame
    Blender's: right-handed, +Z up, the object's front faces -Y (what Blender's Front view
    shows). Every data source is rotated into this frame on import (`axis_conversion`).

Normalisation
    A shape is centred on its bounding-box centre and scaled so that its longest side is 1:
    it fits in ``[-0.5, 0.5]^3`` (`normalization_transform`). Grids and metrics use the one
    padded box ``[-PADDED_HALF_EXTENT, PADDED_HALF_EXTENT]^3`` around that cube.

Cameras
    A camera looks down its own -Z with +Y up (OpenGL/Blender). Extrinsics are 4x4
    world-to-camera matrices. Intrinsics are a 3x3 matrix ``K`` in pixels plus a projection
    kind; pixel ``(u, v)`` has ``u`` to the right and ``v`` down, the image's top-left corner at
    ``(0, 0)`` and pixel centres at half-integers. For a camera-space point ``(x, y, z)``
    (``z < 0`` in front of the camera), with ``depth = -z``:

    * perspective:  ``u = fx * x / depth + cx``, ``v = -fy * y / depth + cy``
    * orthographic: ``u = fx * x + cx``,         ``v = -fy * y + cy``

    Depth maps store ``depth`` (distance along the viewing axis, not along the ray) and 0
    where no surface is seen.

Views
    ``azimuth`` is measured around +Z from the front (the camera at azimuth 0 stands on the
    -Y side and looks at the object's front), increasing towards +X; ``elevation`` is the
    angle above the XY plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "PADDED_HALF_EXTENT",
    "sample_mesh",
    "ORTHO_HALF_EXTENT",
    "FIXED_VIEW_DISTANCE",
    "FIXED_VIEW_SETS",
    "Camera",
    "camera_centre",
    "axis_conversion",
    "parse_axis",
    "normalization_transform",
    "apply_transform",
    "look_at",
    "view_direction",
    "angle_gap",
    "perspective_intrinsics",
    "orthographic_intrinsics",
    "fixed_views",
    "fixed_view_directions",
    "sample_novel_views",
    "project",
    "unproject",
    "pixel_rays",
]

PADDED_HALF_EXTENT = 0.55
"""Half side of the padded box ``[-0.55, 0.55]^3`` used by every grid and metric."""

ORTHO_HALF_EXTENT = math.sqrt(3.0) / 2.0
"""Half side of the orthographic image plane: the unit cube's circumsphere radius, so that no
rotation of a normalised shape can leave the frame."""

FIXED_VIEW_DISTANCE = 1.0
"""Distance of the orthographic fixed and novel-view cameras from the origin: a depth of 1
is the plane through the object's centre (where the structure generator's output starts)."""

Projection = Literal["perspective", "orthographic"]

_AXES = {
    "+x": (1.0, 0.0, 0.0),
    "-x": (-1.0, 0.0, 0.0),
    "+y": (0.0, 1.0, 0.0),
    "-y": (0.0, -1.0, 0.0),
    "+z": (0.0, 0.0, 1.0),
    "-z": (0.0, 0.0, -1.0),
}


def parse_axis(name: str) -> np.ndarray:
    """``'+y'``, ``'-z'``, ``'y'`` ... -> unit vector (3,). Raises ValueError on anything else."""
    key = name.strip().lower()
    if key in ("x", "y", "z"):
        key = "+" + key
    if key not in _AXES:
        raise ValueError(f"axis must be one of {sorted(_AXES)}, got {name!r}")
    return np.array(_AXES[key])


def axis_conversion(up: str = "+z", front: str = "-y") -> np.ndarray:
    """Rotation (3, 3) taking a source frame whose up is ``up`` and whose front faces
    ``front`` into the object frame (up +Z, front -Y).

    Sweet Home 3D, ShapeNet and most OBJ libraries are Y-up: ``axis_conversion("+y", "+z")``
    maps ``(x, y, z) -> (x, -z, y)``.
    """
    u, f = parse_axis(up), parse_axis(front)
    if abs(float(u @ f)) > 0.5:
        raise ValueError(f"up {up!r} and front {front!r} must be perpendicular axes")
    source = np.stack([u, f, np.cross(u, f)], axis=1)
    target = np.stack([np.array([0.0, 0, 1]), np.array([0.0, -1, 0]), np.array([1.0, 0, 0])], 1)
    return target @ source.T


def normalization_transform(vertices: np.ndarray) -> np.ndarray:
    """4x4 similarity centring ``vertices`` (N, 3) on their bounding-box centre and scaling
    the longest side to 1. Raises ValueError for empty or zero-extent input."""
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[0] == 0 or vertices.shape[1] != 3:
        raise ValueError("no vertices to normalise")
    if not np.all(np.isfinite(vertices)):
        raise ValueError("vertices contain NaN or infinity")
    lo, hi = vertices.min(0), vertices.max(0)
    extent = float((hi - lo).max())
    if extent <= 1e-12:
        raise ValueError("shape has zero extent")
    scale = 1.0 / extent
    transform = np.eye(4)
    transform[:3, :3] *= scale
    transform[:3, 3] = -scale * (lo + hi) / 2.0
    return transform


def apply_transform(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 affine ``transform`` to ``points`` (..., 3)."""
    return points @ transform[:3, :3].T + transform[:3, 3]


@dataclass(frozen=True)
class Camera:
    """One camera: world-to-camera ``extrinsic`` (4, 4), pixel ``intrinsic`` (3, 3),
    ``projection`` kind and image size ``(width, height)``."""

    extrinsic: np.ndarray
    intrinsic: np.ndarray
    projection: Projection
    width: int
    height: int

    @property
    def position(self) -> np.ndarray:
        """Camera centre in world coordinates (3,)."""
        return camera_centre(self.extrinsic)


def camera_centre(extrinsic: np.ndarray) -> np.ndarray:
    """Centre in world coordinates (3,) of a world-to-camera 4x4 (or 3x4) matrix."""
    rotation, translation = extrinsic[:3, :3], extrinsic[:3, 3]
    return -rotation.T @ translation


def view_direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector from the origin towards a camera at ``azimuth``, ``elevation`` (radians)."""
    ce = math.cos(elevation)
    return np.array([ce * math.sin(azimuth), -ce * math.cos(azimuth), math.sin(elevation)])


def angle_gap(a, b):
    """Absolute difference of angles ``a`` and ``b`` in degrees, the short way round
    (0 to 180); scalars or arrays."""
    return np.abs(np.remainder(np.asarray(a) - np.asarray(b) + 180.0, 360.0) - 180.0)


def look_at(eye: np.ndarray, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0), roll: float = 0.0):
    """World-to-camera 4x4 for a camera at ``eye`` looking at ``target``; image up is the
    projection of ``up`` (falls back to +Y when looking along ``up``), then rotated by ``roll``
    radians about the viewing axis (counter-clockwise in the image)."""
    eye = np.asarray(eye, dtype=np.float64)
    backward = eye - np.asarray(target, dtype=np.float64)
    norm = np.linalg.norm(backward)
    if norm < 1e-12:
        raise ValueError("camera eye and target coincide")
    backward /= norm
    up = np.asarray(up, dtype=np.float64)
    if np.linalg.norm(np.cross(up, backward)) < 1e-6:
        up = np.array([0.0, 1.0, 0.0]) if abs(backward[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    right = np.cross(up, backward)
    right /= np.linalg.norm(right)
    cam_up = np.cross(backward, right)
    if roll:
        c, s = math.cos(roll), math.sin(roll)
        right, cam_up = c * right + s * cam_up, -s * right + c * cam_up
    extrinsic = np.eye(4)
    extrinsic[:3, :3] = np.stack([right, cam_up, backward])
    extrinsic[:3, 3] = -extrinsic[:3, :3] @ eye
    return extrinsic


def perspective_intrinsics(fov: float, width: int, height: int | None = None) -> np.ndarray:
    """3x3 pinhole intrinsics with horizontal field of view ``fov`` (radians), square pixels,
    principal point at the image centre."""
    height = width if height is None else height
    focal = (width / 2.0) / math.tan(fov / 2.0)
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def orthographic_intrinsics(size: int, half_extent: float = ORTHO_HALF_EXTENT) -> np.ndarray:
    """3x3 orthographic intrinsics: a ``size`` x ``size`` image spans
    ``[-half_extent, half_extent]`` of the camera's x and y."""
    scale = size / (2.0 * half_extent)
    return np.array([[scale, 0.0, size / 2.0], [0.0, scale, size / 2.0], [0.0, 0.0, 1.0]])


def _platonic_directions(count: int) -> np.ndarray:
    phi = (1.0 + math.sqrt(5.0)) / 2.0
    if count == 4:  # tetrahedron: alternate cube corners
        dirs = [(1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)]
    elif count == 6:  # cube faces
        dirs = [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]
    elif count == 12:  # icosahedron vertices
        dirs = []
        for a in (-1, 1):
            for b in (-phi, phi):
                dirs += [(0, a, b), (a, b, 0), (b, 0, a)]
    elif count == 20:  # dodecahedron vertices
        dirs = [(a, b, c) for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)]
        for a in (-1, 1):
            for b in (-1, 1):
                dirs += [(0, a / phi, b * phi), (a / phi, b * phi, 0), (b * phi, 0, a / phi)]
    else:
        raise ValueError(f"fixed view count must be one of {FIXED_VIEW_SETS}, got {count}")
    dirs = np.asarray(dirs, dtype=np.float64)
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


FIXED_VIEW_SETS = (4, 6, 8, 12, 20)
"""Available fixed-view counts; 8 (the cube corners, as in Lin et al.) is the default."""


def fixed_view_directions(count: int = 8) -> np.ndarray:
    """Unit directions (count, 3) from the origin to the fixed-view cameras.

    8: the cube corners, azimuth 45 + k*90 degrees at elevation +-35.26 degrees (upper ring
    first); 4, 6, 12, 20: vertices of the tetrahedron, cube faces, icosahedron, dodecahedron.
    """
    if count == 8:
        elevation = math.atan(1.0 / math.sqrt(2.0))
        return np.stack(
            [
                view_direction(math.radians(45 + 90 * k), sign * elevation)
                for sign in (1, -1)
                for k in range(4)
            ]
        )
    return _platonic_directions(count)


def fixed_views(count: int = 8, size: int = 128) -> list[Camera]:
    """The fixed fusion views: orthographic cameras at `FIXED_VIEW_DISTANCE` looking at the
    origin, image up towards +Z (towards +Y for views straight down or up)."""
    intrinsic = orthographic_intrinsics(size)
    return [
        Camera(look_at(FIXED_VIEW_DISTANCE * d), intrinsic, "orthographic", size, size)
        for d in fixed_view_directions(count)
    ]


def sample_novel_views(count: int, rng: np.random.Generator, size: int = 128) -> list[Camera]:
    """Orthographic cameras with directions uniform on the sphere and uniform random roll."""
    intrinsic = orthographic_intrinsics(size)
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    rolls = rng.uniform(0.0, 2.0 * math.pi, size=count)
    return [
        Camera(
            look_at(FIXED_VIEW_DISTANCE * d, roll=float(r)), intrinsic, "orthographic", size, size
        )
        for d, r in zip(directions, rolls, strict=False)
    ]


def project(
    points: np.ndarray, extrinsic: np.ndarray, intrinsic: np.ndarray, projection: Projection
) -> tuple[np.ndarray, np.ndarray]:
    """World ``points`` (N, 3) -> pixel coordinates (N, 2) as (u, v) and depth (N,)."""
    cam = apply_transform(extrinsic, points)
    depth = -cam[:, 2]
    if projection == "perspective":
        safe = np.where(np.abs(depth) < 1e-12, 1e-12, depth)
        x, y = cam[:, 0] / safe, cam[:, 1] / safe
    elif projection == "orthographic":
        x, y = cam[:, 0], cam[:, 1]
    else:
        raise ValueError(f"unknown projection {projection!r}")
    u = intrinsic[0, 0] * x + intrinsic[0, 2]
    v = -intrinsic[1, 1] * y + intrinsic[1, 2]
    return np.stack([u, v], axis=1), depth


def unproject(
    pixels: np.ndarray,
    depth: np.ndarray,
    extrinsic: np.ndarray,
    intrinsic: np.ndarray,
    projection: Projection,
) -> np.ndarray:
    """Inverse of `project`: pixel coordinates (N, 2) and depth (N,) -> world points (N, 3)."""
    x = (pixels[:, 0] - intrinsic[0, 2]) / intrinsic[0, 0]
    y = -(pixels[:, 1] - intrinsic[1, 2]) / intrinsic[1, 1]
    if projection == "perspective":
        x, y = x * depth, y * depth
    elif projection != "orthographic":
        raise ValueError(f"unknown projection {projection!r}")
    cam = np.stack([x, y, -depth], axis=1)
    rotation, translation = extrinsic[:3, :3], extrinsic[:3, 3]
    return (cam - translation) @ rotation


def pixel_rays(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Ray origins and unit directions (H*W, 3) through every pixel centre, row-major
    (``v`` slow, ``u`` fast). Perspective rays start at the camera centre; orthographic rays
    start on the camera plane. The ray parameter of a hit equals its depth for orthographic
    views; for perspective views ``depth = t * cos(angle to the axis)``."""
    v, u = np.meshgrid(np.arange(camera.height) + 0.5, np.arange(camera.width) + 0.5, indexing="ij")
    pixels = np.stack([u.ravel(), v.ravel()], axis=1)
    rotation = camera.extrinsic[:3, :3]
    forward = -rotation[2]
    if camera.projection == "orthographic":
        origins = unproject(
            pixels, np.zeros(len(pixels)), camera.extrinsic, camera.intrinsic, "orthographic"
        )
        directions = np.broadcast_to(forward, origins.shape).copy()
    else:
        far = unproject(
            pixels, np.ones(len(pixels)), camera.extrinsic, camera.intrinsic, "perspective"
        )
        origins = np.broadcast_to(camera.position, far.shape).copy()
        directions = far - origins
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return origins, directions


def sample_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    colours: np.ndarray | None,
    count: int,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Area-weighted surface samples of a mesh: points (N, 3), face normals (N, 3) and
    colours (N, 3) uint8 interpolated from vertex colours (None without colours)."""
    rng = rng or np.random.default_rng(0)
    tri = vertices[faces].astype(np.float64)
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(cross, axis=1)
    if area.sum() <= 0:
        raise ValueError("the mesh has no area")
    face = rng.choice(len(faces), size=count, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(count)), rng.random(count)
    weights = np.stack([1 - r1, r1 * (1 - r2), r1 * r2], axis=1)
    points = np.einsum("nk,nkd->nd", weights, tri[face])
    normals = cross[face] / np.maximum(area[face, None], 1e-12)
    out_colours = None
    if colours is not None:
        corner = colours[faces[face]].astype(np.float64)
        out_colours = np.einsum("nk,nkd->nd", weights, corner).round().astype(np.uint8)
    return points, normals, out_colours

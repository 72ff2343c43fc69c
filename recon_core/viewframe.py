"""The viewer-centred frame: shapes as the picture's camera sees them.

A network that reads pixel-aligned features must know where each query point lands in the
picture. In the object frame that needs the camera, which a picture does not state. In the
viewer-centred frame it is fixed: the frame's x and y are the framed picture's own axes
(x to the right, y up, [-1, 1] across the frame, times ``VIEW_SCALE``), ``q_z`` points
towards the viewer on the same scale, and a point is seen through one canonical pinhole
camera, of focal length `VIEW_FOCAL` in normalised image units (`image_coordinates`).

For a training render with world-to-camera ``E = [R | t]`` and framed intrinsics ``K``
(side ``S`` pixels), an object-frame point ``p`` maps to::

    q = VIEW_SCALE * (sigma * R p + (a0, b0, 0))

with ``sigma = K[0, 0] / ((S / 2) * -t_z)`` (camera units to normalised image units at the
object's centre) and ``(a0, b0)`` the normalised image position of the object's centre.
The shape in this frame is the object turned and scaled, not distorted. Seen through the
render's own camera it would project exactly with focal length ``K[0, 0] / (S / 2)`` about
the principal point; the canonical camera stands in for both, since a user's picture
states neither. The
object fills at most 80% of the frame (`recon_core.imaging.OBJECT_FILL`), so with
``VIEW_SCALE`` 0.5 its width and height stay within +-0.4 and its depth nearly always within
the padded box.

A result is turned upright for the user by the camera's elevation (which the network
estimates) and faces the way the picture shows it: the viewer stands at the front (-Y), as
Blender's Front view.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from recon_core.geometry import Camera, look_at, view_direction

__all__ = [
    "VIEW_SCALE",
    "VIEW_FOCAL",
    "view_transform",
    "camera_elevation",
    "image_coordinates",
    "upright_rotation",
    "upright_transform",
    "viewer_camera",
]

VIEW_SCALE = 0.5
"""Viewer-frame units per normalised image unit (the frame spans [-1, 1])."""

VIEW_FOCAL = 3.3
"""Focal length of the canonical camera, in normalised image units (half the frame): the
median over the Sweet Home 3D training renders. How far it puts points from where each
render's own camera sees them is in docs/experiments.md."""


def view_transform(extrinsic: torch.Tensor, intrinsic: torch.Tensor, size: int) -> torch.Tensor:
    """Object frame -> viewer frame, (B, 4, 4), for perspective cameras ``extrinsic``
    (B, 4, 4) world-to-camera and ``intrinsic`` (B, 3, 3) of a ``size``-pixel framed image."""
    rotation, translation = extrinsic[:, :3, :3], extrinsic[:, :3, 3]
    half = size / 2.0
    distance = -translation[:, 2]  # depth of the object's centre
    focal = intrinsic[:, 0, 0]
    sigma = focal / (half * distance)
    a0 = (focal * translation[:, 0] / distance + intrinsic[:, 0, 2] - half) / half
    b0 = -(-intrinsic[:, 1, 1] * translation[:, 1] / distance + intrinsic[:, 1, 2] - half) / half
    out = torch.zeros_like(extrinsic)
    out[:, :3, :3] = VIEW_SCALE * sigma[:, None, None] * rotation
    out[:, 0, 3] = VIEW_SCALE * a0
    out[:, 1, 3] = VIEW_SCALE * b0
    out[:, 3, 3] = 1.0
    return out


def camera_elevation(extrinsic: torch.Tensor) -> torch.Tensor:
    """Elevation (B,) in radians of cameras ``extrinsic`` (B, 4, 4) above the object's
    centre (the world origin)."""
    rotation, translation = extrinsic[:, :3, :3], extrinsic[:, :3, 3]
    centre = -(rotation.transpose(1, 2) @ translation[:, :, None])[:, :, 0]
    return torch.asin((centre[:, 2] / centre.norm(dim=1)).clamp(-1.0, 1.0))


def image_coordinates(points: torch.Tensor) -> torch.Tensor:
    """Viewer-frame points (..., 3) -> where the canonical camera sees them in the framed
    picture, as ``grid_sample`` coordinates (..., 2): x right, y down, [-1, 1] edge to
    edge (``align_corners=False``)."""
    scale = VIEW_FOCAL / (VIEW_SCALE * VIEW_FOCAL - points[..., 2])
    return torch.stack([points[..., 0], -points[..., 1]], dim=-1) * scale[..., None]


def upright_rotation(elevation: float) -> np.ndarray:
    """The rotation (3, 3) that takes viewer-frame directions to the object frame for a
    camera at ``elevation`` radians in front of the object (azimuth 0, at -Y)."""
    if not math.isfinite(elevation):
        raise ValueError(f"elevation is not finite: {elevation}")
    return look_at(view_direction(0.0, elevation))[:3, :3].T


def upright_transform(vertices: np.ndarray, elevation: float) -> np.ndarray:
    """Viewer frame -> object frame (4, 4) for a shape with viewer-frame ``vertices``
    (V, 3) seen from ``elevation`` radians: turned upright (`upright_rotation`), then
    centred on its bounding box and scaled to a longest side of 1, as every shape is."""
    rotation = upright_rotation(elevation)
    turned = np.asarray(vertices, dtype=np.float64) @ rotation.T
    low, high = turned.min(axis=0), turned.max(axis=0)
    scale = 1.0 / max(float((high - low).max()), 1e-9)
    transform = np.eye(4)
    transform[:3, :3] = scale * rotation
    transform[:3, 3] = -scale * (low + high) / 2.0
    return transform


def viewer_camera(transform: np.ndarray, size: int) -> Camera:
    """The canonical camera (`image_coordinates`) of a ``size``-pixel framed picture, in the
    object frame that ``transform`` (viewer -> object, a turn, a scale and a shift, as
    `upright_transform` gives) leads to."""
    linear = transform[:3, :3]
    scale = float(np.cbrt(np.linalg.det(linear)))
    rotation = linear / scale
    # viewer point q = R^T (p - shift) / scale; the camera sits at VIEW_SCALE * VIEW_FOCAL
    # on q's +z axis and looks down -z. Camera coordinates times the scale project alike.
    extrinsic = np.eye(4)
    extrinsic[:3, :3] = rotation.T
    extrinsic[:3, 3] = -rotation.T @ transform[:3, 3]
    extrinsic[2, 3] -= scale * VIEW_SCALE * VIEW_FOCAL
    focal = VIEW_FOCAL * size / 2.0
    intrinsic = np.array([[focal, 0.0, size / 2.0], [0.0, focal, size / 2.0], [0.0, 0.0, 1.0]])
    return Camera(extrinsic, intrinsic, "perspective", size, size)

"""Watertight primitive parts for procedural shapes, in the object frame (+Z up, front -Y)."""

from __future__ import annotations

import numpy as np
import trimesh

__all__ = ["Part", "box", "cylinder", "cone", "sphere", "lathe", "torus", "capsule", "Palette"]


class Part:
    """One closed, coloured piece of a shape."""

    def __init__(self, mesh: trimesh.Trimesh, color):
        self.mesh = mesh
        self.color = np.asarray(color, dtype=np.uint8)


def box(center, size, color, rotate_z: float = 0.0, rotate_x: float = 0.0) -> Part:
    """Axis-aligned box of ``size`` (sx, sy, sz) at ``center``, optionally rotated."""
    transform = trimesh.transformations.rotation_matrix(rotate_z, [0, 0, 1])
    transform = transform @ trimesh.transformations.rotation_matrix(rotate_x, [1, 0, 0])
    transform[:3, 3] = center
    return Part(trimesh.creation.box(extents=np.maximum(size, 1e-3), transform=transform), color)


def cylinder(p0, p1, radius: float, color, sections: int = 24) -> Part:
    """Closed cylinder from ``p0`` to ``p1``."""
    return Part(
        trimesh.creation.cylinder(radius=radius, segment=[p0, p1], sections=sections), color
    )


def cone(p0, p1, r0: float, r1: float, color, sections: int = 32) -> Part:
    """Closed frustum from radius ``r0`` at ``p0`` to ``r1`` at ``p1``."""
    length = float(np.linalg.norm(np.subtract(p1, p0)))
    part = lathe([(0.0, 0.0), (r0, 0.0), (r1, length), (0.0, length)], color, sections)
    _align_z(part.mesh, p0, p1)
    return part


def sphere(center, radius: float, color, scale=(1.0, 1.0, 1.0)) -> Part:
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=radius)
    mesh.apply_scale(scale)
    mesh.apply_translation(center)
    return Part(mesh, color)


def capsule(p0, p1, radius: float, color) -> Part:
    length = float(np.linalg.norm(np.subtract(p1, p0)))
    mesh = trimesh.creation.capsule(height=length, radius=radius, count=[16, 16])
    mesh.apply_translation([0, 0, length / 2.0])
    part = Part(mesh, color)
    _align_z(part.mesh, p0, p1)
    return part


def lathe(profile, color, sections: int = 32, center=(0.0, 0.0, 0.0)) -> Part:
    """Surface of revolution about +Z of ``profile`` [(radius, z), ...], which must start and
    end on the axis (radius 0) so the result is closed."""
    mesh = trimesh.creation.revolve(np.asarray(profile, dtype=np.float64), sections=sections)
    if mesh.volume < 0:
        mesh.invert()
    mesh.apply_translation(center)
    return Part(mesh, color)


def torus(center, major: float, minor: float, color, axis=(0, 0, 1)) -> Part:
    mesh = trimesh.creation.torus(
        major_radius=major, minor_radius=minor, major_sections=32, minor_sections=12
    )
    part = Part(mesh, color)
    _align_z(part.mesh, np.zeros(3), np.asarray(axis, dtype=np.float64))
    part.mesh.apply_translation(center)
    return part


def _align_z(mesh: trimesh.Trimesh, p0, p1) -> None:
    """Rotate a mesh built along +Z from the origin so that it runs from p0 towards p1."""
    direction = np.subtract(p1, p0).astype(np.float64)
    direction /= max(np.linalg.norm(direction), 1e-12)
    transform = trimesh.geometry.align_vectors([0, 0, 1], direction)
    mesh.apply_transform(transform)
    mesh.apply_translation(p0)


class Palette:
    """Plausible material colours, drawn per shape and per part role."""

    WOOD = [(150, 100, 60), (190, 140, 90), (110, 70, 40), (210, 175, 125), (80, 50, 30)]
    FABRIC = [
        (170, 40, 40),
        (60, 90, 150),
        (200, 190, 170),
        (80, 120, 80),
        (90, 90, 95),
        (230, 200, 80),
        (130, 80, 140),
        (240, 240, 235),
    ]
    METAL = [(190, 190, 195), (60, 60, 65), (200, 170, 90), (140, 140, 150)]
    PAINT = [
        (235, 235, 230),
        (30, 30, 35),
        (200, 60, 50),
        (50, 110, 190),
        (60, 150, 90),
        (240, 200, 60),
        (160, 160, 170),
    ]
    CERAMIC = [(245, 245, 240), (60, 110, 170), (200, 90, 60), (90, 160, 150), (40, 40, 45)]
    GLASS = [(60, 130, 70), (120, 80, 40), (170, 200, 210), (40, 60, 120)]

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def pick(self, family: list) -> np.ndarray:
        base = np.asarray(family[int(self.rng.integers(len(family)))], dtype=np.float64)
        jitter = self.rng.normal(0.0, 8.0, 3)
        return np.clip(base + jitter, 0, 255).astype(np.uint8)

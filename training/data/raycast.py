"""Exact depth maps by ray casting (Intel Embree through embreex)."""

from __future__ import annotations

import numpy as np

from recon_core.geometry import Camera, pixel_rays

__all__ = ["RayCaster"]


class RayCaster:
    """First-hit ray casting against one triangle mesh (vertices (V, 3), faces (F, 3))."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        import embreex.mesh_construction as mesh_construction
        import embreex.rtcore_scene as rtcore_scene

        self._scene = rtcore_scene.EmbreeScene()
        # Keep a reference: Embree reads the buffer for the scene's lifetime.
        self._triangles = np.ascontiguousarray(vertices[faces], dtype=np.float32)
        mesh_construction.TriangleMesh(self._scene, self._triangles)

    def hit_distance(self, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Ray parameter of the first hit (N,), ``inf`` where the ray misses. ``directions``
        must be unit vectors."""
        result = self._scene.run(
            np.ascontiguousarray(origins, dtype=np.float32),
            np.ascontiguousarray(directions, dtype=np.float32),
            output=1,
        )
        distance = result["tfar"].astype(np.float64)
        distance[result["primID"] < 0] = np.inf
        return distance

    def depth_map(self, camera: Camera) -> np.ndarray:
        """Depth (H, W) float32 seen by ``camera`` (distance along its viewing axis), 0 where
        nothing is hit."""
        return self.depth_maps([camera])[0]

    def depth_maps(self, cameras: list[Camera]) -> np.ndarray:
        """Depth maps (len(cameras), H, W) float32, all rays cast in one batch."""
        if not cameras:
            return np.zeros((0, 0, 0), dtype=np.float32)
        rays = [pixel_rays(c) for c in cameras]
        origins = np.concatenate([r[0] for r in rays])
        directions = np.concatenate([r[1] for r in rays])
        distance = self.hit_distance(origins, directions)
        forward = np.concatenate(
            [
                np.broadcast_to(-c.extrinsic[2, :3], r[1].shape)
                for c, r in zip(cameras, rays, strict=False)
            ]
        )
        depth = distance * np.einsum("ij,ij->i", directions, forward)
        depth[~np.isfinite(depth)] = 0.0
        first = cameras[0]
        return depth.reshape(len(cameras), first.height, first.width).astype(np.float32)

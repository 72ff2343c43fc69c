"""Point-cloud generation (Lin, Kong, Lucey, AAAI 2018)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from recon_core.checkpoint import CheckpointError
from recon_core.cloudmesh import mesh_from_points
from recon_core.data import SampleSettings
from recon_core.fusion import consistent_points, fuse, pixel_grid, pseudo_render
from recon_core.geometry import FIXED_VIEW_DISTANCE, fixed_views
from recon_core.methods.base import Encoded, Generator, Method, Options
from recon_core.models.pointcloud import StructureGenerator
from recon_core.visualize import depth_image, hstack, rgba_image

__all__ = ["PointCloudMethod", "PointCloudGenerator"]


class PointCloudMethod(Method):
    name = "pointcloud"
    loss_terms = ("fixed_xyz", "fixed_mask", "novel_depth", "novel_mask")

    def __init__(self, config):
        super().__init__(config)
        model = config.model
        cameras = fixed_views(model.fixed_views, model.view_size)
        self.fixed_extrinsics = torch.tensor(
            np.stack([c.extrinsic for c in cameras]), dtype=torch.float32
        )
        self.intrinsic = cameras[0].intrinsic
        self.grid = pixel_grid(model.view_size, self.intrinsic)

    def info(self) -> dict:
        return {
            "fixed_views": {
                "count": self.config.model.fixed_views,
                "size": self.config.model.view_size,
                "extrinsics": self.fixed_extrinsics.tolist(),
                "intrinsic": self.intrinsic.tolist(),
            }
        }

    def sample_settings(self) -> SampleSettings:
        return SampleSettings(
            novel_views=self.config.data.novel_views,
            image_size=self.config.model.input_size,
            mirror=self.config.data.mirror,
            colour_jitter=self.config.data.colour_jitter,
            photo_views=self.config.data.photo_views,
        )

    def build_model(self, pretrained: bool = False) -> nn.Module:
        m = self.config.model
        return StructureGenerator(
            m.fixed_views,
            self.grid,
            FIXED_VIEW_DISTANCE,
            m.input_size,
            m.encoder_channels,
            m.encoder_fc,
            m.decoder_fc,
            m.decoder_channels,
            encoder=m.encoder,
            pretrained=pretrained,
        )

    def generator(self, model, device, path, info) -> PointCloudGenerator:
        return PointCloudGenerator(self, model, device, path, info)

    def losses(self, model, batch, weights):
        xyz, mask_logit = model(batch["image"])
        out = {}
        gt_mask = batch["fixed_mask"]
        if weights.get("fixed_xyz") or weights.get("fixed_mask"):
            grid = self.grid.to(xyz.device)
            target = torch.cat(
                [
                    grid[None, None].expand(*gt_mask.shape[:2], -1, -1, -1),
                    batch["fixed_depth"][:, :, None],
                ],
                dim=2,
            )
            weight = gt_mask[:, :, None].expand_as(xyz)
            out["fixed_xyz"] = ((xyz - target).abs() * weight).sum() / weight.sum().clamp(min=1)
            out["fixed_mask"] = F.binary_cross_entropy_with_logits(mask_logit, gt_mask)
        if weights.get("novel_depth") or weights.get("novel_mask"):
            points = fuse(xyz, self.fixed_extrinsics.to(xyz.device))
            rendered = pseudo_render(
                points,
                mask_logit.flatten(1),
                batch["novel_extrinsics"],
                self.intrinsic,
                self.config.model.view_size,
                self.config.model.upsample,
            )
            novel_mask = batch["novel_mask"]
            usable = (novel_mask > 0) & rendered.hit & ~rendered.collision
            diff = (rendered.depth - batch["novel_depth"]).abs()
            out["novel_depth"] = (diff * usable).sum() / usable.sum().clamp(min=1)
            out["novel_mask"] = F.binary_cross_entropy_with_logits(rendered.mask_logit, novel_mask)
        return out

    def preview(self, model, batch) -> np.ndarray:
        """Per shape: input | predicted and true depth of fixed views 0 and 4 (where the
        predicted mask is on) | the fused cloud from above the front right | the cloud
        pseudo-rendered at novel view 0 | that view's true depth."""
        from recon_core.preview import preview_camera, render_splats

        xyz, mask_logit = model(batch["image"])
        points = fuse(xyz, self.fixed_extrinsics.to(xyz.device))
        logits = mask_logit.flatten(1)
        oblique = preview_camera(30.0, 20.0, 128)
        rows = []
        for b in range(min(4, len(xyz))):
            keep = logits[b] > 0
            tiles = [rgba_image(batch["image"][b].cpu().numpy())]
            for view in (0, 4):
                depth = torch.where(mask_logit[b, view] > 0, xyz[b, view, 2], 0.0)
                tiles.append(depth_image(depth.cpu().numpy()))
                tiles.append(depth_image(batch["fixed_depth"][b, view].cpu().numpy()))
            cloud = points[b, keep].cpu().numpy()
            tiles.append(render_splats(cloud, oblique, radius=0, background=0))
            if "novel_extrinsics" in batch:
                rendered = pseudo_render(
                    points[b : b + 1, keep],
                    logits[b : b + 1, keep],
                    batch["novel_extrinsics"][b : b + 1, :1],
                    self.intrinsic,
                    self.config.model.view_size,
                    self.config.model.upsample,
                )
                tiles.append(depth_image(rendered.depth[0, 0].cpu().numpy()))
                tiles.append(depth_image(batch["novel_depth"][b, 0].cpu().numpy()))
            rows.append(hstack(tiles))
        return np.concatenate(rows, axis=0)


class PointCloudGenerator(Generator):
    """Picture -> the fixed views' depth and mask -> fusion into one cloud; a mesh is
    wrapped around the cloud (`recon_core.cloudmesh`)."""

    makes_points = True

    def __init__(self, method: PointCloudMethod, model, device, path, info):
        super().__init__(method, model, device, path, info)
        stored = info.get("fixed_views", {}).get("extrinsics")
        if stored is not None:
            stored = torch.tensor(stored, dtype=method.fixed_extrinsics.dtype)
            if stored.shape != method.fixed_extrinsics.shape or not torch.allclose(
                stored, method.fixed_extrinsics, atol=1e-5
            ):
                raise CheckpointError(
                    f"{self.path}: its fixed views differ from the ones its config describes"
                )

    def encode(self, image: torch.Tensor) -> Encoded:
        xyz, mask_logit = self.model(image)
        points = fuse(xyz, self.method.fixed_extrinsics.to(self.device))
        return Encoded("pointcloud", points=points[0], mask_logit=mask_logit.flatten(1)[0])

    def mesh(self, encoded: Encoded, resolution: int, iso: float, lower_iso: bool, options):
        cloud = self.points(encoded, None, options)
        return mesh_from_points(cloud, min(resolution, 256)), None

    def points(self, encoded: Encoded, count: int | None, options: Options) -> np.ndarray:
        """Fused points whose mask logit is positive (and that the fixed views agree on,
        see ``consistency``), with ``symmetric`` their mirror images after them; ``count``
        picks an evenly spread subset (or all when there are fewer)."""
        keep = encoded.kept.get(options.consistency)
        if keep is None:  # once per encoding: a mesh and a cloud of one job share it
            keep = encoded.mask_logit > 0
            if options.consistency is not None:
                size = self.config.model.view_size
                keep = consistent_points(
                    encoded.points,
                    encoded.mask_logit.view(-1, size, size),
                    self.method.fixed_extrinsics.to(encoded.points.device),
                    self.method.intrinsic,
                    options.consistency,
                )
            encoded.kept[options.consistency] = keep
        points = encoded.points[keep].cpu().numpy()
        if options.symmetric:
            points = np.concatenate([points, points * np.array([-1, 1, 1], points.dtype)])
        if count is not None and 0 < count < len(points):
            points = points[np.linspace(0, len(points) - 1, count).round().astype(np.int64)]
        return points

"""Fitting a latent code to a silhouette: rays against the projection they invert, gradients
against finite differences, and fits that must recover a known shape and a known framing."""

import math

import numpy as np
import pytest
import torch

from recon_core.fitting import (
    FitSettings,
    fit_silhouette,
    framed_camera,
    framed_rays,
    grid_pixels,
    silhouette_logits,
)
from recon_core.geometry import Camera, look_at, perspective_intrinsics, project, view_direction


def _camera(size=64, azimuth=30.0, elevation=20.0, fov=40.0) -> Camera:
    extrinsic = look_at(2.2 * view_direction(math.radians(azimuth), math.radians(elevation)))
    return Camera(
        extrinsic, perspective_intrinsics(math.radians(fov), size), "perspective", size, size
    )


class Ellipsoid(torch.nn.Module):
    """A decoder with a known field: logit = sharpness * (1 - |p / radii|), radii = base *
    exp(z[:3]) (``follow=False``: the radii ignore the code)."""

    def __init__(self, base=(0.3, 0.3, 0.3), sharpness=30.0, follow=True):
        super().__init__()
        self.base, self.sharpness, self.follow = torch.tensor(base), sharpness, follow

    def forward(self, z, points):
        code = z[:, None, :3] if self.follow else 0.0 * z[:, None, :3]
        radii = self.base.to(points.dtype) * torch.exp(code)
        return self.sharpness * (1.0 - (points / radii).norm(dim=-1))


def _ellipsoid_mask(camera: Camera, radii) -> np.ndarray:
    """Which pixels' centre rays meet the ellipsoid (an independent ray test in numpy)."""
    inverse = np.linalg.inv(camera.intrinsic)
    v, u = np.mgrid[0 : camera.height, 0 : camera.width] + 0.5
    pixels = np.stack([u.ravel(), v.ravel(), np.ones(u.size)])
    local = inverse @ pixels
    local = np.stack([local[0], -local[1], -np.ones(u.size)])  # the camera looks down -z
    rotation = camera.extrinsic[:3, :3]
    directions = (rotation.T @ local).T
    origin = camera.position
    o, d = origin / np.asarray(radii), directions / np.asarray(radii)
    a, b, c = (d * d).sum(1), 2.0 * (o * d).sum(1), (o * o).sum() - 1.0
    return (b * b - 4 * a * c > 0).reshape(camera.height, camera.width)


def _silhouette_iou(decoder, code, camera, mask):
    settings = FitSettings(samples=64)
    pixels = grid_pixels(camera, camera.width)
    with torch.no_grad():
        logits = silhouette_logits(decoder, code, camera, pixels, settings)
    seen = logits.reshape(camera.height, camera.width).numpy() > 0
    return (seen & mask).sum() / (seen | mask).sum()


def test_rays_pass_through_their_pixels_in_the_framed_camera():
    camera = _camera(size=40)
    frame = torch.tensor([0.15, 0.04, -0.03], dtype=torch.float64)
    pixels = grid_pixels(camera, 8, dtype=torch.float64)
    origin, directions, closest = framed_rays(camera, pixels, frame)
    framed = framed_camera(camera, frame.numpy())
    np.testing.assert_allclose(origin.numpy(), camera.position, atol=1e-12)
    for offset in (-0.4, 0.0, 0.3):
        points = (origin + (closest + offset)[:, None] * directions).numpy()
        uv, _ = project(points, framed.extrinsic, framed.intrinsic, "perspective")
        centres = (np.stack(np.meshgrid(np.arange(8), np.arange(8)), -1).reshape(-1, 2) + 0.5) * 5
        np.testing.assert_allclose(uv, centres, atol=1e-6)
    # the closest approach to the origin: the ray's direction is orthogonal to it there
    nearest = origin + closest[:, None] * directions
    assert (nearest * directions).sum(1).abs().max() < 1e-9
    np.testing.assert_allclose(directions.norm(dim=1).numpy(), 1.0, atol=1e-12)


def test_silhouette_gradients_match_finite_differences():
    decoder = Ellipsoid(base=(0.3, 0.2, 0.25), sharpness=8.0)
    camera = _camera(size=32)
    settings = FitSettings(samples=24)
    pixels = grid_pixels(camera, 6, dtype=torch.float64)
    weights = torch.randn(36, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def loss(code, frame):
        return (silhouette_logits(decoder, code, camera, pixels, settings, frame) * weights).sum()

    code = torch.tensor([[0.1, -0.2, 0.05]], dtype=torch.float64, requires_grad=True)
    frame = torch.tensor([0.05, 0.01, -0.02], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (code, frame), eps=1e-6, atol=1e-5)


def test_fit_recovers_the_shape_its_silhouette_shows():
    camera = _camera(size=64, azimuth=30.0, elevation=20.0)
    truth = (0.45, 0.15, 0.3)
    mask = _ellipsoid_mask(camera, truth)
    decoder = Ellipsoid()
    start = torch.zeros(1, 4)  # a sphere of radius 0.3; the fourth entry is unused
    before = _silhouette_iou(decoder, start, camera, mask)
    settings = FitSettings(steps=120, lr=0.03, frame_lr=0.0, pull=0.0)
    result = fit_silhouette(decoder, start, mask, camera, settings)
    after = _silhouette_iou(decoder, result.latent, camera, mask)
    assert before < 0.75 and after > 0.95, (before, after)
    # one view of an ellipsoid pins its three radii
    np.testing.assert_allclose(0.3 * np.exp(result.latent[0, :3].numpy()), truth, atol=0.03)
    assert result.latent.shape == start.shape
    assert np.mean(result.losses[-10:]) < 0.5 * np.mean(result.losses[:10])
    np.testing.assert_allclose(result.camera.intrinsic, camera.intrinsic)  # framing kept
    # the pull keeps a code near the encoder's: a strong one holds it nearly in place
    held = fit_silhouette(decoder, start, mask, camera, settings.replace(pull=1e4))
    assert float(held.latent.abs().max()) < 0.2 * float(result.latent.abs().max())


def test_fit_learns_the_framing_of_a_shape_it_cannot_change():
    decoder = Ellipsoid(base=(0.3, 0.25, 0.35), follow=False)
    truth = _camera(size=64, azimuth=60.0, elevation=10.0)
    mask = _ellipsoid_mask(truth, (0.3, 0.25, 0.35))
    intrinsic = truth.intrinsic.copy()
    intrinsic[:2, :2] *= 0.85  # the object looks smaller than it is, and off-centre
    intrinsic[0, 2] += 0.08 * 64
    intrinsic[1, 2] -= 0.05 * 64
    guess = Camera(truth.extrinsic, intrinsic, "perspective", 64, 64)
    settings = FitSettings(steps=100, lr=0.02, frame_lr=0.02, pull=0.0)
    result = fit_silhouette(decoder, torch.zeros(8), mask, guess, settings)
    fitted = result.camera.intrinsic
    assert abs(fitted[0, 0] / truth.intrinsic[0, 0] - 1.0) < 0.03, fitted
    assert abs(fitted[0, 2] - truth.intrinsic[0, 2]) < 0.01 * 64, fitted
    assert abs(fitted[1, 2] - truth.intrinsic[1, 2]) < 0.01 * 64, fitted
    assert _silhouette_iou(decoder, torch.zeros(8), result.camera, mask) > 0.95


def test_fit_leaves_the_decoder_as_it_was():
    from recon_core.methods import METHODS
    from training.presets import preset

    model = METHODS["implicit"](preset("implicit-smoke")).build_model()
    decoder = model.decoder
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # the conditioning starts at zero: give the code a say
        for parameter in decoder.parameters():
            parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    before = {k: v.clone() for k, v in decoder.state_dict().items()}
    camera = _camera(size=32)
    mask = _ellipsoid_mask(camera, (0.3, 0.3, 0.3))
    latent = torch.randn(model.encoder.fc.out_features, generator=generator)
    result = fit_silhouette(decoder, latent, mask, camera, FitSettings(steps=3, rays=8))
    assert result.latent.shape == latent.shape and not torch.equal(result.latent, latent)
    for key, value in decoder.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.requires_grad and p.grad is None for p in decoder.parameters())


def test_fit_refuses_bad_input():
    decoder, camera = Ellipsoid(), _camera(size=16)
    with pytest.raises(ValueError, match="empty"):
        fit_silhouette(decoder, torch.zeros(3), np.zeros((16, 16), bool), camera)
    with pytest.raises(ValueError, match="does not match"):
        fit_silhouette(decoder, torch.zeros(3), np.ones((8, 8), bool), camera)
    with pytest.raises(ValueError, match="steps"):
        FitSettings(steps=0)
    flat = Camera(camera.extrinsic, camera.intrinsic, "orthographic", 16, 16)
    with pytest.raises(ValueError, match="perspective"):
        fit_silhouette(decoder, torch.zeros(3), np.ones((16, 16), bool), flat)

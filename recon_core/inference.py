"""Inference: load a model (bundled name or path), encode a picture once, then ask for a mesh
or a point cloud, with colours from the picture, from the cached encoding.

    from recon_core.inference import Reconstructor
    from recon_core.picture import read_picture

    model = Reconstructor("implicit")              # or a path to a .safetensors file
    picture = read_picture("chair.jpg")            # mask from alpha or the background
    encoded = model.encode_picture(picture)        # the network runs once here
    mesh = model.coloured_mesh(encoded, resolution=256)
    cloud = model.coloured_points(encoded)

When the user knows roughly where the picture was taken from, say so (``model.view =
parse_view("front-left")``): the colours' camera is then searched near it, and an implicit
model's code can be fitted to the picture's silhouette (``model.fit_silhouette(encoded)``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from recon_core.checkpoint import CheckpointError, load_checkpoint
from recon_core.colour import (
    ViewEstimate,
    ViewHint,
    estimate_view,
    point_colours,
    vertex_normals,
)
from recon_core.device import select_device
from recon_core.extraction import (
    ExtractionError,
    ExtractionStats,
    Mesh,
    decimate,
)
from recon_core.fitting import FitSettings, fit_silhouette
from recon_core.geometry import sample_mesh
from recon_core.imaging import network_input
from recon_core.methods import METHODS
from recon_core.methods.base import Encoded, Options
from recon_core.picture import Picture
from recon_core.registry import resolve_model
from recon_core.request import DEFAULT_POINTS, ReconstructionRequest
from recon_core.viewframe import upright_transform, viewer_camera
from recon_core.viewpoint import ViewpointConfig, ViewpointNet

__all__ = [
    "Reconstructor",
    "Encoded",
    "Options",
    "Reconstruction",
    "ColouredMesh",
    "ColouredPoints",
    "image_tensor",
]

log = logging.getLogger("recon3d")

COLOUR_SIZE = 256
"""Side of the framed picture colours are taken from."""

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # a Python that has torch but not threadpoolctl (e.g. inside Blender)

    def one_blas_thread(function):
        return function

else:
    one_blas_thread = threadpool_limits.wrap(limits=1, user_api="blas")
"""numpy's BLAS threads and torch's OpenMP threads spin against each other when another
process holds a core (docs/benchmarks.md). The numpy side of inference is small matrices,
so it runs its BLAS on one thread (torch's own threads are left alone)."""


def _viewpoint_net(path: Path, checkpoint) -> ViewpointNet | None:
    """The checkpoint's viewpoint estimator (on the CPU: it runs once per picture on a
    64-pixel image), or None when it has none."""
    if checkpoint.viewpoint_state is None:
        return None
    try:
        net = ViewpointNet(ViewpointConfig.from_dict(checkpoint.info["viewpoint"]["layout"]))
        net.load_state_dict({k: v.float() for k, v in checkpoint.viewpoint_state.items()})
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: unusable viewpoint estimator ({first})") from None
    return net.eval()


def image_tensor(rgba: np.ndarray, size: int) -> torch.Tensor:
    """Framed RGBA image (H, W, 4), uint8 or float in [0, 1] -> (1, 4, size, size) float,
    resized as the training data loader does."""
    return network_input(np.asarray(rgba)[None], size)


@dataclass
class ColouredMesh:
    vertices: np.ndarray
    faces: np.ndarray
    colours: np.ndarray | None
    """(V, 3) uint8 vertex colours."""
    stats: ExtractionStats | None
    view: ViewEstimate | None = None
    """The viewpoint the colours were projected from (None without a picture)."""


@dataclass
class ColouredPoints:
    points: np.ndarray
    colours: np.ndarray | None
    view: ViewEstimate | None = None
    """The viewpoint the colours were projected from (None without a picture)."""


DEFAULT_CONSISTENCY: int | None = None
"""Point-cloud models keep every fused point with a positive mask logit unless asked for the
silhouette test, which helps models that fit their shapes well and costs an under-trained
one a little (docs/experiments.md, "Defaults chosen by measurement")."""


class Reconstructor:
    """A trained model ready for inference. ``model``: a bundled or user model name, or a
    checkpoint path. ``device``: auto (CUDA, MPS, then CPU), cpu, cuda, cuda:N, mps.
    ``consistency`` (point-cloud models): how many fixed views may contradict a fused point
    before it is dropped (`recon_core.fusion.consistent_points`); None keeps every point
    whose mask logit is positive, as Lin et al. do. ``symmetric``: mirror-symmetric results
    across the object's left-right plane x = 0 (most furniture is): an implicit model's field
    averaged with its mirror image (`recon_core.extraction`), a point cloud joined by its
    mirror image (twice the points). ``view``: where the pictures were taken from, roughly
    (`recon_core.colour.ViewHint`); None estimates it from each picture."""

    def __init__(
        self,
        model: str | Path | None = None,
        device: str = "auto",
        consistency: int | None = DEFAULT_CONSISTENCY,
        symmetric: bool = False,
        view: ViewHint | None = None,
    ):
        if consistency is not None and consistency < 0:
            raise ValueError(f"consistency must be None or >= 0, got {consistency}")
        self.options = Options(consistency, symmetric, view)
        """The options a call uses unless it passes its own."""
        path = resolve_model(model)
        checkpoint = load_checkpoint(path)
        self.path = Path(path)
        self.config = checkpoint.config
        self.info = checkpoint.info
        if self.config.method not in METHODS:
            raise CheckpointError(f"{path}: unknown method {self.config.method!r}")
        self.method = METHODS[self.config.method](self.config)
        device = select_device(device)
        network = self.method.build_model()
        try:
            network.load_state_dict({k: v.float() for k, v in checkpoint.model_state.items()})
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise CheckpointError(f"{path}: weights do not match its config ({first})") from None
        network = network.to(device).eval().requires_grad_(False)
        self.generator = self.method.generator(network, device, self.path, self.info)
        """The method's inference side (`recon_core.methods.base.Generator`)."""
        self.viewpoint = _viewpoint_net(path, checkpoint)

    @property
    def model(self) -> torch.nn.Module:
        """The trained network (on `device`)."""
        return self.generator.model

    @property
    def device(self) -> torch.device:
        return self.generator.device

    @property
    def consistency(self) -> int | None:
        return self.options.consistency

    @consistency.setter
    def consistency(self, value: int | None) -> None:
        if value is not None and value < 0:
            raise ValueError(f"consistency must be None or >= 0, got {value}")
        self.options = replace(self.options, consistency=value)

    @property
    def symmetric(self) -> bool:
        return self.options.symmetric

    @symmetric.setter
    def symmetric(self, value: bool) -> None:
        self.options = replace(self.options, symmetric=bool(value))

    @property
    def view(self) -> ViewHint | None:
        return self.options.view

    @view.setter
    def view(self, value: ViewHint | None) -> None:
        self.options = replace(self.options, view=value)

    @property
    def input_size(self) -> int:
        return self.config.model.input_size

    # -- encoding ----------------------------------------------------------------------

    @torch.no_grad()
    @one_blas_thread
    def encode(self, rgba: np.ndarray) -> Encoded:
        """Encode a framed RGBA image (H, W, 4) (see `recon_core.imaging`); on the CPU when
        the GPU runs out of memory."""
        try:
            return self._encode(rgba)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            self.generator.to_cpu("GPU out of memory while encoding")
            return self._encode(rgba)

    def _encode(self, rgba: np.ndarray) -> Encoded:
        return self.generator.encode(image_tensor(rgba, self.input_size).to(self.device))

    @one_blas_thread
    def encode_picture(self, picture: Picture) -> Encoded:
        """Frame a picture as the training renders are framed and encode it."""
        encoded = self.encode(picture.framed(self.input_size))
        encoded.framed = picture.framed(COLOUR_SIZE)
        return encoded

    # -- geometry ----------------------------------------------------------------------

    @property
    def viewer_frame(self) -> bool:
        """Whether the model reconstructs in the picture's viewer-centred frame
        (`recon_core.viewframe`): its meshes are turned upright by the estimated elevation
        and face the way the picture shows them."""
        return getattr(self.method, "viewer_frame", False)

    def field(self, encoded: Encoded):
        """Occupancy logits of points (N, 3), from an implicit encoding (viewer-centred
        points for a pixel-aligned model)."""
        return self.generator.field(encoded)

    @one_blas_thread
    def mesh(
        self,
        encoded: Encoded,
        resolution: int = 128,
        iso: float = 0.5,
        faces: int | None = None,
        lower_iso: bool = True,
        upright: bool = True,
        options: Options | None = None,
    ) -> tuple[Mesh, ExtractionStats | None]:
        """Closed mesh at any resolution (16-512), from the cached encoding. Implicit: the
        iso level (0-1) of the occupancy field; point cloud: the mesh around the cloud.
        ``faces``: at most this many triangles (quadric decimation, still closed).
        ``lower_iso``: when nothing reaches ``iso``, extract at a share of the field's
        highest occupancy instead (`recon_core.methods.implicit.LOWERED_ISO_SHARE`), said
        in one log line; ``stats.iso`` is the level
        used. A pixel-aligned model's mesh is turned upright and normalised (`upright_mesh`)
        unless ``upright`` is False: then it stays in the viewer-centred frame."""
        mesh, stats = self.generator.mesh(
            encoded, resolution, iso, lower_iso, options or self.options
        )
        if faces is not None:
            mesh = decimate(mesh, faces)
        if upright and encoded.features is not None:
            mesh, _ = self._upright(mesh, encoded)
        return mesh, stats

    @staticmethod
    def _upright(mesh: Mesh, encoded: Encoded) -> tuple[Mesh, ViewEstimate]:
        """A viewer-frame mesh turned upright and normalised, and the picture's camera in
        that frame (the colours are seen from it; it faces the front)."""
        transform = upright_transform(mesh.vertices, encoded.elevation)
        vertices = mesh.vertices @ transform[:3, :3].T + transform[:3, 3]
        size = COLOUR_SIZE if encoded.framed is None else encoded.framed.shape[0]
        camera = viewer_camera(transform, size)
        view = ViewEstimate(camera, 0.0, math.degrees(encoded.elevation), float("nan"))
        return Mesh(vertices.astype(np.float32), mesh.faces), view

    @one_blas_thread
    def points(
        self, encoded: Encoded, count: int | None = None, options: Options | None = None
    ) -> np.ndarray:
        """The point cloud (P, 3): fused points whose mask logit is positive (and that the
        fixed views agree on, see ``consistency``), with ``symmetric`` their mirror images
        after them; ``count`` picks an evenly spread subset (or all when there are fewer)."""
        return self.generator.points(encoded, count, options or self.options)

    # -- with colours ------------------------------------------------------------------

    def _view(
        self, encoded: Encoded, surface: np.ndarray, hint: ViewHint | None
    ) -> ViewEstimate | None:
        if encoded.framed is None:
            return None
        if hint not in encoded.views:
            prior = None if self.viewpoint is None else self.viewpoint.predict(encoded.framed)
            encoded.views[hint] = estimate_view(
                surface, encoded.framed[..., 3] > 127, prior=prior, hint=hint
            )
        return encoded.views[hint]

    @one_blas_thread
    def fit_silhouette(
        self, encoded: Encoded, settings: FitSettings | None = None, options: Options | None = None
    ) -> Encoded:
        """A new encoding whose latent code is fitted to the picture's silhouette
        (`recon_core.fitting`), seen from the viewpoint estimated on a first 64^3 mesh (near
        ``view`` when one is set: without it the estimate is too often wrong for the fit to
        help, see docs/experiments.md). Implicit models and encodings of a Picture only. About 9 s a
        picture on a 2-core CPU with the default settings."""
        if not self.generator.fits_silhouette:
            raise ValueError(f"{self.path}: fitting the silhouette needs an implicit model")
        if encoded.features is not None:
            raise ValueError(
                f"{self.path}: this model reads the picture where each point lands; its "
                "silhouette already follows the picture, and fitting is for the others"
            )
        if encoded.framed is None:
            raise ValueError("fitting the silhouette needs an encoding made from a Picture")
        options = options or self.options
        try:
            mesh, _ = self.mesh(encoded, 64, options=options)
        except ExtractionError as exc:
            log.warning("nothing to fit the silhouette to (%s); the code stays as encoded", exc)
            return encoded
        surface = sample_mesh(mesh.vertices, mesh.faces, None, 4000)[0]
        view = self._view(encoded, surface, options.view)
        mask = encoded.framed[..., 3] > 127
        try:
            result = fit_silhouette(self.model.decoder, encoded.latent, mask, view.camera, settings)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            self.generator.to_cpu("GPU out of memory while fitting the silhouette")
            result = fit_silhouette(
                self.model.decoder, encoded.latent.cpu(), mask, view.camera, settings
            )
        return Encoded("implicit", latent=result.latent, framed=encoded.framed, fitted=True)

    @one_blas_thread
    def coloured_mesh(
        self,
        encoded: Encoded,
        resolution: int = 128,
        iso: float = 0.5,
        faces: int | None = None,
        lower_iso: bool = True,
        options: Options | None = None,
    ) -> ColouredMesh:
        """`mesh` with vertex colours from the picture (None when encoded without one)."""
        options = options or self.options
        if encoded.features is not None:  # the picture's camera is the viewer's
            mesh, stats = self.mesh(encoded, resolution, iso, faces, lower_iso, False, options)
            mesh, view = self._upright(mesh, encoded)
            view = view if encoded.framed is not None else None
        else:
            mesh, stats = self.mesh(encoded, resolution, iso, faces, lower_iso, options=options)
            surface = sample_mesh(mesh.vertices, mesh.faces, None, 4000)[0]
            view = self._view(encoded, surface, options.view)
        colours = None
        if view is not None:
            normals = vertex_normals(mesh.vertices.astype(np.float64), mesh.faces)
            colours, _ = point_colours(mesh.vertices, encoded.framed, view.camera, normals)
        return ColouredMesh(mesh.vertices, mesh.faces, colours, stats, view)

    @one_blas_thread
    def coloured_points(
        self, encoded: Encoded, count: int | None = None, options: Options | None = None
    ) -> ColouredPoints:
        """`points` with a colour per point from the picture (None without one)."""
        options = options or self.options
        points = self.points(encoded, count, options)
        if len(points) == 0:
            raise ExtractionError("empty result: no point has a positive mask logit")
        view = self._view(encoded, points, options.view)
        colours = None
        if view is not None:
            colours, _ = point_colours(points, encoded.framed, view.camera)
        return ColouredPoints(points, colours, view)

    @staticmethod
    def options_for(request: ReconstructionRequest) -> Options:
        """The per-call options a request asks for."""
        return Options(request.consistency, request.symmetric, request.view_hint)

    @one_blas_thread
    def reconstruct(self, encoded: Encoded, request: ReconstructionRequest) -> Reconstruction:
        """What one request asks of an encoding (`recon_core.request`): the coloured mesh
        and, or, the coloured points (a point-cloud model's own; an implicit model's sampled
        from its mesh), where the colours were seen from, and a note when the mesh had to
        come at a lower iso level. The request's options hold for this call only."""
        options = self.options_for(request)
        want_mesh, want_points = request.output in ("mesh", "both"), request.output != "mesh"
        out = Reconstruction()
        own_points = self.generator.makes_points
        if want_mesh or (want_points and not own_points):
            faces = request.faces if want_mesh else None  # points come from the whole mesh
            mesh = self.coloured_mesh(
                encoded, request.resolution, request.iso, faces, options=options
            )
            out.view = mesh.view
            if want_mesh:
                out.mesh = mesh
            if mesh.stats is not None and mesh.stats.iso not in (None, request.iso):
                out.note = (
                    f"nothing reached the iso level {request.iso:g}; the mesh is at "
                    f"{mesh.stats.iso:g} instead"
                )
        if want_points:
            if own_points:
                cloud = self.coloured_points(encoded, request.points, options)
                out.points, out.point_colours, out.view = cloud.points, cloud.colours, cloud.view
            else:
                count = request.points or DEFAULT_POINTS
                out.points, _, out.point_colours = sample_mesh(
                    mesh.vertices, mesh.faces, mesh.colours, count
                )
        return out


@dataclass
class Reconstruction:
    """What `Reconstructor.reconstruct` made of one request."""

    mesh: ColouredMesh | None = None
    points: np.ndarray | None = None
    point_colours: np.ndarray | None = None
    view: ViewEstimate | None = None
    """Where the colours were seen from (None without a picture)."""
    note: str | None = None
    """A line to show the user: the mesh came at a lower iso level than asked."""

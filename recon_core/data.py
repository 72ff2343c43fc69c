"""The prepared-dataset format: writer, index and a torch reader for both methods.

A prepared dataset is a folder::

    DATASET/
      index.json          format version, fixed views, build settings, one entry per record
      records/ID.npz      one file per shape (arrays below plus a JSON ``meta`` string)
      build_log.jsonl     one line per shape tried: ok, or skipped with its reason
      photo-views/        optional: photo-like versions of the training renders, cut out
                          as users' photos are (`training.data.photo_views`, `read_photo_views`)

Record arrays (format version 1; V input renders, N fixed views, M novel views)::

    renders            uint8   (V, H, W, 4)  RGBA input renders, alpha = object mask
    render_extrinsics  float32 (V, 4, 4)     world-to-camera, perspective
    render_intrinsics  float32 (V, 3, 3)     pixels, see recon_core.geometry
    fixed_depth        float32 (N, S, S)     orthographic depth at the fixed views, 0 = empty
    fixed_extrinsics   float32 (N, 4, 4)
    fixed_intrinsics   float32 (3, 3)        orthographic
    novel_depth        float32 (M, S, S)     orthographic depth at random novel views
    novel_extrinsics   float32 (M, 4, 4)
    novel_intrinsics   float32 (3, 3)        orthographic
    occupancy_points   float16 (P, 3)        first ``uniform_count`` uniform in the padded
                                             box, then near-surface samples
    occupancy_labels   uint8   (ceil(P/8),)  np.packbits of inside (1) / outside (0)
    voxels             uint8   (ceil(R^3/8),) np.packbits of the R^3 grid over the padded
                                             box, index order (x, y, z)
    surface_points     float32 (Q, 3)        outer surface only
    surface_normals    float16 (Q, 3)        unit, pointing outwards
    meta               str                   JSON: id, category, source, source_file,
                                             licence, author, normalization (4x4 from the
                                             file's coordinates), counts

Masks are ``depth > 0``. Every record is written to a temporary file and renamed, so a
record file is either complete or absent.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from recon_core.files import atomic_write_bytes
from recon_core.geometry import PADDED_HALF_EXTENT
from recon_core.imaging import network_input

__all__ = [
    "FORMAT_VERSION",
    "SPLITS",
    "RecordArrays",
    "split_of",
    "VARIANT_MARK",
    "write_record",
    "read_record",
    "write_index",
    "read_index",
    "record_path",
    "PHOTO_VIEWS",
    "read_photo_views",
    "PreparedDataset",
    "DatasetError",
    "SampleSettings",
    "unpack_voxels",
    "voxel_index",
    "mirrored_extrinsics",
    "mirror_permutation",
    "mirror_sample",
]

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
VARIANT_MARK = "~v"
"""Separates a base shape's id from its variant's number (see `training.data.augment`)."""

PHOTO_VIEWS = "photo-views"
"""The folder, inside a prepared dataset, of its photo-like training views: one ``.npz`` per
record (``photos`` (N, H, W, 4) uint8 framed as the renders, ``views`` (N,) the renders
they were made from, ``mask_iou`` (N,), ``failed``) and an ``index.json`` listing them."""

_REQUIRED = {
    "renders": np.uint8,
    "render_extrinsics": np.float32,
    "render_intrinsics": np.float32,
    "fixed_depth": np.float32,
    "fixed_extrinsics": np.float32,
    "fixed_intrinsics": np.float32,
    "novel_depth": np.float32,
    "novel_extrinsics": np.float32,
    "novel_intrinsics": np.float32,
    "occupancy_points": np.float16,
    "occupancy_labels": np.uint8,
    "voxels": np.uint8,
    "surface_points": np.float32,
    "surface_normals": np.float16,
}


class DatasetError(ValueError):
    """A prepared dataset or record is missing, malformed or of another format version."""


RecordArrays = dict[str, np.ndarray]


def split_of(shape_id: str) -> str:
    """Deterministic split of a shape from a hash of its id alone, so adding shapes never
    moves existing ones: 80% train, 10% val, 10% test. A variant (``base~vK``) goes with its
    base shape, so no variant of a held-out shape ever trains."""
    base = shape_id.split(VARIANT_MARK, 1)[0]
    digest = hashlib.sha256(base.encode("utf-8")).digest()
    unit = int.from_bytes(digest[:8], "big") / 2.0**64
    cumulative = 0.0
    for name, fraction in zip(SPLITS, _SPLIT_FRACTIONS, strict=False):
        cumulative += fraction
        if unit < cumulative:
            return name
    return SPLITS[-1]


def _safe_name(shape_id: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in shape_id)
    suffix = hashlib.sha256(shape_id.encode("utf-8")).hexdigest()[:8]
    return f"{keep[:80]}-{suffix}"


def record_path(root: str | Path, shape_id: str) -> Path:
    """Where the record of ``shape_id`` lives inside dataset ``root``."""
    return Path(root) / "records" / f"{_safe_name(shape_id)}.npz"


def _validate(arrays: RecordArrays, where: str) -> None:
    for key, dtype in _REQUIRED.items():
        if key not in arrays:
            raise DatasetError(f"{where}: record lacks array {key!r}")
        if arrays[key].dtype != dtype:
            raise DatasetError(f"{where}: {key} has dtype {arrays[key].dtype}, expected {dtype}")
    renders = arrays["renders"]
    if renders.ndim != 4 or renders.shape[-1] != 4:
        raise DatasetError(f"{where}: renders must be (V, H, W, 4), got {renders.shape}")
    for prefix in ("fixed", "novel"):
        depth, ext = arrays[f"{prefix}_depth"], arrays[f"{prefix}_extrinsics"]
        if depth.ndim != 3 or ext.shape != (depth.shape[0], 4, 4):
            raise DatasetError(
                f"{where}: {prefix} views are inconsistent: {depth.shape}, {ext.shape}"
            )


def write_record(root: str | Path, arrays: RecordArrays, meta: dict[str, Any]) -> Path:
    """Write one record atomically; returns its path. ``meta`` must hold ``id``."""
    arrays = {k: np.ascontiguousarray(v, dtype=_REQUIRED.get(k, None)) for k, v in arrays.items()}
    path = record_path(root, meta["id"])
    _validate(arrays, str(path))
    meta = dict(meta, format_version=FORMAT_VERSION)
    payload = dict(arrays, meta=np.array(json.dumps(meta)))
    atomic_write_bytes(path, lambda handle: np.savez_compressed(handle, **payload))
    return path


def read_record(path: str | Path, keys: Iterable[str] | None = None) -> tuple[RecordArrays, dict]:
    """Read a record: the arrays named in ``keys`` (all when None) and its meta dict."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            wanted = list(data.files) if keys is None else list(keys)
            arrays = {k: data[k] for k in wanted if k != "meta"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # truncated
        raise DatasetError(f"{path}: unreadable record ({exc})") from exc
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{path}: format version {meta.get('format_version')}, "
            f"this reader needs {FORMAT_VERSION}"
        )
    return arrays, meta


def write_index(root: str | Path, index: dict[str, Any]) -> None:
    """Write ``index.json`` atomically."""
    text = json.dumps(dict(index, format_version=FORMAT_VERSION), indent=1).encode("utf-8")
    atomic_write_bytes(Path(root) / "index.json", lambda handle: handle.write(text))


def read_index(root: str | Path) -> dict[str, Any]:
    """Read and check a dataset's ``index.json``."""
    path = Path(root) / "index.json"
    try:
        index = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(f"{path}: not a prepared dataset (no index.json)") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable index ({exc})") from exc
    if index.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{path}: format version {index.get('format_version')}, "
            f"this reader needs {FORMAT_VERSION}"
        )
    return index


def read_photo_views(root: str | Path) -> dict[str, Path]:
    """Each record id's photo-view file in the dataset ``root`` (records without any left
    out); DatasetError naming the folder when it has none."""
    folder = Path(root) / PHOTO_VIEWS
    try:
        listed = json.loads((folder / "index.json").read_text(encoding="utf-8"))["records"]
        return {entry["id"]: folder / entry["file"] for entry in listed if entry["views"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise DatasetError(
            f"{folder}: no photo-like training views ({reason}); make them with "
            f"python -m training.data.photo_views --data {root}"
        ) from None


def unpack_voxels(packed: np.ndarray, resolution: int) -> np.ndarray:
    """Packed voxel bits -> bool (R, R, R) grid indexed (x, y, z)."""
    return np.unpackbits(packed, count=resolution**3).astype(bool).reshape((resolution,) * 3)


Method = Literal["pointcloud", "implicit", "all"]


@dataclass
class SampleSettings:
    """What one training sample draws from a record."""

    input_views: int = 1
    """Input renders per sample (drawn at random from the record's renders)."""
    novel_views: int = 5
    """Novel views per sample for the point-cloud method's pseudo-renderer loss."""
    occupancy_points: int = 2048
    """Occupancy samples per sample for the implicit method (half uniform, half near-surface)."""
    image_size: int | None = None
    """Resize input renders to this size (None keeps the stored size)."""
    voxels: bool = False
    """Implicit method: also the record's occupancy grid, ``voxels`` (1, R, R, R) float 0/1
    (IM-NET's two-stage route)."""
    mirror: float = 0.0
    """Probability that a sample is mirrored left to right: the picture flipped, the shape
    mirrored across x = 0 (its left-right plane) with every camera, depth map and label to
    match (`mirror_sample`)."""
    colour_jitter: float = 0.0
    """Scale each colour channel of the input picture by a factor drawn in [1 - j, 1 + j]."""
    photo_views: float = 0.0
    """Probability that the input is one of the record's photo-like views (`PHOTO_VIEWS`)
    instead of a render, with the camera of the render it was made from (the photo is
    framed by its found mask, so where the mask is wrong the camera is off by as much);
    records without photo views keep their renders. Needs one input view per sample."""
    viewer_frame: bool = False
    """Implicit method: occupancy samples in the input picture's viewer-centred frame
    (`recon_core.viewframe`), with a quarter more drawn in the empty space around the
    object, and the camera's ``elevation`` (radians) and ``view_transform`` (4, 4)."""

    def without_augmentation(self) -> SampleSettings:
        """The same draws with no mirroring, colour jitter or photo views (previews,
        evaluation)."""
        return replace(self, mirror=0.0, colour_jitter=0.0, photo_views=0.0)


_METHOD_KEYS = {
    "pointcloud": (
        "renders",
        "render_extrinsics",
        "render_intrinsics",
        "fixed_depth",
        "fixed_extrinsics",
        "novel_depth",
        "novel_extrinsics",
    ),
    "implicit": (
        "renders",
        "render_extrinsics",
        "render_intrinsics",
        "occupancy_points",
        "occupancy_labels",
    ),
}


class PreparedDataset:
    """A torch-style dataset over one split of a prepared dataset.

    ``dataset[i]`` returns a dict of torch tensors for ``method``:

    * always: ``image`` (3+1, H, W) float in [0, 1] (RGBA), ``image_extrinsic`` (4, 4),
      ``image_intrinsic`` (3, 3), ``category`` (int index into ``categories``), ``index``;
    * pointcloud: ``fixed_depth`` (N, S, S), ``fixed_mask`` (N, S, S), ``novel_depth``
      (K, S, S), ``novel_mask`` (K, S, S), ``novel_extrinsics`` (K, 4, 4);
    * implicit: ``points`` (P, 3), ``occupancy`` (P,) float 0/1; ``voxels`` (1, R, R, R)
      float 0/1 when the settings ask for it.

    Random choices (which render, which novel views, which points) come from a generator
    seeded by (``seed``, epoch, index): the same epoch gives the same samples, which makes
    training resumable bit for bit. Call `set_epoch` at the start of each epoch.

    Decoded records are kept in memory up to ``cache_mb`` (per process: each data-loader
    worker has its own), so small datasets are decompressed once, not once per draw.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | Iterable[str] | None = "train",
        method: Method = "all",
        settings: SampleSettings | None = None,
        seed: int = 0,
        categories: Iterable[str] | None = None,
        cache_mb: float = 512.0,
    ):
        self.root = Path(root)
        self.index = read_index(self.root)
        self.cache_bytes = int(cache_mb * 2**20)
        self._cache: dict[int, RecordArrays] = {}
        self._cached_bytes = 0
        self.settings = settings or SampleSettings()
        self.method = method
        self.seed = seed
        self.epoch = 0
        records = self.index["records"]
        if split is not None:
            wanted_splits = {split} if isinstance(split, str) else set(split)
            if not wanted_splits <= set(SPLITS):
                raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
            records = [r for r in records if r["split"] in wanted_splits]
        wanted = set(categories) if categories is not None else None
        if wanted is not None:
            records = [r for r in records if r["category"] in wanted]
        self.records = records
        present = {r["category"] for r in self.index["records"]}
        self.categories = sorted(present if wanted is None else present & wanted)
        if method == "all":
            self.keys = tuple(dict.fromkeys(_METHOD_KEYS["pointcloud"] + _METHOD_KEYS["implicit"]))
        elif method in _METHOD_KEYS:
            self.keys = _METHOD_KEYS[method]
        else:
            raise DatasetError(f"method must be pointcloud, implicit or all, got {method!r}")
        if self.settings.voxels and "voxels" not in self.keys:
            self.keys += ("voxels",)
        self.backbone_cache = None
        self._mirror_perm = None
        if self.settings.mirror > 0.0 and "fixed_depth" in self.keys:
            views = self.index.get("fixed_views", {}).get("extrinsics")
            if views is None:
                raise DatasetError(f"{self.root}: index.json has no fixed views")
            self._mirror_perm = mirror_permutation(views, f"{self.root}")
        self._photo_files: dict[str, Path] = {}
        self._photos: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if self.settings.photo_views > 0.0:
            if self.settings.input_views != 1:
                raise DatasetError("photo views need one input view per sample")
            self._photo_files = read_photo_views(self.root)

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def use_backbone_cache(self, cache) -> None:
        """Give each sample the cached early backbone maps of the render it draws
        (`recon_core.feature_cache.BackboneCache`, built for these records)."""
        s = self.settings
        if s.input_views != 1 or s.mirror > 0.0 or s.colour_jitter > 0.0 or s.photo_views > 0.0:
            raise DatasetError(
                "cached backbone maps need one input view per sample and no picture "
                "augmentation (mirror, colour_jitter, photo_views)"
            )
        cache.check(self)
        self.backbone_cache = cache

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        """``dataset[i]`` draws with the current epoch; ``dataset[i, draw]`` with an explicit
        draw number instead (the training engine passes its step, so that every sample is a
        pure function of (seed, step, index) whatever the worker that loads it)."""
        import torch

        i, draw = key if isinstance(key, tuple) else (key, self.epoch)
        entry = self.records[i]
        arrays = self._record(i)
        rng = np.random.default_rng([self.seed, draw, i])
        s = self.settings
        out: dict[str, Any] = {
            "index": torch.tensor(i),
            "category": torch.tensor(self.categories.index(entry["category"])),
        }
        renders = arrays["renders"]
        chosen = rng.choice(len(renders), size=s.input_views, replace=len(renders) < s.input_views)
        pictures = renders[chosen]
        # augmentations draw from the generator only when enabled: samples without them are
        # the same as before they existed
        if s.photo_views > 0.0 and rng.random() < s.photo_views:
            photos = self._photo_views(i)
            if photos is not None:
                k = int(rng.integers(len(photos[0])))
                pictures, chosen = photos[0][k : k + 1], photos[1][k : k + 1]
        intrinsics = arrays["render_intrinsics"][chosen].copy()
        if s.image_size is not None and s.image_size != renders.shape[1]:
            intrinsics[:, :2] *= s.image_size / renders.shape[1]
        image = network_input(pictures, s.image_size)
        out["image"] = image[0] if s.input_views == 1 else image
        ext = torch.from_numpy(arrays["render_extrinsics"][chosen])
        intr = torch.from_numpy(intrinsics)
        out["image_extrinsic"] = ext[0] if s.input_views == 1 else ext
        out["image_intrinsic"] = intr[0] if s.input_views == 1 else intr
        if self.backbone_cache is not None:
            out.update(self.backbone_cache.maps(i, int(chosen[0])))
        if "fixed_depth" in arrays:
            fixed = torch.from_numpy(arrays["fixed_depth"])
            out["fixed_depth"], out["fixed_mask"] = fixed, (fixed > 0).float()
            out["fixed_extrinsics"] = torch.from_numpy(arrays["fixed_extrinsics"])
            count = len(arrays["novel_depth"])
            views = rng.choice(count, size=min(s.novel_views, count), replace=False)
            novel = torch.from_numpy(arrays["novel_depth"][views])
            out["novel_depth"], out["novel_mask"] = novel, (novel > 0).float()
            out["novel_extrinsics"] = torch.from_numpy(arrays["novel_extrinsics"][views])
        if "occupancy_points" in arrays:
            points = arrays["occupancy_points"]
            labels = np.unpackbits(arrays["occupancy_labels"], count=len(points))
            uniform = int(entry.get("uniform_count", len(points) // 2))
            half = s.occupancy_points // 2
            pick = np.concatenate(
                [
                    rng.integers(0, uniform, size=half),
                    rng.integers(uniform, len(points), size=s.occupancy_points - half),
                ]
            )
            out["points"] = torch.from_numpy(points[pick].astype(np.float32))
            out["occupancy"] = torch.from_numpy(labels[pick].astype(np.float32))
        if s.voxels:
            resolution = int(self.index["settings"]["occupancy"]["voxel_resolution"])
            grid = unpack_voxels(arrays["voxels"], resolution)
            out["voxels"] = torch.from_numpy(grid[None].astype(np.float32))
        if s.mirror > 0.0 and rng.random() < s.mirror:
            mirror_sample(out, self._mirror_perm)
        if s.colour_jitter > 0.0:
            gain = 1.0 + s.colour_jitter * rng.uniform(-1.0, 1.0, size=3)
            image = out["image"].clone()
            image[..., :3, :, :] *= torch.tensor(gain, dtype=image.dtype)[:, None, None]
            out["image"] = image.clamp_(0.0, 1.0)
        if s.viewer_frame and "points" in out:
            _to_viewer_frame(out, rng)
        return out

    def _photo_views(self, i: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Record ``i``'s photo views and the renders they were made from (None: it has
        none), kept in memory once read (a few hundred kilobytes a record)."""
        if i not in self._photos:
            path = self._photo_files.get(self.records[i]["id"])
            if path is None:
                return None
            try:
                with np.load(path) as stored:
                    self._photos[i] = (stored["photos"], stored["views"].astype(np.int64))
            except (OSError, ValueError, KeyError) as exc:
                raise DatasetError(f"{path}: not a photo-view file ({exc})") from None
        return self._photos[i]

    def _record(self, i: int) -> RecordArrays:
        """Record ``i``'s arrays, from the cache when there (callers must not modify them)."""
        if i in self._cache:
            return self._cache[i]
        arrays, _ = read_record(self.root / self.records[i]["file"], self.keys)
        size = sum(a.nbytes for a in arrays.values())
        if self._cached_bytes + size <= self.cache_bytes:
            self._cache[i] = arrays
            self._cached_bytes += size
        return arrays


def _to_viewer_frame(sample: dict, rng: np.random.Generator) -> None:
    """Move one sample's occupancy samples into its picture's viewer-centred frame, and add
    samples of the empty space around the object: points of the padded box, in that frame,
    that lie outside the object's unit cube (so outside the object)."""
    import torch

    from recon_core.viewframe import camera_elevation, view_transform

    if sample["image"].ndim != 3:
        raise DatasetError("the viewer-centred frame needs one input view per sample")
    extrinsic = sample["image_extrinsic"][None].double()
    transform = view_transform(
        extrinsic, sample["image_intrinsic"][None].double(), sample["image"].shape[-1]
    )[0]
    points = sample["points"].double()
    moved = points @ transform[:3, :3].T + transform[:3, 3]
    count = max(1, len(points) // 4)
    candidates = rng.uniform(-PADDED_HALF_EXTENT, PADDED_HALF_EXTENT, size=(4 * count, 3))
    candidates = torch.from_numpy(candidates)
    back = (candidates - transform[:3, 3]) @ torch.linalg.inv(transform[:3, :3]).T
    outside = candidates[(back.abs() > 0.5 + 1e-3).any(dim=1)]
    if len(outside) == 0:  # the object's cube fills the box: sample beyond the box instead
        outside = moved.new_full((1, 3), 2.0)
    empty = outside[torch.arange(count) % len(outside)]
    sample["points"] = torch.cat([moved, empty]).float()
    sample["occupancy"] = torch.cat([sample["occupancy"], torch.zeros(count)])
    sample["elevation"] = camera_elevation(extrinsic)[0].float()
    sample["view_transform"] = transform.float()


_MIRROR = np.diag([-1.0, 1.0, 1.0, 1.0])
"""x -> -x: the object's left-right mirror in world coordinates, and a picture's left-right
flip in camera coordinates."""


def mirrored_extrinsics(extrinsics: np.ndarray) -> np.ndarray:
    """World-to-camera matrices (..., 4, 4) of the cameras that see the mirrored scene as the
    given ones see the scene, flipped left to right: ``F @ E @ M``, with ``M`` the world's
    mirror and ``F`` the image's flip (still rotations: the two reflections cancel)."""
    return (_MIRROR @ np.asarray(extrinsics, dtype=np.float64) @ _MIRROR).astype(
        np.asarray(extrinsics).dtype
    )


def mirror_permutation(extrinsics: np.ndarray, where: str = "fixed views") -> np.ndarray:
    """For a camera set closed under the mirror (the 8 cube-corner fixed views are), the index
    ``perm[i]`` of the camera whose mirrored image is camera ``i``'s:
    ``mirrored_extrinsics(E[perm[i]]) == E[i]``. Refuses a set that is not closed."""
    extrinsics = np.asarray(extrinsics, dtype=np.float64)
    mirrored = mirrored_extrinsics(extrinsics)
    gap = np.abs(extrinsics[:, None] - mirrored[None]).max(axis=(2, 3))
    perm = gap.argmin(axis=1)
    if (gap[np.arange(len(perm)), perm] > 1e-4).any() or len(set(perm.tolist())) != len(perm):
        raise DatasetError(
            f"{where}: mirror augmentation needs fixed views that are symmetric about the "
            f"object's left-right plane (x = 0); these {len(extrinsics)} are not"
        )
    return perm


def mirror_sample(sample: dict, fixed_perm: np.ndarray | None = None) -> None:
    """Mirror one sample of `PreparedDataset` in place: the shape across x = 0 and every
    picture with it. A picture flipped left to right is what the mirrored camera
    (`mirrored_extrinsics`) sees of the mirrored shape; depth values do not change, and
    fixed view ``i`` of the mirrored shape is fixed view ``fixed_perm[i]`` flipped
    (`mirror_permutation` of the dataset's fixed views)."""
    import torch

    def mirror_cameras(extrinsics: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(mirrored_extrinsics(extrinsics.numpy()))

    sample["image"] = sample["image"].flip(-1)
    sample["image_extrinsic"] = mirror_cameras(sample["image_extrinsic"])
    intrinsic = sample["image_intrinsic"].clone()
    width = sample["image"].shape[-1]
    intrinsic[..., 0, 2] = width - intrinsic[..., 0, 2]
    sample["image_intrinsic"] = intrinsic
    if "fixed_depth" in sample:
        perm = torch.from_numpy(np.asarray(fixed_perm))
        sample["fixed_depth"] = sample["fixed_depth"][perm].flip(-1)
        sample["fixed_mask"] = sample["fixed_mask"][perm].flip(-1)
        sample["novel_depth"] = sample["novel_depth"].flip(-1)
        sample["novel_mask"] = sample["novel_mask"].flip(-1)
        sample["novel_extrinsics"] = mirror_cameras(sample["novel_extrinsics"])
    if "points" in sample:
        sample["points"] = sample["points"] * torch.tensor([-1.0, 1.0, 1.0])
    if "voxels" in sample:  # index order (x, y, z)
        sample["voxels"] = sample["voxels"].flip(1)


def voxel_index(
    points: np.ndarray, resolution: int, half_extent: float = PADDED_HALF_EXTENT
) -> np.ndarray:
    """Integer voxel indices (N, 3) of ``points`` (N, 3), clipped into the grid."""
    scaled = (points + half_extent) * (resolution / (2.0 * half_extent))
    return np.clip(np.floor(scaled).astype(np.int64), 0, resolution - 1)
